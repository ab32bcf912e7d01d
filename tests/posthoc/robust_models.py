"""Helpers for the post-hoc tests: tiny trained checkpoints on the embedded demo corpus (a few seconds).

The fixtures built from them (`robust_models`, the autouse `one_thread`) live in conftest.py.

`tiny_models(tmp)` trains a small BPE (512) on demo training text and two 3-layer GPTs (d=32, seq_len=64) for
`steps` steps of 8 x 64 tokens each: `full` on forget + retain + general text, and `filtered` on retain + general only (the
document-filtered analogue). Both are real checkpoint directories with a run summary (pretraining tokens).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from tokfilter.corpus.demo import load_demo
from tokfilter.model import GPT, GPTConfig
from tokfilter.posthoc.texts import TokenStreamSampler, token_stream
from tokfilter.tokenizer import train_tokenizer
from tokfilter.train.checkpoint import save_checkpoint
from tokfilter.train.optim import finetune_step as train_step
from tokfilter.train.optim import make_optimizer


def demo_texts(domain: str, split: str, n: int) -> list[str]:
    return [d.text for d in load_demo(split=split, domains=domain)][:n]


def train_tiny(tokenizer, texts: list[str], out: Path, steps: int, seed: int = 0, n_layer: int = 3,
               d_model: int = 32, seq_len: int = 64, batch_size: int = 8, lr: float = 1e-2) -> Path:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=n_layer, n_head=2, d_model=d_model,
                          seq_len=seq_len, mup_base_width=d_model))
    stream = token_stream(tokenizer, texts)
    sampler = TokenStreamSampler(stream, seq_len, batch_size, seed)
    optimizer = make_optimizer(model, lr)
    for _ in range(steps):
        x, y = sampler.next_batch()
        train_step(model, optimizer, x, y)
    model.eval()
    save_checkpoint(out / "checkpoint", model, train_config=None, tokenizer=tokenizer)
    (out / "summary.json").write_text(json.dumps({"train_tokens": steps * batch_size * seq_len}))
    return out


def tiny_models(tmp: Path, steps: int = 80) -> dict[str, Path]:
    forget, retain, general = (demo_texts(d, "train", 120) for d in ("forget", "retain", "general"))
    tokenizer = train_tokenizer(forget + retain + general, 512, tmp / "tokenizer.json")
    return {"full": train_tiny(tokenizer, forget + retain + general, tmp / "full", steps),
            "filtered": train_tiny(tokenizer, retain + general, tmp / "filtered", steps),
            "tokenizer": tmp / "tokenizer.json"}


@contextlib.contextmanager
def single_thread():
    """Models this small run fastest on one thread, and a second thread only adds contention on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
