"""Figures of a results.json (DESIGN.md schema): one PNG per question a reader asks, drawn with matplotlib.

    frontier.png      forget vs retain loss of every run, token modes vs document filtering across thresholds
                      (several seeds: per-configuration means with 95% interval bars, each seed faint)
    slowdown.png      relative compute slowdown on the forget (and retain) domain vs training compute, per mode
    recovery.png      forget loss during the finetuning attack: filtered models vs the RMU-unlearned baseline
    classifier_pr.png precision-recall curves of the token classifier and its baselines
    refusal.png       refusal rates on held-out medical vs general prompts per pretraining mode
    mcq.png           multiple-choice accuracy per set or group next to chance
    variants.png      ablations (`[[pretrain.variants]]`): forget and retain loss change against the unfiltered run of
                      the same size and seed, per variant, a line per size and threshold (mean, 95% t-interval);
                      with canaries, a third panel: medical and biology canary accuracy at the largest size
    canaries.png      canary-fact accuracy against mentions per fact, one panel per domain, a line per run
                      configuration at the largest size (mean over seeds with its min-max band), chance dotted

A figure whose data is absent from results.json is skipped, so a partial experiment still gets a report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np

from tokfilter.atomic import atomic_path
from tokfilter.evaluate.intervals import config_key, deltas_vs_unfiltered, naming_threshold

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

MODE_COLORS = {"none": "#444444", "document": "#d62728", "mask": "#1f77b4", "remove": "#2ca02c", "rmu": "#9467bd"}
MODE_MARKERS = {"none": "o", "document": "s", "mask": "^", "remove": "D"}
LINE_STYLES = ["-", "--", ":", "-."]  # one per threshold of a mode


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _seed_means(results: dict) -> list[dict] | None:
    """Per-configuration means (and interval half-widths) from `aggregates`, when some configuration has 2+ seeds."""
    configs = [c for c in (results.get("aggregates") or {}).get("runs") or []
               if (c.get("loss") or {}).get("forget") and (c.get("loss") or {}).get("retain")]
    if not any(c.get("n", 1) > 1 for c in configs):
        return None
    points = []
    for c in configs:
        forget, retain = c["loss"]["forget"], c["loss"]["retain"]
        err = [[0.0, 0.0] if s.get("ci") is None else [s["mean"] - s["ci"][0], s["ci"][1] - s["mean"]]
               for s in (retain, forget)]
        points.append({"mode": c["mode"], "params": c.get("params") or 0, "threshold": c.get("threshold"),
                       "doc_threshold": c.get("doc_threshold"), "seeds": c.get("n", 1),
                       "loss": {"forget": forget["mean"], "retain": retain["mean"]}, "xerr": err[0], "yerr": err[1]})
    return points


def frontier(results: dict, path: Path) -> Path | None:
    """Forget vs retain loss per run; with several seeds, per-configuration means with 95% t-interval bars (both
    axes) over the seeds' runs drawn faintly."""
    runs = [r for r in results.get("runs", []) if r.get("loss", {}).get("forget") is not None]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    means = _seed_means(results)
    if means is not None:
        for run in runs:
            if run["loss"].get("retain") is not None:
                ax.plot(run["loss"]["retain"], run["loss"]["forget"], marker=MODE_MARKERS.get(run["mode"], "o"),
                        color=MODE_COLORS.get(run["mode"]), alpha=0.2, linestyle="none", markersize=4)
        runs = means
    sizes = {r.get("params", 0) for r in runs}
    by_mode: dict[str, list[dict]] = {}
    for run in runs:
        by_mode.setdefault(run["mode"], []).append(run)
    for mode, items in by_mode.items():
        items.sort(key=lambda r: (r.get("params", 0), r["loss"]["forget"]))
        groups: dict[int, list[dict]] = {}
        for run in items:
            groups.setdefault(run.get("params", 0), []).append(run)
        for i, (params, group) in enumerate(groups.items()):  # one line per model size, one legend entry per mode
            xs = [r["loss"]["retain"] for r in group]
            ys = [r["loss"]["forget"] for r in group]
            style = dict(marker=MODE_MARKERS.get(mode, "o"), color=MODE_COLORS.get(mode),
                         label=mode if i == 0 else None, linestyle="-" if len(group) > 1 else "none", alpha=0.85)
            if means is not None:
                ax.errorbar(xs, ys, xerr=np.array([r["xerr"] for r in group]).T,
                            yerr=np.array([r["yerr"] for r in group]).T, capsize=3, **style)
            else:
                ax.plot(xs, ys, **style)
            for run in group:
                shown = naming_threshold(run)
                if shown is not None:
                    ax.annotate(f"{shown:g}", (run["loss"]["retain"], run["loss"]["forget"]),
                                textcoords="offset points", xytext=(4, 3), fontsize=7)
                elif mode == "none" and len(sizes) > 1:  # name the size at its unfiltered point
                    ax.annotate(f"{params / 1e6:.2g}M", (run["loss"]["retain"], run["loss"]["forget"]),
                                textcoords="offset points", xytext=(-6, -11), fontsize=8, fontweight="bold")
    ax.set_xlabel("retain (biology) loss, nats/token  (lower is better)")
    ax.set_ylabel("forget (medical) loss, nats/token  (higher = more removed)")
    title = "Forget vs retain loss across thresholds" + (" and model sizes" if len(sizes) > 1 else "")
    if means is not None:
        title += f"\n(mean over {max(r['seeds'] for r in means)} seeds, bars: 95% t-interval; faint: each seed)"
    ax.set_title(title, fontsize=10 if means is not None else None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def slowdown(results: dict, path: Path) -> Path | None:
    table = results.get("slowdown") or {}
    runs = {r["name"]: r for r in results.get("runs", [])}
    points = [(runs[name], value) for name, value in table.items()
              if name in runs and isinstance(value, dict) and value.get("forget") is not None]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    entries = [{**value, "mode": run["mode"], "threshold": run.get("threshold"), "variant": run.get("variant"),
                "doc_threshold": run.get("doc_threshold"), "flops": run["flops"]} for run, value in points]
    drawn_per_mode: dict[str, int] = {}
    for (mode, threshold, variant), items in series_by_threshold(entries).items():  # a line per mode and threshold
        xs = [item["flops"] for item in items]
        ys = [item["forget"] for item in items]
        cis = [(item.get("ci") or {}).get("forget") or [y, y] for item, y in zip(items, ys)]
        lows, highs = [ci[0] for ci in cis], [ci[1] for ci in cis]
        label = filter_label(mode, threshold) + (f" ({variant})" if variant else "")
        style = LINE_STYLES[drawn_per_mode.get(mode, 0) % len(LINE_STYLES)]
        drawn_per_mode[mode] = drawn_per_mode.get(mode, 0) + 1
        ax.errorbar(xs, ys, yerr=[[max(y - lo, 0) for y, lo in zip(ys, lows)],
                                  [max(hi - y, 0) for y, hi in zip(ys, highs)]],
                    marker=MODE_MARKERS.get(mode, "o"), color=MODE_COLORS.get(mode), label=label, capsize=3,
                    linestyle=style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("training compute (FLOPs)")
    ax.set_ylabel("forget-domain compute slowdown (x)")
    ax.set_title("Relative compute slowdown on the forget domain")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on a short log axis
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def recovery(results: dict, path: Path) -> Path | None:
    robust = results.get("robustness") or {}
    curves = {name: r["curve"] for name, r in robust.items() if isinstance(r, dict) and r.get("curve")}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    modes = {r["name"]: r["mode"] for r in results.get("runs", [])}
    for name, curve in sorted(curves.items()):
        mode = "rmu" if name.endswith("-rmu") else modes.get(name, "none")
        xs = [max(point[0], 1) for point in curve]
        ys = [point[1] for point in curve]
        ax.plot(xs, ys, marker=".", color=MODE_COLORS.get(mode), label=name,
                linestyle="--" if mode == "rmu" else "-")
    baseline = next((r.get("baseline_loss") for r in robust.values() if isinstance(r, dict)
                     and r.get("baseline_loss") is not None), None)
    if baseline is not None:
        ax.axhline(baseline, color="black", linewidth=0.8, linestyle=":", label="unfiltered model")
    ax.set_xscale("log")
    ax.set_xlabel("finetuning tokens on forget text")
    ax.set_ylabel("held-out forget loss (nats/token)")
    ax.set_title("Recovery under finetuning: filtering vs RMU unlearning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def classifier_pr(results: dict, path: Path) -> Path | None:
    block = results.get("classifier") or {}
    entries = [block, *block.get("baselines", [])]
    curves = [e for e in entries if e.get("pr_curve")]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    for entry in curves:
        pr = entry["pr_curve"]
        ax.plot(pr["recall"], pr["precision"], label=f"{entry['kind']} (F1 {entry.get('f1', 0):.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Token classifiers on the exact-span test split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return save_figure(fig, path)


def refusal(results: dict, path: Path) -> Path | None:
    table = results.get("refusal") or {}
    names = [n for n, v in table.items() if isinstance(v, dict) and "forget_refusal_rate" in v]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    width = 0.38
    xs = range(len(names))
    ax.bar([x - width / 2 for x in xs], [table[n]["forget_refusal_rate"] for n in names], width,
           label="held-out medical questions", color="#d62728")
    ax.bar([x + width / 2 for x in xs], [table[n]["general_refusal_rate"] for n in names], width,
           label="held-out general instructions", color="#7f7f7f")
    ax.set_xticks(list(xs), names, rotation=20, fontsize=8)
    ax.set_ylabel("refusal rate")
    ax.set_ylim(0, 1)
    ax.set_title("Refusal training: who refuses what")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def mcq(results: dict, path: Path) -> Path | None:
    runs = [r for r in results.get("runs", []) if r.get("mcq")]
    if not runs:
        return None
    sets = sorted({name for r in runs for name in r["mcq"]})
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(sets) * 1.5), 4.4))
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(sets))]
        ys = [run["mcq"].get(s, {}).get("accuracy", 0.0) for s in sets]
        ax.bar(xs, ys, width, label=run["name"], color=MODE_COLORS.get(run["mode"]), alpha=0.55 + 0.4 * (i % 2))
    for j, name in enumerate(sets):
        chance = next((r["mcq"][name].get("chance") for r in runs if name in r["mcq"]), None)
        if chance is not None:
            ax.hlines(chance, j - 0.45, j + 0.45, colors="black", linestyles=":", linewidth=1)
    ax.set_xticks(range(len(sets)), sets, rotation=15, fontsize=8)
    ax.set_ylabel("accuracy (dotted: chance)")
    ax.set_title("Multiple choice per set")
    ax.legend(fontsize=6, ncol=2)
    return save_figure(fig, path)


def canaries(results: dict, path: Path) -> Path | None:
    runs = [r for r in results.get("runs", []) if r.get("canaries")]
    if not runs:
        return None
    largest = max(r.get("params") or 0 for r in runs)
    groups: dict[str, list[dict]] = {}
    for run in runs:
        if (run.get("params") or 0) == largest:
            groups.setdefault(filter_label(run["mode"], naming_threshold(run)), []).append(run)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, domain, title in zip(axes, ("forget", "retain"), ("medical canaries (forget)", "biology canaries (retain)"),
                                 strict=True):
        for k, (label, group) in enumerate(groups.items()):
            by_exposure = [(group_run["canaries"][domain].get("by_exposures") or {}) for group_run in group]
            counts = sorted({int(e) for b in by_exposure for e in b})
            if not counts:
                continue
            values = np.array([[b.get(str(e), {}).get("accuracy", np.nan) for e in counts] for b in by_exposure])
            mode = group[0]["mode"]
            ax.plot(counts, np.nanmean(values, axis=0), marker=MODE_MARKERS.get(mode, "o"), label=label,
                    color=MODE_COLORS.get(mode), linestyle=LINE_STYLES[k % len(LINE_STYLES)])
            if len(group) > 1:
                ax.fill_between(counts, np.nanmin(values, axis=0), np.nanmax(values, axis=0),
                                color=MODE_COLORS.get(mode), alpha=0.12)
        chance = runs[0]["canaries"][domain].get("chance")
        if chance is not None:
            ax.axhline(chance, color="black", linestyle=":", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("mentions per fact in the pretraining text")
        ax.set_title(title)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("accuracy, seen templates (dotted: chance)")
    axes[1].legend(fontsize=7)
    return save_figure(fig, path)


def variant_deltas(results: dict) -> list[dict]:
    """`deltas_vs_unfiltered` of the runs that belong to a variant."""
    return [d for d in deltas_vs_unfiltered(results.get("runs", [])) if d.get("variant")]


def _canary_accuracy(results: dict) -> dict[tuple, dict]:
    """{config_key: aggregates entry's canaries} of the configurations that answered canaries."""
    return {config_key(e): e["canaries"] for e in (results.get("aggregates") or {}).get("runs") or []
            if e.get("canaries")}


def variants(results: dict, path: Path) -> Path | None:
    deltas = [d for d in variant_deltas(results) if d["forget"] and d["retain"]]
    if not deltas:
        return None
    order = list(dict.fromkeys(d["variant"] for d in deltas))
    canaries = _canary_accuracy(results)
    largest = max(d["params"] or 0 for d in deltas)
    fig, axes = plt.subplots(1, 3 if canaries else 2, figsize=(15 if canaries else 10, 4.2))
    if canaries:  # medical and biology canary accuracy of the largest size's runs, per variant
        ax = axes[2]
        lines_c: dict[tuple, list] = {}
        for d in deltas:
            if (d["params"] or 0) == largest and config_key(d) in canaries:
                lines_c.setdefault((d["mode"], naming_threshold(d)), []).append(d)
        for entries in lines_c.values():
            entries.sort(key=lambda d: order.index(d["variant"]))
        for domain, style in (("forget", "-"), ("retain", "--")):
            for (mode, threshold), entries in lines_c.items():
                stats = [canaries[config_key(d)][domain]["accuracy"] for d in entries]
                err = [[0.0, 0.0] if s["ci"] is None else [s["mean"] - max(s["ci"][0], 0.0),
                                                            min(s["ci"][1], 1.0) - s["mean"]] for s in stats]
                ax.errorbar([order.index(d["variant"]) for d in entries], [s["mean"] for s in stats],
                            yerr=np.array(err).T, marker=MODE_MARKERS.get(mode, "o"), linestyle=style, capsize=3,
                            color=MODE_COLORS.get(mode), label=f"{'medical' if domain == 'forget' else 'biology'}, "
                                                               f"{filter_label(mode, threshold)}")
        largest_size = next(d["size"] for d in deltas if (d["params"] or 0) == largest)
        unfiltered = next((c for key, c in canaries.items() if key[:2] == ("none", largest_size)), None)
        for domain, style in (("forget", "-"), ("retain", "--")):
            if unfiltered and domain in unfiltered:
                ax.axhline(unfiltered[domain]["accuracy"]["mean"], color=MODE_COLORS["none"], linewidth=1.0,
                           linestyle=style, label=f"{'medical' if domain == 'forget' else 'biology'}, unfiltered")
        ax.axhline(0.25, color="grey", linewidth=0.8, linestyle=":")
        ax.set_ylim(0, 1.05)
        ax.set_xticks(range(len(order)), order, rotation=15, fontsize=8)
        ax.set_ylabel("canary accuracy, seen templates (dotted: chance)")
        ax.set_title(f"Canary facts, {largest_size}")
        ax.legend(fontsize=7)
    lines: dict[tuple, list[dict]] = {}
    for d in deltas:
        lines.setdefault((d["mode"], d["params"] or 0, d["size"], naming_threshold(d)), []).append(d)
    for k, ((mode, _, size, threshold), entries) in enumerate(sorted(lines.items(), key=lambda kv: kv[0][:2])):
        entries.sort(key=lambda d: order.index(d["variant"]))
        xs = [order.index(d["variant"]) + 0.04 * (k - len(lines) / 2) for d in entries]
        for ax, domain in zip(axes[:2], ("forget", "retain"), strict=True):
            ys = [d[domain]["mean"] for d in entries]
            err = [[0.0, 0.0] if d[domain]["ci"] is None else
                   [d[domain]["mean"] - d[domain]["ci"][0], d[domain]["ci"][1] - d[domain]["mean"]] for d in entries]
            ax.errorbar(xs, ys, yerr=np.array(err).T, marker=MODE_MARKERS.get(mode, "o"), capsize=3,
                        label=f"{filter_label(mode, threshold)}, {size}")
    for ax, domain in zip(axes[:2], ("forget", "retain"), strict=True):
        ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_xticks(range(len(order)), order, rotation=15, fontsize=8)
        ax.set_ylabel(f"{domain} loss change vs unfiltered (nats)")
        ax.set_title(f"{'Removed' if domain == 'forget' else 'Kept'}: {domain} domain")
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def filter_label(mode: str, threshold: float | None) -> str:
    """How a filter is named in legends: `none`, `document frac >= 0.1`, `remove p >= 0.3`."""
    if mode == "none" or threshold is None:
        return mode
    return f"{mode} {'frac' if mode == 'document' else 'p'} >= {threshold:g}"


FIGURES: dict[str, Callable[[dict, Path], Path | None]] = {
    "frontier": frontier,
    "slowdown": slowdown,
    "recovery": recovery,
    "classifier_pr": classifier_pr,
    "refusal": refusal,
    "mcq": mcq,
    "variants": variants,
    "canaries": canaries,
}


def make_figures(results: dict, figures_dir: str | Path) -> dict[str, Path]:
    """Draw every figure whose data is present; returns {name: png path}."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, draw in FIGURES.items():
        path = draw(results, figures_dir / f"{name}.png")
        if path is not None:
            made[name] = path
    return made


def series_by_threshold(entries: list[dict]) -> dict[tuple[str, float | None, str | None], list[dict]]:
    """Slowdown entries as one series per (mode, threshold that names it, variant), each in compute order: document
    runs by `doc_threshold`, token modes by `threshold` (evaluate.slowdown.series_key's grouping).

    Keys come sorted by mode, then threshold (None first), then variant, so figures draw and label them in a stable
    order.
    """
    series: dict[tuple[str, float | None, str | None], list[dict]] = {}
    for entry in sorted(entries, key=lambda e: e["flops"]):
        series.setdefault((entry["mode"], naming_threshold(entry), entry.get("variant")), []).append(entry)
    return dict(sorted(series.items(), key=lambda kv: (kv[0][0], -1.0 if kv[0][1] is None else kv[0][1],
                                                       kv[0][2] or "")))


def plot_slowdowns(result: dict, path: str | Path) -> None:
    """Slowdown vs training compute, one panel per domain, one line per mode and threshold (log-log, CI bars)."""
    domains = list(result["fits"])
    series = series_by_threshold([v for v in result.values() if isinstance(v, dict) and "mode" in v])
    fig, axes = plt.subplots(1, len(domains), figsize=(4.2 * len(domains), 3.6), squeeze=False)
    for ax, domain in zip(axes[0], domains, strict=True):
        low, high = 0.3, 3.0  # show at least a decade around 1 so near-1 values do not blow up the log axis
        for (mode, threshold, variant), entries in series.items():  # one line per mode and threshold
            points = [(v["flops"], v[domain], v["ci"].get(domain)) for v in entries if v.get(domain) is not None]
            if not points:
                continue
            xs = np.array([p[0] for p in points])
            ys = np.array([p[1] for p in points])
            cis = [p[2] or [p[1], p[1]] for p in points]
            err = np.array([[max(y - lo, 0) for y, (lo, _) in zip(ys, cis, strict=True)],
                            [max(hi - y, 0) for y, (_, hi) in zip(ys, cis, strict=True)]])
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3,
                        label=(mode if threshold is None else f"{mode} {threshold:g}") + (f" ({variant})" if variant
                                                                                           else ""))
            low = min(low, *(max(lo, 1e-300) for lo, _ in cis), *ys)
            high = max(high, *(hi for _, hi in cis), *ys)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(low / 1.5, high * 1.5)
        ax.set_xlabel("training compute (FLOPs)")
        ax.set_title(f"{domain} (fit r2 = {result['fits'][domain]['r2']:.3f})")
    axes[0][0].set_ylabel("compute slowdown vs unfiltered (x)")
    axes[0][-1].legend(title="filter")
    fig.tight_layout()
    with atomic_path(path, suffix=Path(path).suffix or ".png") as tmp:
        fig.savefig(tmp, dpi=120, format=(Path(path).suffix.lstrip(".") or "png"))
    plt.close(fig)
