"""report.html: one offline page (no CDN, no script) with the figures and the tables of a results.json.

`tokfilter report DIR` regenerates figures/*.png and report.html from DIR/results.json, so the page can be remade
after editing results or upgrading tokfilter without rerunning anything.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from tokfilter.atomic import write_text
from tokfilter.errors import UserError
from tokfilter.evaluate.intervals import config_name, format_stat
from tokfilter.report.figures import make_figures

CAPTIONS = {
    "frontier": "Forget-domain loss (up = more removed) against retain-domain loss (left = more kept) for every "
                "run. Token-level filtering should sit above and to the left of document filtering.",
    "slowdown": "How many times more compute an unfiltered model would need to reach each filtered model's "
                "forget loss (power-law fit over the unfiltered runs; bars are bootstrap CIs).",
    "recovery": "Held-out forget loss while finetuning on forget text: how fast each model recovers.",
    "classifier_pr": "Precision-recall of the token classifiers on the exact-span test split.",
    "refusal": "Refusal rates after refusal training, on held-out medical questions and general instructions.",
    "mcq": "Multiple-choice accuracy per set (dotted lines: chance).",
    "variants": "Ablation variants: forget (left) and retain (right) loss change against the unfiltered model of the "
                "same size and seed, per variant (mean over seeds, 95% t-interval).",
    "canaries": "Canary-fact accuracy against mentions per fact in the pretraining text, medical and biology "
                "facts, largest model size (dotted: chance; band: min-max over seeds).",
}

SECTIONS = ("runs", "classifier", "slowdown", "robustness", "refusal", "pareto", "aggregates")  # any one makes a report

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 70rem;
       color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5rem; max-width: 32rem; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; } figcaption { font-size: 0.85rem; color: #444; }
"""


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _stat(stat: dict | None) -> str:
    """A mean over seeds with its interval: "5.123 [5.01, 5.24]" (no interval with one seed)."""
    return format_stat(stat, ".4g", missing="–")


def _aggregates(results: dict) -> list[str]:
    """The section over seeds: per-configuration means with 95% t-intervals, the Pareto verdicts per seed count,
    robustness and refusal per mode; one line saying there is no interval for a one-seed experiment."""
    agg = results.get("aggregates")
    if not agg:
        return []
    parts = ["<h2>Over seeds</h2>"]
    if (agg.get("n_seeds") or 1) < 2:
        parts.append("<p>One seed: no interval. Every number above comes from one training run per configuration; "
                     "seeds move a small model's losses by about 0.1 nats, so differences of that size are not "
                     "evidence. Set <code>seeds = [0, 1, 2]</code> in the experiment for means with 95% intervals."
                     "</p>")
        return parts
    parts.append(f"<p>Mean over {agg['n_seeds']} seeds ({', '.join(map(str, agg.get('seeds', [])))}) with a "
                 f"{agg.get('confidence', 0.95):.0%} t-interval: mean ± t<sub>n-1</sub> · sd / √n.</p>")
    configs = agg.get("runs") or []
    sets = list(dict.fromkeys(name for c in configs for name in c.get("mcq", {})))
    rows = [[config_name(c), c.get("n"), _stat(c["loss"].get("forget")), _stat(c["loss"].get("retain")),
             _stat(c["loss"].get("general")), _stat(c.get("tokens_filtered_frac")),
             *(_stat(c.get("mcq", {}).get(name, {}).get("accuracy")) for name in sets)] for c in configs]
    parts.append(_table(["configuration", "seeds", "forget loss", "retain loss", "general loss", "filtered frac",
                         *(f"{name} accuracy" for name in sets)], rows))
    pareto = agg.get("pareto") or {}
    if pareto.get("verdicts"):
        parts.append("<h3>Token filtering vs document filtering, per seed</h3>")
        rows = [[config_name(v["document"]), v["mode"], f"{round(v['holds_share'] * v['n'])}/{v['n']}",
                 ", ".join(f"{name} ×{k}" for name, k in v.get("chosen", {}).items())] for v in pareto["verdicts"]]
        parts.append(_table(["document run", "token mode", "claim holds (seeds)", "best cheaper run chosen"], rows))
    if pareto.get("pairs"):
        rows = [[config_name(e["document"]), config_name(e["token"]), e["n"], e["holds_share"],
                 _stat(e["document"]["forget_increase"]), _stat(e["document"]["retain_increase"]),
                 _stat(e["token"]["forget_increase"]), _stat(e["token"]["retain_increase"])] for e in pareto["pairs"]]
        parts.append(_table(["document run", "token run", "seeds", "claim holds (share)", "doc Δ forget",
                             "doc Δ retain", "token Δ forget", "token Δ retain"], rows))
    for key, title, columns in (("robustness", "Finetuning attack over seeds",
                                 [("recovery_tokens", "tokens to recover"), ("recovery_fraction", "fraction")]),
                                ("refusal", "Refusal over seeds", [("forget_refusal_rate", "medical refusal rate"),
                                                                   ("general_refusal_rate", "general refusal rate")])):
        section = agg.get(key) or {}
        if section:
            parts.append(f"<h3>{title}</h3>")
            rows = [[mode, v.get("n"), *(_stat(v.get(k)) for k, _ in columns),
                     *([v.get("reached_share")] if key == "robustness" else [])] for mode, v in section.items()]
            parts.append(_table(["mode", "seeds", *(label for _, label in columns),
                                 *(["reached (share)"] if key == "robustness" else [])], rows))
    return parts


def _canary(entry: dict, when: str) -> str:
    measured = (entry.get("canaries") or {}).get(when) or {}
    if not measured:
        return "–"
    return " / ".join(f"{measured[d]['accuracy']:.2f}" if "accuracy" in measured.get(d, {}) else "–"
                      for d in ("forget", "retain"))


def _ci(ci: list | None) -> str:
    return "–" if not ci else f"{ci[0]:.3g} – {ci[1]:.3g}"


def render(results: dict, figures: dict[str, Path], out_dir: Path) -> str:
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>tokfilter report: "
             f"{html.escape(str(results.get('experiment', '')))}</title><style>{STYLE}</style></head><body>",
             f"<h1>tokfilter report: {html.escape(str(results.get('experiment', '')))}</h1>",
             f"<p class='meta'>tokfilter {html.escape(str(results.get('tokfilter_version', '')))} · seed "
             f"{_fmt(results.get('seed'))} · {_fmt(results.get('wall_seconds'))} s</p>"]
    runs = results.get("runs", [])
    if runs:
        parts.append("<h2>Pretraining runs</h2>")
        rows = [[r["name"], r["mode"], r.get("threshold"), r.get("doc_threshold"), r.get("seed"), r.get("params"),
                 r.get("effective_tokens"), r.get("steps"), r.get("flops"), r.get("tokens_filtered_frac"),
                 r.get("loss", {}).get("forget"), r.get("loss", {}).get("retain"), r.get("loss", {}).get("general")]
                for r in runs]
        parts.append(_table(["run", "mode", "token threshold", "doc threshold", "seed", "params", "effective tokens",
                             "steps", "FLOPs (effective)", "filtered frac", "forget loss", "retain loss",
                             "general loss"], rows))
    parts.extend(_aggregates(results))
    pareto = results.get("pareto") or {}
    comparisons = pareto.get("comparisons") or []
    if comparisons:
        parts.append("<h2>Token removal vs document filtering</h2>")
        parts.append("<p>Loss change against the unfiltered run of the same size. For each document-filtered run, the "
                     "removal run with the largest forget increase among those that cost less retain loss; the claim "
                     f"holds when it reaches {_fmt(pareto.get('ratio'))} of the document "
                     "run's forget increase.</p>")
        rows = []
        for c in comparisons:
            r = c.get("remove") or {}
            rows.append([c["document_run"], c["document"]["forget_increase"], c["document"]["retain_increase"],
                         r.get("run", "–"), r.get("forget_increase"), r.get("retain_increase"), r.get("forget_ratio"),
                         "yes" if r.get("holds") else "no"])
        parts.append(_table(["document run", "Δ forget", "Δ retain", "best removal run", "Δ forget", "Δ retain",
                             "forget ratio", "holds"], rows))
    classifier = results.get("classifier")
    if classifier:
        parts.append("<h2>Token classifier</h2>")
        rows = [[c.get("kind"), c.get("params"), c.get("flops_per_token"), c.get("f1"), c.get("auroc"),
                 c.get("threshold")] for c in [classifier, *classifier.get("baselines", [])]]
        teacher = classifier.get("teacher")
        if teacher:
            rows.append([f"teacher: {teacher['labels']} labels", None, None, teacher["test"]["f1"], None, None])
        parts.append(_table(["classifier", "params", "FLOPs/token", "F1", "AUROC", "threshold"], rows))
    slow = results.get("slowdown") or {}
    slow_rows = [[name, v.get("mode"), v.get("forget"), (v.get("ci") or {}).get("forget"), v.get("retain")]
                 for name, v in slow.items() if isinstance(v, dict) and "mode" in v]
    if slow_rows:
        parts.append("<h2>Compute slowdown</h2>")
        fit = slow.get("fit") or {}
        parts.append(f"<p>Unfiltered fit ln L = a + b ln C on the forget domain: a = {_fmt(fit.get('a'))}, "
                     f"b = {_fmt(fit.get('b'))}, r² = {_fmt(fit.get('r2'))}.</p>")
        for row in slow_rows:
            row[3] = "–" if not row[3] else f"{row[3][0]:.3g} – {row[3][1]:.3g}"
        parts.append(_table(["run", "mode", "forget slowdown (x)", "95% CI", "retain slowdown (x)"], slow_rows))
        seeded = [a for a in slow.get("aggregates") or [] if isinstance(a, dict)]
        if seeded:
            parts.append("<p>Over seeds: the slowdown of the mean log loss at the mean log compute; the interval "
                         "redraws the seeds (and the baseline sizes' seeds) in every bootstrap replicate.</p>")
            rows = [[config_name(a), len(a.get("seeds") or []), a.get("forget"),
                     "–" if not (a.get("ci") or {}).get("forget") else
                     f"{a['ci']['forget'][0]:.3g} – {a['ci']['forget'][1]:.3g}", a.get("retain")] for a in seeded]
            parts.append(_table(["configuration", "seeds", "forget slowdown (x)", "95% CI", "retain slowdown (x)"],
                                rows))
    canaried = [r for r in runs if r.get("canaries")]
    if canaried:
        parts.append("<h2>Canary facts</h2>")
        parts.append("<p>Fictional facts planted in the pretraining text with known mention counts, asked back as "
                     "multiple choice (seen templates; 95% Wilson interval over questions; control = the same "
                     "questions about never-planted names). docs/canaries.md.</p>")
        rows = []
        for r in canaried:
            c = r["canaries"]
            rows.append([r["name"], *[x for d in ("forget", "retain") for x in
                                      (c[d].get("accuracy"), _ci(c[d].get("ci")), (c[d].get("control") or {})
                                       .get("accuracy"))], c["forget"].get("n"), c["forget"].get("chance")])
        parts.append(_table(["run", "medical accuracy", "95% CI", "medical control", "biology accuracy", "95% CI",
                             "biology control", "questions per domain", "chance"], rows))
    robust = results.get("robustness") or {}
    if robust:
        parts.append("<h2>Finetuning attack</h2>")
        probed = any(isinstance(v, dict) and "canaries" in v for v in robust.values())
        rows = [[name, v.get("recovery_tokens"), v.get("recovery_fraction")]
                + ([_canary(v, "before"), _canary(v, "after")] if probed else [])
                for name, v in robust.items() if isinstance(v, dict)]
        parts.append(_table(["model", "tokens to recover", "fraction of pretraining"]
                            + (["canaries before attack (medical / biology)", "after attack"] if probed else []),
                            rows))
    refusal = results.get("refusal") or {}
    if refusal:
        parts.append("<h2>Refusal training</h2>")
        rows = [[name, v.get("forget_refusal_rate"), v.get("general_refusal_rate")] for name, v in refusal.items()
                if isinstance(v, dict)]
        parts.append(_table(["model", "medical refusal rate", "general refusal rate"], rows))
    if figures:
        parts.append("<h2>Figures</h2>")
        for name, path in figures.items():
            rel = path.relative_to(out_dir).as_posix()
            parts.append(f"<figure><img src='{html.escape(rel)}' alt='{name}'>"
                         f"<figcaption>{html.escape(CAPTIONS.get(name, name))}</figcaption></figure>")
    # lets a headless browser (and the tests) confirm every figure decoded: body[data-figures="loaded/total"]
    parts.append("<script>window.addEventListener('load', function () { var imgs = document.images, ok = 0;"
                 " for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }"
                 " document.body.setAttribute('data-figures', ok + '/' + imgs.length); });</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def make_report(out_dir: str | Path) -> Path:
    """Regenerate figures/*.png and report.html from out_dir/results.json; returns the report path."""
    out_dir = Path(out_dir)
    results_path = out_dir / "results.json"
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: not a directory (pass the run directory that holds results.json)")
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{results_path}: not found (run `tokfilter demo` or `tokfilter run` first)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{results_path}: not valid JSON ({err})") from None
    if not isinstance(results, dict):
        raise UserError(f"{results_path}: expected a JSON object")
    if not any(results.get(key) for key in SECTIONS):
        raise UserError(f"{results_path}: nothing to report (no {', '.join(SECTIONS)})")
    figures = make_figures(results, out_dir / "figures")
    report = out_dir / "report.html"
    write_text(report, render(results, figures, out_dir))
    return report
