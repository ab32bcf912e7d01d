"""Markdown tables of a results.json, as README.md and docs/*.md quote them: regenerate any quoted table with

    python scripts/results_tables.py docs/results/demo-full.json [--size tiny-0.4m]

Sections: the classifier; losses per configuration (mean and 95% t-interval over seeds) with the change against the
unfiltered run of the same size and seed; forget-domain compute slowdowns (seed bootstrap); the Pareto verdicts
(token filtering against each document filter); canary-fact accuracy per configuration, by placement, and before /
after the finetuning attack; the finetuning attack and refusal training per mode.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokfilter.evaluate.intervals import config_name, deltas_vs_unfiltered, format_stat
from tokfilter.pipeline.results import section_by_mode


def classifier(results: dict) -> None:
    c = results["classifier"]
    print("| classifier | test F1 | AUROC | natural-text F1 |")
    print("|---|---|---|---|")
    for entry in [c, *c.get("baselines", [])]:
        nat = ((entry.get("natural") or {}).get("all") or {}).get("f1")
        print(f"| {entry['kind']} | {entry['f1']:.3f} | {entry.get('auroc', float('nan')):.3f} | "
              f"{'-' if nat is None else f'{nat:.3f}'} |")


def losses(results: dict, size: str | None) -> None:
    aggregates = results["aggregates"]
    deltas = {d["name"]: d for d in deltas_vs_unfiltered(results["runs"])}
    print(f"over {aggregates['n_seeds']} seed(s) {aggregates['seeds']}: mean [95% t-interval]; Δ = paired by seed "
          "against the unfiltered run of the same size\n")
    print("| configuration | tokens filtered | forget | retain | general | Δ forget | Δ retain |")
    print("|---|---|---|---|---|---|---|")
    for entry in aggregates["runs"]:
        if size and entry["size"] != size:
            continue
        name = config_name(entry)
        d = deltas.get(name)
        print(f"| {name} | {format_stat(entry.get('tokens_filtered_frac'), '.1%')} | "
              + " | ".join(format_stat(entry["loss"].get(k), ".3f") for k in ("forget", "retain", "general"))
              + f" | {format_stat(d and d['forget'], '+.3f')} | {format_stat(d and d['retain'], '+.3f')} |")


def slowdowns(results: dict) -> None:
    slow = results.get("slowdown") or {}
    fit = slow.get("fit") or {}
    if not fit:
        return
    print(f"\nforget-domain fit over the unfiltered runs: b = {fit['b']:.4f}, r2 = {fit['r2']:.4f}")
    entries = slow.get("aggregates")
    print("\n| configuration | forget slowdown | 95% interval |")
    print("|---|---|---|")
    if entries:  # several seeds: the seed bootstrap of the mean
        for e in entries:
            ci = (e.get("ci") or {}).get("forget")
            value = e.get("forget")
            print(f"| {config_name(e)} | {'-' if value is None else f'{value:.2f}x'} | "
                  f"{'-' if not ci else f'{ci[0]:.2f} - {ci[1]:.2f}'} |")
        return
    for name, e in slow.items():
        if isinstance(e, dict) and "mode" in e:
            ci = (e.get("ci") or {}).get("forget")
            print(f"| {name} | {e.get('forget', float('nan')):.2f}x | "
                  f"{'-' if not ci else f'{ci[0]:.2f} - {ci[1]:.2f}'} |")


def pareto(results: dict) -> None:
    agg = (results.get("aggregates") or {}).get("pareto") or {}
    pairs = agg.get("pairs") or []
    if not pairs:
        return
    print(f"\nPareto pairs (token filtering reaches >= {agg.get('ratio')} of the document filter's forget increase "
          "at a lower retain increase; share of seeds where it holds):\n")
    print("| size | document run | Δ forget | Δ retain | token run | Δ forget | Δ retain | holds |")
    print("|---|---|---|---|---|---|---|---|")
    for p in pairs:
        doc, tok = p["document"], p["token"]
        print(f"| {p['size']} | {config_name(doc)} | {format_stat(doc['forget_increase'], '+.3f')} | "
              f"{format_stat(doc['retain_increase'], '+.3f')} | {config_name(tok)} | "
              f"{format_stat(tok['forget_increase'], '+.3f')} | {format_stat(tok['retain_increase'], '+.3f')} | "
              f"{p['holds_share']:.0%} of {p['n']} |")


def canaries(results: dict, size: str | None) -> None:
    entries = [e for e in results["aggregates"]["runs"] if e.get("canaries") and (not size or e["size"] == size)]
    if not entries:
        return
    sizes = list(dict.fromkeys(e["size"] for e in entries))
    chance = next(r["canaries"]["forget"].get("chance") for r in results["runs"] if r.get("canaries"))
    print(f"\ncanary facts: accuracy on seen templates (chance {chance:.2f}), mean [95% t-interval] over seeds; "
          "embedded = the fact lives only inside documents of the other side\n")
    print("| configuration | medical | biology | medical, embedded in biology/general | biology, embedded in medical |")
    print("|---|---|---|---|---|")
    for e in entries:
        if e["size"] != sizes[-1] and not size:
            continue
        c = e["canaries"]
        print(f"| {config_name(e)} | {format_stat(c['forget']['accuracy'], '.2f')} | "
              f"{format_stat(c['retain']['accuracy'], '.2f')} | "
              f"{format_stat((c['forget'].get('by_placement') or {}).get('embedded'), '.2f')} | "
              f"{format_stat((c['retain'].get('by_placement') or {}).get('embedded'), '.2f')} |")
    attacked = (results["aggregates"].get("robustness") or {})
    if not any("canaries" in entry for entry in attacked.values()):  # results.json written before the aggregate
        attacked = section_by_mode(results.get("robustness") or {}, results["runs"], ())
    rows = [[mode, *(format_stat(entry["canaries"][when][domain], ".2f")
                     for domain in ("forget", "retain") for when in ("before", "after"))]
            for mode, entry in attacked.items() if "canaries" in entry]
    if rows:
        _table(["attacked model", "medical before", "medical after", "biology before", "biology after"], rows)


def _table(header: list[str], rows: list[list[str]]) -> None:
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def posthoc(results: dict) -> None:
    agg = results.get("aggregates") or {}
    robust = agg.get("robustness") or {}
    if robust:
        _table(["attacked model", "tokens to recover the unfiltered forget loss", "fraction of pretraining", "reached"],
               [[mode, format_stat(e.get("recovery_tokens"), ",.0f"), format_stat(e.get("recovery_fraction"), ".3f"),
                 f"{e.get('reached_share', 0):.0%} of {e['n']}"] for mode, e in robust.items()])
    refusal = agg.get("refusal") or {}
    if refusal:
        _table(["model", "medical refusal rate", "general refusal rate"],
               [[mode, format_stat(e.get("forget_refusal_rate"), ".3f"), format_stat(e.get("general_refusal_rate"),
                                                                                    ".3f")]
                for mode, e in refusal.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a results.json file or a run directory holding one")
    parser.add_argument("--size", help="only this model size in the loss table")
    args = parser.parse_args()
    path = Path(args.results)
    results = json.loads((path / "results.json" if path.is_dir() else path).read_text())
    classifier(results)
    print()
    losses(results, args.size)
    slowdowns(results)
    pareto(results)
    canaries(results, args.size)
    posthoc(results)


if __name__ == "__main__":
    main()
