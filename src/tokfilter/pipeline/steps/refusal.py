"""refusal: refusal SFT and evaluation of each mode's main model (`posthoc.suite.refusal_section`), per seed: each
seed's models with that seed, keyed by run name (one seed: exactly the one-seed section)."""

from __future__ import annotations

from dataclasses import asdict

from tokfilter.pipeline.context import Context
from tokfilter.posthoc.suite import refusal_section

NAME = "refusal"


def config(ctx: Context) -> dict:
    return asdict(ctx.exp.refusal)


def run(ctx: Context, runs: list[dict]) -> dict:
    section: dict = {}
    for seed in ctx.seeds():
        models = {run["name"]: ctx.run_dir(run["name"]) for run in ctx.main_runs(runs, seed).values()}
        section.update(refusal_section(models, ctx.exp.refusal, seed))
    return section
