"""refusal: refusal SFT and evaluation of each mode's main model (`posthoc.suite.refusal_section`)."""

from __future__ import annotations

from dataclasses import asdict

from tokfilter.pipeline.context import Context
from tokfilter.posthoc.suite import refusal_section

NAME = "refusal"


def config(ctx: Context) -> dict:
    return asdict(ctx.exp.refusal)


def run(ctx: Context, runs: list[dict]) -> dict:
    models = {run["name"]: ctx.run_dir(run["name"]) for run in ctx.main_runs(runs).values()}
    return refusal_section(models, ctx.exp.refusal, ctx.exp.seed)
