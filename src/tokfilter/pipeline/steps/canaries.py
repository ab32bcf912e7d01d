"""canaries: each pretraining run answers the planted canary questions (`runs[].canaries`), when enabled.

The questions were written by the shards step (canaries/questions.jsonl) from the facts it planted; scoring is
`canaries.evaluate.evaluate_canaries` (cloze over one option group, seen and held-out templates, a control with
never-planted names). One cached step per run, like mcq.
"""

from __future__ import annotations

from dataclasses import asdict

from tokfilter.pipeline.context import Context

NAME = "canaries"


def config(ctx: Context) -> dict:
    return {"canaries": asdict(ctx.exp.canaries)}


def needs(run: dict) -> list[str]:
    return [f"pretrain:{run['name']}", "shards"]


def run_one(ctx: Context, run: dict) -> dict:
    from tokfilter.canaries.evaluate import evaluate_canaries  # torch
    from tokfilter.evaluate.loading import load_checkpoint

    model, tokenizer = load_checkpoint(ctx.run_dir(run["name"]), device="auto")
    return evaluate_canaries(model, tokenizer, ctx.out / "canaries" / "questions.jsonl")
