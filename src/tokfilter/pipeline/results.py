"""The results.json schema (DESIGN.md, a contract), written in one place: run records, the whole file, the summary.

`run_record` turns a training summary into one `runs[]` entry; `build_results` assembles the file from the steps'
results; `print_summary` prints the runs side by side and the headline comparisons on stdout.
"""

from __future__ import annotations

import time

from tokfilter import __version__
from tokfilter.evaluate.pareto import describe, pareto_summary


def run_record(run: dict, summary: dict) -> dict:
    """One `runs[]` entry of results.json from a training summary.

    `flops` is flops per token x *effective* tokens for every mode (the compute every fit and table uses);
    `flops_processed` counts every position that went through the model. `threshold` is the token threshold
    (p(forget) >= threshold; for document runs the one behind the `frac` aggregate), `doc_threshold` and
    `doc_aggregate` the document rule (null for token modes)."""
    return {
        "name": run["name"], "mode": run["mode"], "threshold": summary.get("threshold"), "size": run["size"],
        "doc_threshold": summary.get("doc_threshold"), "doc_aggregate": summary.get("doc_aggregate"),
        "seed": summary.get("seed"), "steps": summary.get("steps"),
        "params": summary.get("params"), "train_tokens": summary.get("train_tokens"),
        "effective_tokens": summary.get("effective_tokens"), "flops": summary.get("flops"),
        "flops_processed": summary.get("flops_processed"),
        "tokens_filtered_frac": summary.get("tokens_filtered_frac"),
        "loss": summary.get("loss", {}), "loss_own": summary.get("loss_own", {}), "bpb": summary.get("bpb", {}),
        "seconds": summary.get("seconds"),
    }


def build_results(exp, started: float, classifier: dict, runs: list[dict], slowdown: dict, robustness: dict,
                  refusal: dict, corpus: dict, stages) -> dict:
    """results.json as a dict (keys in the documented order)."""
    return {
        "tokfilter_version": __version__, "experiment": exp.name, "seed": exp.seed,
        "wall_seconds": round(time.time() - started, 2),
        "classifier": classifier, "runs": runs, "pareto": pareto_summary(runs), "slowdown": slowdown,
        "robustness": robustness,
        "refusal": refusal,
        "corpus": corpus,
        "stages": {"seconds": stages.timings, "cached": stages.cached},
        "config": exp.to_dict(),
    }


def print_summary(results: dict) -> None:
    """The runs' losses side by side, the classifier and the headline comparisons, on stdout."""
    c = results.get("classifier") or {}
    if c:
        print(f"classifier {c.get('kind')}: F1 {c.get('f1', 0):.3f}  AUROC {c.get('auroc', 0):.3f}  "
              f"threshold {c.get('threshold', 0):.2f}")
        natural = (c.get("natural") or {}).get("all")
        if natural:
            print(f"  natural-text dev set F1 {natural['f1']:.3f} (hand-labelled real documents; docs/classifiers.md)")
        for b in c.get("baselines", []):
            print(f"  baseline {b.get('kind'):<10} F1 {b.get('f1', 0):.3f}")
    print(f"{'run':<28}{'forget':>9}{'retain':>9}{'general':>9}{'filtered':>10}")
    for run in results.get("runs", []):
        loss = run.get("loss", {})
        print(f"{run['name']:<28}{loss.get('forget', float('nan')):>9.3f}{loss.get('retain', float('nan')):>9.3f}"
              f"{loss.get('general', float('nan')):>9.3f}{run.get('tokens_filtered_frac') or 0:>10.1%}")
    lines = describe(results.get("pareto") or {})
    if lines:
        print("token removal vs document filtering (loss change against the unfiltered run of the same size):")
        for line in lines:
            print(f"  {line}")
