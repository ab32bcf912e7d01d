"""slowdown: compute slowdown of each filtered run against the unfiltered runs' power law (evaluate/slowdown.py).

The run records passed on carry `seed` and `size`, so with several seeds the bootstrap redraws seeds (baseline
sizes' seeds and each filtered configuration's seeds), every per-run interval reflects seed noise as well as the
fit, and the section gains `aggregates` (per configuration, over seeds). With one seed it is the fit-only bootstrap.
"""

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
