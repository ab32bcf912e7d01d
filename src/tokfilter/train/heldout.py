"""Held-out loss per domain, the training loop's evaluation hook (PAPER.md, "Evaluation: domain loss").

From a held-out shard set whose documents carry a `domain` (forget / retain / general in the demo), each domain's
documents are concatenated (eot-separated, in order) up to `max_tokens` and cut into windows of seq_len+1 tokens with
stride seq_len, so every token is predicted exactly once. Per domain we report

  loss      mean cross-entropy over all tokens of the domain's documents (nats/token; "whole text"),
  own_loss  the same restricted to the domain's own tokens: forget-labelled tokens for the forget domain, tokens not
            labelled forget for the others (labels from a score sidecar, e.g. the exact `truth` labels), eot excluded,
  bpb / own_bpb  the same in bits per UTF-8 byte (byte length of each token from the tokenizer's decoding of it alone;
            exact for ASCII, approximate for tokens that split a multi-byte character).
Evaluation always feeds the raw text: a removal-trained model is measured on real forget text, never on `<|hidden|>`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tokfilter.errors import UserError
from tokfilter.filtering import IGNORE_INDEX, token_labels
from tokfilter.shards import ShardSet


def token_byte_lengths(tokenizer, vocab_size: int, special_ids: tuple[int, ...] = ()) -> np.ndarray:
    """UTF-8 byte length of every token id decoded on its own (0 for special tokens)."""
    lengths = np.zeros(vocab_size, dtype=np.int64)
    for i in range(vocab_size):
        if i in special_ids:
            continue
        try:
            lengths[i] = len(tokenizer.decode([i]).encode("utf-8"))
        except Exception:  # ids past the real vocabulary (padding rows) decode to nothing
            lengths[i] = 0
    return lengths


class HeldOut:
    """Per-domain evaluation windows, built once; `evaluate(model)` returns the metrics dict."""

    def __init__(self, shards: ShardSet, seq_len: int, labels: str = "truth", threshold: float = 0.5,
                 forget_domain: str = "forget", max_tokens: int = 65536, batch_size: int = 16):
        self.seq_len, self.batch_size = seq_len, batch_size
        use_labels = bool(labels) and shards.has_scores(labels)
        streams: dict[str, list[np.ndarray]] = {}
        owns: dict[str, list[np.ndarray]] = {}
        counts: dict[str, int] = {}
        for i in range(shards.num_shards):
            tokens, ends, meta = shards.tokens(i), shards.doc_ends(i).astype(np.int64), shards.doc_meta(i)
            scores = shards.scores(i, labels) if use_labels else None
            start = 0
            for end, info in zip(ends, meta, strict=True):
                domain = str(info.get("domain", "unknown"))
                if counts.get(domain, 0) < max_tokens:
                    doc = np.asarray(tokens[start:end]).astype(np.int64)
                    if scores is not None:
                        forget = token_labels(scores[start:end], threshold)
                        own = forget if domain == forget_domain else ~forget
                    else:
                        own = np.ones(len(doc), dtype=bool)
                    own &= doc != shards.eot_id
                    streams.setdefault(domain, []).append(doc)
                    owns.setdefault(domain, []).append(own)
                    counts[domain] = counts.get(domain, 0) + len(doc)
                start = int(end)
        if not streams:
            raise UserError(f"{shards.dir}: held-out shards hold no documents")
        self.has_own = use_labels
        byte_len = None
        try:
            tokenizer = shards.tokenizer()
            byte_len = token_byte_lengths(tokenizer, shards.vocab_size, (shards.eot_id, shards.hidden_id))
        except UserError:
            pass
        self.windows = {d: self._windows(np.concatenate(streams[d])[:max_tokens + 1],
                                         np.concatenate(owns[d])[:max_tokens + 1], byte_len) for d in streams}

    def _windows(self, stream: np.ndarray, own: np.ndarray, byte_len: np.ndarray | None):
        T = self.seq_len
        n = max(math.ceil((len(stream) - 1) / T), 1)
        x = np.zeros((n, T), dtype=np.int64)
        y = np.full((n, T), IGNORE_INDEX, dtype=np.int64)
        own_y = np.zeros((n, T), dtype=bool)
        for r in range(n):
            chunk = stream[r * T:r * T + T + 1]
            x[r, :len(chunk) - 1] = chunk[:-1]
            y[r, :len(chunk) - 1] = chunk[1:]
            own_y[r, :len(chunk) - 1] = own[r * T + 1:r * T + len(chunk)]
        nbytes = byte_len[np.where(y >= 0, y, 0)] * (y >= 0) if byte_len is not None else None
        return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(own_y), nbytes

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, device: torch.device | str = "cpu",
                 autocast_dtype: torch.dtype | None = None) -> dict[str, dict[str, float]]:
        was_training = model.training
        model.eval()
        device = torch.device(device)
        results = {}
        for domain, (x, y, own, nbytes) in self.windows.items():
            losses = []
            for a in range(0, len(x), self.batch_size):
                xb, yb = x[a:a + self.batch_size].to(device), y[a:a + self.batch_size].to(device)
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    losses.append(model(xb, yb, reduction="none").float().cpu())
            nll = torch.cat(losses).double()
            valid = y >= 0
            total, n = float(nll[valid].sum()), int(valid.sum())
            own_total, own_n = float(nll[own].sum()), int(own.sum())
            entry = {"loss": total / max(n, 1), "tokens": n}
            if self.has_own:
                entry.update(own_loss=own_total / own_n if own_n else None, own_tokens=own_n)
            if nbytes is not None:
                entry["bpb"] = total / math.log(2) / max(int(nbytes.sum()), 1)
                if self.has_own and own_n:
                    entry["own_bpb"] = own_total / math.log(2) / max(int(nbytes[own.numpy()].sum()), 1)
            results[domain] = entry
        model.train(was_training)
        return results
