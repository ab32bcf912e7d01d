"""`tokfilter eval loss`: per-domain held-out loss of a checkpoint on shards or on a raw corpus.

The measurement itself is the training loop's held-out evaluation (`tokfilter.train.heldout.HeldOut`: whole-text
loss and own-domain-token loss in nats/token and bits/byte per domain), so numbers printed here are the numbers the
training logs and results.json report. This module only prepares the input: a shard directory is used as is (its
tokenizer must be the checkpoint's); a corpus (files, globs, `DOMAIN=PATH`, `demo`) is tokenized into a temporary
shard directory first. Own-domain-token loss needs a per-token score sidecar on the shards (`--labels NAME`, e.g.
the exact `truth` labels or a classifier's `forget` scores), so it is only available for shard input.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from tokfilter.corpus import read_corpus
from tokfilter.errors import UserError
from tokfilter.shards import ShardSet, write_shards


def evaluate_loss(model, tokenizer, data: list[str], labels: str | None = None, threshold: float = 0.5,
                  forget_domain: str = "forget", max_tokens: int = 65536, batch_size: int = 16,
                  progress: bool = True) -> dict:
    """Per-domain loss metrics (see `HeldOut`) of `model` on shards or a corpus."""
    from tokfilter.train.heldout import HeldOut

    device = next(model.parameters()).device
    autocast = torch.bfloat16 if device.type == "cuda" else None
    seq_len = model.config.seq_len
    with tempfile.TemporaryDirectory(prefix="tokfilter-eval-loss-") as tmp:
        if len(data) == 1 and (Path(data[0]) / "manifest.json").is_file():
            shards = ShardSet(data[0], expect_tokenizer_hash=tokenizer.hash)
            kind = "shards"
        else:
            if labels:
                raise UserError("--labels needs a shard directory with a score sidecar (tokenize and annotate "
                                "the corpus first); a raw corpus gives whole-text loss only")

            write_shards(read_corpus(data), tokenizer, Path(tmp) / "shards", sources=list(data), progress=progress)
            shards = ShardSet(Path(tmp) / "shards", expect_tokenizer_hash=tokenizer.hash)
            kind = "corpus"
        if labels and not shards.has_scores(labels):
            have = ", ".join(shards.score_names()) or "none"
            raise UserError(f"{data[0]}: shards have no '{labels}' score sidecar (have: {have})")
        heldout = HeldOut(shards, seq_len, labels=labels or "", threshold=threshold, forget_domain=forget_domain,
                          max_tokens=max_tokens, batch_size=batch_size)
        domains = heldout.evaluate(model, device=device, autocast_dtype=autocast)
    return {"data": [str(d) for d in data], "input": kind, "seq_len": seq_len, "labels": labels or None,
            "threshold": threshold if labels else None, "forget_domain": forget_domain,
            "max_tokens_per_domain": max_tokens, "domains": domains,
            "units": {"loss": "nats/token", "bpb": "bits/byte", "own_loss": "nats/token on own-domain tokens"}}
