"""Held-out loss of a model on a list of texts, measured exactly as pretraining measures its held-out loss.

The attack's recovery target, its loss curve and RMU's before/after losses must be comparable with each other and
with the pretraining runs' own numbers, so they all go through the training loop's evaluator
(`tokfilter.train.heldout.HeldOut`): the texts are written as one-domain ('eval') shards in a temporary directory
and scored as whole-text nats/token, at most `max_tokens` tokens, bf16 autocast on CUDA.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tokfilter.corpus import Document
from tokfilter.runtime import autocast_dtype
from tokfilter.shards import ShardSet, write_shards
from tokfilter.train.heldout import HeldOut


class HeldOutLoss:
    """Held-out loss on a fixed list of texts; `loss(model)` may be called on any model with the same tokenizer."""

    def __init__(self, tokenizer, texts: list[str], seq_len: int, max_tokens: int, batch_size: int = 16):
        docs = [Document(id=f"eval-{i}", text=t, domain="eval") for i, t in enumerate(texts)]
        with tempfile.TemporaryDirectory(prefix="tokfilter-heldout-") as tmp:
            write_shards(docs, tokenizer, Path(tmp) / "shards", progress=False)
            shards = ShardSet(Path(tmp) / "shards", expect_tokenizer_hash=tokenizer.hash)
            self.heldout = HeldOut(shards, seq_len, labels="", max_tokens=max_tokens, batch_size=batch_size)

    def loss(self, model) -> float:
        device = next(model.parameters()).device
        return float(self.heldout.evaluate(model, device, autocast_dtype(device))["eval"]["loss"])
