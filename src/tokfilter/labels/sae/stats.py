"""Reference statistics of SAE latents: how each latent behaves on forget vs other (retain + general) text.

`LatentStats`: per-latent firing counts and activation sums on forget vs other reference text, the mean/std of each
latent on all reference text, and optionally each latent's top-activating contexts (for an LLM judge).
`reference_stats` computes them from residual activations through an SAE.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from tokfilter.labels.sae.model import SparseAutoencoder, encode_batched


@dataclass
class LatentStats:
    """Per-latent activation statistics on forget vs other reference tokens (float64 accumulators).

    With `top_examples > 0` it also keeps, per latent, the strongest activations as (value, doc, token) so a judge can
    read top-activating contexts (`contexts(latent)`); `docs` then holds each reference document's text and offsets.
    """

    d_sae: int
    top_examples: int = 0
    n: dict = field(default_factory=lambda: {"forget": 0, "other": 0})
    fires: dict = field(default_factory=dict)
    sums: dict = field(default_factory=dict)
    sq_sum: np.ndarray | None = None
    top_values: np.ndarray | None = None
    top_where: np.ndarray | None = None
    docs: list = field(default_factory=list)

    def __post_init__(self):
        for side in ("forget", "other"):
            self.fires.setdefault(side, np.zeros(self.d_sae, dtype=np.float64))
            self.sums.setdefault(side, np.zeros(self.d_sae, dtype=np.float64))
        if self.sq_sum is None:
            self.sq_sum = np.zeros(self.d_sae, dtype=np.float64)
        if self.top_examples and self.top_values is None:
            self.top_values = np.full((self.d_sae, self.top_examples), -np.inf, dtype=np.float32)
            self.top_where = np.full((self.d_sae, self.top_examples, 2), -1, dtype=np.int64)

    def add(self, latents: np.ndarray, side: str, text: str | None = None, offsets: np.ndarray | None = None) -> None:
        """Add one document's latents (n_tokens, d_sae); side is 'forget' or 'other'."""
        if side not in self.n:
            raise ValueError(f"side must be 'forget' or 'other', got {side!r}")
        latents = np.asarray(latents, dtype=np.float32)
        self.n[side] += len(latents)
        self.fires[side] += (latents > 0).sum(0)
        self.sums[side] += latents.sum(0, dtype=np.float64)
        self.sq_sum += np.square(latents, dtype=np.float64).sum(0)
        if self.top_examples and len(latents):
            doc = len(self.docs)
            self.docs.append((text or "", offsets if offsets is not None else np.zeros((0, 2), dtype=np.int64), side))
            m = min(self.top_examples, len(latents))
            pos = np.argpartition(-latents, m - 1, axis=0)[:m].T  # (d_sae, m) strongest tokens of this document
            vals = np.take_along_axis(latents.T, pos, axis=1)
            where = np.stack([np.full_like(pos, doc), pos], axis=-1)
            all_vals = np.concatenate([self.top_values, vals], axis=1)
            all_where = np.concatenate([self.top_where, where], axis=1)
            keep = np.argsort(-all_vals, axis=1, kind="stable")[:, :self.top_examples]
            self.top_values = np.take_along_axis(all_vals, keep, axis=1)
            self.top_where = np.take_along_axis(all_where, keep[..., None], axis=1)

    @property
    def total(self) -> int:
        return self.n["forget"] + self.n["other"]

    def mean(self) -> np.ndarray:
        return (self.sums["forget"] + self.sums["other"]) / max(self.total, 1)

    def std(self) -> np.ndarray:
        mean = self.mean()
        return np.sqrt(np.maximum(self.sq_sum / max(self.total, 1) - mean ** 2, 0.0))

    def rate(self, side: str) -> np.ndarray:
        return self.fires[side] / max(self.n[side], 1)

    def contexts(self, latent: int, width: int = 60) -> list[tuple[float, str]]:
        """Top-activating contexts of a latent: (activation, text with the token marked <<like this>>)."""
        if not self.top_examples:
            return []
        out = []
        for value, (doc, pos) in zip(self.top_values[latent], self.top_where[latent]):
            if doc < 0 or not value > 0:
                continue
            text, offsets, _ = self.docs[doc]
            start, end = (int(v) for v in offsets[pos])
            left = text[max(0, start - width):start].replace("\n", " ")
            right = text[end:end + width].replace("\n", " ")
            out.append((float(value), f"...{left}<<{text[start:end]}>>{right}..."))
        return out


def reference_stats(sae: SparseAutoencoder, forget: Iterable[tuple[np.ndarray, np.ndarray, str]],
                    other: Iterable[tuple[np.ndarray, np.ndarray, str]], top_examples: int = 0) -> LatentStats:
    """LatentStats from (activations, offsets, text) of forget and other reference documents."""
    stats = LatentStats(sae.d_sae, top_examples=top_examples)
    for side, docs in (("forget", forget), ("other", other)):
        for acts, offsets, text in docs:
            if len(acts):
                stats.add(encode_batched(sae, acts), side, text, offsets)
    return stats
