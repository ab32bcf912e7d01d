"""Tables (markdown) and figures for docs/ablations.md from ablation runs' results.json files.

    python scripts/ablations.py variants runs/ablations/label-noise-quick --out docs/ablations
    python scripts/ablations.py frontier runs/ablations/thresholds-quick --out docs/ablations
    python scripts/ablations.py frontier runs/ablations/coarse-labels-quick --out docs/ablations --name frontier
    python scripts/ablations.py weak-to-strong runs/ablations/weak-to-strong-quick-* --out docs/ablations

Each command prints a markdown table (what docs/ablations.md quotes), copies every results.json it read to
docs/results/ablations/<experiment>[-<labels>].json (so the table can be regenerated from committed files), and
writes a figure into --out. Intervals are 95% t-intervals over seeds (evaluate/intervals.py); slowdowns and their
intervals come from results.json's own seed bootstrap.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt

from tokfilter.evaluate.intervals import config_key, deltas_vs_unfiltered, format_stat, naming_threshold
from tokfilter.report.figures import save_figure, variant_deltas, variants

RESULTS = Path("docs/results/ablations")


def _results_path(source: str) -> Path:
    path = Path(source)
    return path / "results.json" if path.is_dir() else path


def _read(source: str) -> dict:
    return json.loads(_results_path(source).read_text())


def _keep(results: dict, source: str, suffix: str = "") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_results_path(source), RESULTS / f"{results['experiment']}{suffix}.json")


def _slowdown(results: dict, entry: dict) -> str:
    for agg in (results.get("slowdown") or {}).get("aggregates") or []:
        if config_key(agg) == config_key(entry):
            ci = (agg.get("ci") or {}).get("forget")
            value = agg.get("forget")
            return "-" if value is None else f"{value:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    return "-"


def _canaries(results: dict, entry: dict) -> str:
    """'medical / biology' canary accuracy of the configuration (mean [95% t-interval] over seeds), or '-'."""
    for agg in (results.get("aggregates") or {}).get("runs") or []:
        if config_key(agg) == config_key(entry) and agg.get("canaries"):
            return " / ".join(format_stat(agg["canaries"][d]["accuracy"], ".2f") for d in ("forget", "retain"))
    return "-"


def _unfiltered_canaries(results: dict, size: str) -> str:
    return next((_canaries(results, agg) for agg in results["aggregates"]["runs"]
                 if agg["mode"] == "none" and agg["size"] == size), "-")


def cmd_variants(args: argparse.Namespace) -> None:
    results = _read(args.dir)
    _keep(results, args.dir)
    print("| variant | size | mode, threshold | tokens filtered | Δ forget | Δ retain | forget slowdown | canaries "
          "medical / biology | seeds |")
    print("|---|---|---|---|---|---|---|---|---|")
    deltas = sorted(variant_deltas(results), key=lambda d: (d["params"] or 0, naming_threshold(d) or 0))
    for size in dict.fromkeys(d["size"] for d in deltas):
        print(f"| unfiltered | {size} | - | - | - | - | - | {_unfiltered_canaries(results, size)} | - |")
    for d in deltas:
        print(f"| {d['variant']} | {d['size']} | {d['mode']} {naming_threshold(d):g} | "
              f"{format_stat(d['tokens_filtered_frac'], '.1%')} | {format_stat(d['forget'], '+.3f')} | "
              f"{format_stat(d['retain'], '+.3f')} | {_slowdown(results, d)} | {_canaries(results, d)} | {d['n']} |")
    out = Path(args.out) / f"{results['experiment']}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    variants(results, out)
    print(f"\nfigure: {out}")


def cmd_frontier(args: argparse.Namespace) -> None:
    results = _read(args.dir)
    _keep(results, args.dir)
    deltas = deltas_vs_unfiltered(results.get("runs", []))
    largest = max(d["params"] or 0 for d in deltas)
    print("| run (largest size) | tokens filtered | Δ forget | Δ retain | forget slowdown | canaries medical / biology "
          "| seeds |")
    print("|---|---|---|---|---|---|---|")
    rows = sorted((d for d in deltas if (d["params"] or 0) == largest),
                  key=lambda d: (d["mode"], d["tokens_filtered_frac"]["mean"]))
    if rows:
        print(f"| unfiltered | - | - | - | - | {_unfiltered_canaries(results, rows[0]['size'])} | - |")
    for d in rows:
        print(f"| {d['name']} | {format_stat(d['tokens_filtered_frac'], '.1%')} | {format_stat(d['forget'], '+.3f')} | "
              f"{format_stat(d['retain'], '+.3f')} | {_slowdown(results, d)} | {_canaries(results, d)} | {d['n']} |")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    lines: dict[str, list[dict]] = {}  # one line per mode, and per variant when the experiment has variants
    for d in rows:
        lines.setdefault(d["mode"] + (f", {d['variant']}" if d.get("variant") else ""), []).append(d)
    colors = {"document": "#d62728", "mask": "#1f77b4", "remove": "#2ca02c"}
    ax = axes[0]
    for k, (label, points) in enumerate(lines.items()):
        points.sort(key=lambda d: d["tokens_filtered_frac"]["mean"])
        color = colors.get(label) or plt.get_cmap("tab10")(k)
        ax.errorbar([d["retain"]["mean"] for d in points], [d["forget"]["mean"] for d in points],
                    xerr=_err([d["retain"] for d in points]), yerr=_err([d["forget"] for d in points]), marker="o",
                    color=color, capsize=3, label=label)
        for d in points:
            ax.annotate(f"{d['tokens_filtered_frac']['mean']:.0%}", (d["retain"]["mean"], d["forget"]["mean"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
        for panel, domain in ((axes[1], "forget"), (axes[2], "retain")):  # against the share filtered
            panel.errorbar([100 * d["tokens_filtered_frac"]["mean"] for d in points],
                           [d[domain]["mean"] for d in points], yerr=_err([d[domain] for d in points]), marker="o",
                           color=color, capsize=3, label=label)
    ax.set_xlabel("retain loss change (nats; left = more kept)")
    ax.set_ylabel("forget loss change (nats; up = more removed)")
    ax.set_title(f"{results['experiment']}: frontier, {rows[0]['size']} (labels: share filtered)", fontsize=9)
    ax.legend(fontsize=8)
    for panel, domain in ((axes[1], "forget"), (axes[2], "retain")):
        panel.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
        panel.set_xlabel("tokens filtered (% of the training tokens)")
        panel.set_ylabel(f"{domain} loss change vs unfiltered (nats)")
        panel.set_title(f"{'Removed' if domain == 'forget' else 'Kept'} at matched volume", fontsize=9)
    out = Path(args.out) / f"{results['experiment']}{'-' + args.name if args.name else ''}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out)
    print(f"\nfigure: {out}")


def _err(stats: list[dict]) -> list[list[float]]:
    return [[0.0 if s["ci"] is None else s["mean"] - s["ci"][0] for s in stats],
            [0.0 if s["ci"] is None else s["ci"][1] - s["mean"] for s in stats]]


def cmd_weak_to_strong(args: argparse.Namespace) -> None:
    rows = []
    for directory in args.dirs:
        results = _read(directory)
        c = results["classifier"]
        labels = c.get("labels", "exact")
        _keep(results, directory, f"-{labels}")
        teacher = (c.get("teacher") or {}).get("test") or {}
        deltas = deltas_vs_unfiltered(results.get("runs", []))
        largest = [d for d in deltas if (d["params"] or 0) == max(e["params"] or 0 for e in deltas)]
        remove = next((d for d in largest if d["mode"] == "remove"), None)
        document = next((d for d in largest if d["mode"] == "document"), None)
        rows.append({"labels": labels, "teacher_f1": teacher.get("f1"), "student_f1": c.get("f1"),
                     "canaries": "-" if remove is None else _canaries(results, remove),
                     "natural_f1": ((c.get("natural") or {}).get("all") or {}).get("f1"), "remove": remove,
                     "document": document, "documents": (c.get("teacher") or {}).get("documents")})
    print("| biLM trained on | documents | teacher F1 (test) | biLM F1 (test) | biLM F1 (natural) | remove Δ forget / "
          "Δ retain (tokens filtered) | document Δ forget / Δ retain | remove: canaries medical / biology |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        f1 = "-" if r["teacher_f1"] is None else f"{r['teacher_f1']:.3f}"
        effect = {k: "-" if r[k] is None else f"{format_stat(r[k]['forget'], '+.3f')} / "
                  f"{format_stat(r[k]['retain'], '+.3f')}" for k in ("remove", "document")}
        share = "" if r["remove"] is None else f" ({format_stat(r['remove']['tokens_filtered_frac'], '.1%')})"
        print(f"| {r['labels']} | {r['documents'] or 'all'} | {f1} | {r['student_f1']:.3f} | "
              f"{r['natural_f1'] if r['natural_f1'] is None else round(r['natural_f1'], 3)} | {effect['remove']}{share} | "
              f"{effect['document']} | {r['canaries']} |")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["teacher_f1"] or 0 for r in rows], 0.4, label="teacher (its own labels)")
    ax.bar([x + 0.2 for x in xs], [r["student_f1"] for r in rows], 0.4, label="biLM trained on them")
    ax.set_xticks(list(xs), [r["labels"] for r in rows])
    ax.set_ylabel("token F1 against exact spans, test split")
    ax.set_ylim(0, 1)
    ax.set_title("Weak-to-strong: does the student beat its teacher?")
    ax.legend()
    out = Path(args.out) / "weak-to-strong.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out)
    print(f"\nfigure: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("variants", cmd_variants), ("frontier", cmd_frontier)):
        p = sub.add_parser(name)
        p.add_argument("dir")
        p.add_argument("--out", default="docs/ablations")
        p.add_argument("--name", default="", help="suffix of the figure's file name (two figures of one run)")
        p.set_defaults(func=func)
    p = sub.add_parser("weak-to-strong")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", default="docs/ablations")
    p.set_defaults(func=cmd_weak_to_strong)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
