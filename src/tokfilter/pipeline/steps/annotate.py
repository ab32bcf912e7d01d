"""annotate: p(forget) for every training token (`shards/*.scores.forget.npy`), one scoring process per core."""

from __future__ import annotations

import os
from dataclasses import asdict

from tokfilter.annotate.pipeline import annotate
from tokfilter.pipeline.context import Context

NAME = "annotate"
NEEDS = ["classifier", "shards"]


def config(ctx: Context) -> dict:
    return asdict(ctx.exp.annotate)


def run(ctx: Context) -> dict:
    a = ctx.exp.annotate
    for stale in (ctx.out / "shards").glob("*.scores.forget*"):
        stale.unlink()
    workers = a.workers or os.cpu_count() or 1
    summary = annotate(ctx.out / "classifier", ctx.out / "shards", name="forget", executor=a.executor,
                       workers=workers, progress=False)
    return {key: summary[key] for key in summary if key != "shards"}
