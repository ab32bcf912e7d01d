"""tokenizer: the packaged demo BPE, a given SPEC, or a byte-level BPE trained on the benchmark's train split."""

from __future__ import annotations

import shutil
from dataclasses import asdict

from tokfilter.labels.benchmark import load_benchmark
from tokfilter.pipeline.context import Context
from tokfilter.tokenizer import load_tokenizer, train_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec

NAME = "tokenizer"
NEEDS = ["corpus"]


def config(ctx: Context) -> dict:
    return asdict(ctx.exp.tokenizer)


def run(ctx: Context) -> dict:
    t = ctx.exp.tokenizer
    target = ctx.out / "tokenizer.json"
    if t.spec:
        tokenizer = load_tokenizer(t.spec)
        if tokenizer.kind != "hf":
            return {"spec": t.spec, "hash": tokenizer.hash}
        shutil.copyfile(tokenizer.path, target)
    elif ctx.exp.data.corpus == ["demo"] and t.vocab_size == 4096:
        shutil.copyfile(default_tokenizer_spec(), target)  # trained on the demo's train split, shipped
    else:
        texts = (b.document.text for b in load_benchmark(ctx.out / "benchmark", "train"))
        train_tokenizer(texts, t.vocab_size, target)
    return {"spec": str(target), "hash": load_tokenizer(target).hash}
