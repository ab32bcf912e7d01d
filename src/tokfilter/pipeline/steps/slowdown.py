"""slowdown: compute slowdown of each filtered run against the unfiltered runs' power law (evaluate/slowdown.py)."""

from __future__ import annotations

from tokfilter.evaluate.slowdown import slowdown_for_results
from tokfilter.pipeline.context import Context

NAME = "slowdown"


def config(ctx: Context) -> dict:
    return {}


def run(ctx: Context, runs: list[dict]) -> dict:
    baselines = [r for r in runs if r["mode"] == "none"]
    if len({r["flops"] for r in baselines}) < 2:
        return {"skipped": "needs unfiltered runs at two or more compute budgets (add sizes)"}
    return slowdown_for_results({"runs": runs}, samples=1000, seed=ctx.exp.seed)
