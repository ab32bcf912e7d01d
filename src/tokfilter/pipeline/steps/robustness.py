"""robustness: the finetuning attack on each mode's main model and on the RMU-unlearned baseline.

The section is built by `posthoc.suite.robustness_section` (the one builder, tested as such); this step only chooses
the models (the largest size, first threshold of each mode) and the texts: attack/RMU training text from the
benchmark's valid split, the attack's held-out measure from the clean test split.

With several seeds the whole comparison (RMU on that seed's baseline, every attack) runs once per seed, with that
seed, on that seed's models; the entries are keyed by run name (`...-s{seed}`, `...-s{seed}-rmu`), so the section
is the union of the seeds' sections. One seed: exactly the one-seed section.

With `[canaries] enabled`, every attacked model also answers the canary questions before and after the attack
(`robustness.<model>.canaries.{before,after}`): the attack text (the benchmark's valid split) holds no canary, so a
model that never learned a fact cannot get it back from it; an unlearned one that only hid it may.
"""

from __future__ import annotations

from dataclasses import asdict

from tokfilter.labels.benchmark import load_benchmark
from tokfilter.pipeline.context import Context
from tokfilter.posthoc.suite import rmu_name, robustness_section

NAME = "robustness"


def config(ctx: Context) -> dict:
    return asdict(ctx.exp.robustness) | ({"canaries": asdict(ctx.exp.canaries)} if ctx.exp.canaries.enabled else {})


def run(ctx: Context, runs: list[dict]) -> dict:
    mains = {seed: ctx.main_runs(runs, seed) for seed in ctx.seeds()}
    if any("none" not in main for main in mains.values()):
        return {"skipped": "needs an unfiltered run"}
    train = load_benchmark(ctx.out / "benchmark", "valid")
    forget_train = [b.document.text for b in train if b.document.domain == "forget"]
    retain_train = [b.document.text for b in train if b.document.domain == "retain"]
    forget_eval = ctx.held_out_texts("forget")
    probes = None
    if ctx.exp.canaries.enabled:
        from tokfilter.canaries.evaluate import evaluate_canaries  # torch
        from tokfilter.canaries.questions import read_questions

        questions = read_questions(ctx.out / "canaries" / "questions.jsonl")
        tokenizer = ctx.tokenizer()
        probes = {"canaries": lambda model: evaluate_canaries(model, tokenizer, questions)}
    section: dict = {}
    for seed, main in mains.items():
        baseline = main["none"]["name"]
        models = {run["name"]: ctx.run_dir(run["name"]) for run in main.values()}
        section.update(robustness_section(models, baseline, forget_train, retain_train, forget_eval,
                                          ctx.run_dir(rmu_name(baseline)), ctx.exp.robustness, seed,
                                          probes=probes))
    return section
