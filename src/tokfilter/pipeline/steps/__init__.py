"""One module per pipeline stage, in the order `run.py` lists them.

A step module defines `NAME`, `NEEDS` (the steps whose cache keys enter its own), `config(ctx) -> dict` (the
settings that enter its cache key) and `run(ctx) -> dict` (writes its outputs under `ctx.out` and returns a
JSON-able result, recorded in `.stages/NAME.json`). `pretrain` and `mcq` run once per planned run: they define
`run_one(ctx, run)` and their keys are `pretrain:NAME` / `mcq:NAME`.
"""
