"""robustness: the finetuning attack on each mode's main model and on the RMU-unlearned baseline.

The section is built by `posthoc.suite.robustness_section` (the one builder, tested as such); this step only chooses
the models (the largest size, first threshold of each mode) and the texts: attack/RMU training text from the
benchmark's valid split, the attack's held-out measure from the clean test split.
"""

from __future__ import annotations

from dataclasses import asdict

from tokfilter.labels.benchmark import load_benchmark
from tokfilter.pipeline.context import Context
from tokfilter.posthoc.suite import rmu_name, robustness_section

NAME = "robustness"


def config(ctx: Context) -> dict:
    return asdict(ctx.exp.robustness)


def run(ctx: Context, runs: list[dict]) -> dict:
    main = ctx.main_runs(runs)
    if "none" not in main:
        return {"skipped": "needs an unfiltered run"}
    train = load_benchmark(ctx.out / "benchmark", "valid")
    forget_train = [b.document.text for b in train if b.document.domain == "forget"]
    retain_train = [b.document.text for b in train if b.document.domain == "retain"]
    baseline = main["none"]["name"]
    models = {run["name"]: ctx.run_dir(run["name"]) for run in main.values()}
    return robustness_section(models, baseline, forget_train, retain_train, ctx.held_out_texts("forget"),
                              ctx.run_dir(rmu_name(baseline)), ctx.exp.robustness, ctx.exp.seed)
