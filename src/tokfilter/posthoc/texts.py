"""Finetuning text for the post-hoc methods: reading it, tokenizing it into one stream, and sampling windows.

The attack, RMU and the tests' tiny models all train on the same kind of data: documents tokenized and concatenated,
each followed by end-of-text (as in pretraining), from which batches of random windows of seq_len+1 tokens are
drawn with a seeded RNG (`TokenStreamSampler`; not the classifier's per-document `classify.data.WindowSampler`).
Texts come as strings or `Document`s (`as_texts`) or as corpus specs on the command line (`read_texts`).
"""

from __future__ import annotations

import numpy as np
import torch

from tokfilter.corpus import Document, read_corpus
from tokfilter.errors import UserError


def as_texts(docs, what: str) -> list[str]:
    """Texts from strings or Documents; empty input is a UserError."""
    texts = [d.text if isinstance(d, Document) else str(d) for d in docs]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise UserError(f"{what}: no text (empty document list)")
    return texts


def read_texts(specs: list[str] | str, what: str) -> list[str]:
    """Document texts from corpus specs: anything `read_corpus` reads (files, globs, `DOMAIN=PATH`, `demo`, and
    `demo:DOMAIN[:SPLIT]`, a domain and split of the embedded demo corpus, e.g. `demo:forget:train`)."""
    specs = [specs] if isinstance(specs, str) else list(specs)
    return as_texts([d.text for d in read_corpus(specs)], f"{what} ({', '.join(specs)})")


def token_stream(tokenizer, texts: list[str]) -> np.ndarray:
    """All texts tokenized, each followed by end-of-text, as one int64 array."""
    parts = []
    for ids in tokenizer.encode_batch_ids(texts):
        parts.append(np.asarray(ids, dtype=np.int64))
        parts.append(np.asarray([tokenizer.eot_id], dtype=np.int64))
    return np.concatenate(parts)


class TokenStreamSampler:
    """Seeded random windows of seq_len+1 tokens from one token stream -> (input_ids, targets) batches."""

    def __init__(self, stream: np.ndarray, seq_len: int, batch_size: int, seed: int = 0):
        if len(stream) < 2:
            raise UserError("finetuning data holds fewer than 2 tokens")
        self.stream = stream
        self.seq_len = min(seq_len, len(stream) - 1)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = self.rng.integers(0, len(self.stream) - self.seq_len, size=self.batch_size)
        rows = np.stack([self.stream[s:s + self.seq_len + 1] for s in starts])
        return torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(rows[:, 1:].copy())
