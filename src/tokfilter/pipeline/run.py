"""The order of the pipeline's steps, written once, and the loop that runs them with caching.

    plan (every stage's data needs checked) -> corpus -> tokenizer -> shards -> classifier (quality gate)
    -> annotate -> pretrain (one step per run) -> mcq (one per run) -> canaries (one per run, when enabled)
    -> slowdown -> robustness -> refusal -> results.json -> report

Each step is cached under a hash of its config and its inputs' keys (cache.py), so a rerun with nothing changed takes
seconds and changing one setting recomputes only what depends on it. Output layout (a contract): results.json,
report.html, figures/, classifier/, baselines/, shards/, eval-shards/, runs/<name>/, view.html, benchmark/,
tokenizer.json.
"""

from __future__ import annotations

import time
from pathlib import Path

from tokfilter.atomic import write_json
from tokfilter.pipeline.cache import Stages
from tokfilter.pipeline.context import Context
from tokfilter.pipeline.experiment import Experiment
from tokfilter.pipeline.plan import make_plan
from tokfilter.pipeline.results import build_results
from tokfilter.pipeline.steps import (
    annotate,
    canaries,
    classifier,
    corpus,
    mcq,
    pretrain,
    refusal,
    report,
    robustness,
    shards,
    slowdown,
    tokenizer,
)

STEPS = [corpus, tokenizer, shards, classifier, annotate, pretrain, mcq, canaries, slowdown, robustness, refusal,
         report]


def run_pipeline(exp: Experiment, out: str | Path, force: bool = False,
                 estimates: dict[str, float] | None = None) -> dict:
    """Run every step of `exp` into `out`; returns results.json's content (also written there)."""
    started = time.time()
    plan = make_plan(exp)
    plan.check()  # every stage's data needs, before the first step writes anything
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    planned = [step.NAME for step in STEPS if step is not canaries or exp.canaries.enabled]
    stages = Stages(out, planned, estimates=estimates, force=force)
    ctx = Context(exp, out, stages, prepared=plan.prepared)

    for step in (corpus, tokenizer, shards, classifier, annotate):
        stages.run(step.NAME, step.config(ctx), step.NEEDS, lambda step=step: step.run(ctx))
        if step is classifier:  # a weak classifier stops the run before annotation and pretraining
            classifier.quality_gate(ctx, ctx.result("classifier"))

    runs = []
    for run in pretrain.plan(exp):
        key = f"pretrain:{run['name']}"
        stages.planned.insert(stages.planned.index("pretrain"), key)
        runs.append(stages.run(key, pretrain.config(ctx, run), pretrain.needs(exp),
                               lambda run=run: pretrain.run_one(ctx, run)))
    for run in runs:
        run["mcq"] = stages.run(f"mcq:{run['name']}", mcq.config(ctx), [f"pretrain:{run['name']}"],
                                lambda run=run: mcq.run_one(ctx, run))
        if exp.canaries.enabled:
            run["canaries"] = stages.run(f"canaries:{run['name']}", canaries.config(ctx), canaries.needs(run),
                                         lambda run=run: canaries.run_one(ctx, run))
    run_keys = [f"pretrain:{run['name']}" for run in runs]
    sections = {}
    for step, enabled in ((slowdown, True), (robustness, exp.robustness.enabled), (refusal, exp.refusal.enabled)):
        if step.NAME in plan.skipped:  # optional and not supported by the data: the reason goes to results.json
            sections[step.NAME] = {"skipped": plan.skipped[step.NAME]}
        elif enabled:
            sections[step.NAME] = stages.run(step.NAME, step.config(ctx), run_keys, lambda step=step: step.run(ctx, runs))
        else:
            sections[step.NAME] = {}

    results = build_results(exp, started, ctx.result("classifier"), runs, sections["slowdown"],
                            sections["robustness"], sections["refusal"],
                            {**ctx.result("corpus"), **ctx.result("shards")}, stages)
    write_json(out / "results.json", results)
    report.run(ctx)
    return results
