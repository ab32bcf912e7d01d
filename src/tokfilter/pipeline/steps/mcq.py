"""mcq: multiple choice on the probe sets and any standard files named in `[eval] mcq`, per pretraining run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tokfilter.errors import UserError
from tokfilter.evaluate.probes import probe_path
from tokfilter.pipeline.context import Context

NAME = "mcq"


def config(ctx: Context) -> dict:
    return {"eval": asdict(ctx.exp.eval)}


def mcq_sets(ctx: Context) -> dict[str, tuple[str, str]]:
    """{set name: (path, format)} for every MCQ set of the experiment (`probes` = the shipped probe sets)."""
    sets: dict[str, tuple[str, str]] = {}
    for entry in ctx.exp.eval.mcq:
        if entry == "probes":
            sets.update({f"probes_{kind}": (str(probe_path(kind)), "jsonl") for kind in ("forget", "retain")})
        else:
            fmt, sep, path = entry.partition(":")
            if not sep:
                raise UserError(f"eval.mcq entry {entry!r}: expected 'probes' or FORMAT:PATH")
            sets[Path(path).stem] = (path, fmt)
    return sets


def run_one(ctx: Context, run: dict) -> dict:
    from tokfilter.evaluate.loading import load_checkpoint  # torch
    from tokfilter.evaluate.mcq import evaluate_sets

    model, tokenizer = load_checkpoint(ctx.run_dir(run["name"]), device="auto")  # CUDA when there is one
    return evaluate_sets(model, tokenizer, mcq_sets(ctx), limit=ctx.exp.eval.mcq_limit or None)
