"""Log-likelihood scoring of token continuations with any causal LM: the engine behind MCQ and the lm-eval adapter.

The model is seen through one callable, `logits_fn(idx: LongTensor (B, T)) -> logits (B, T, V)` (a `tokfilter.model.GPT`
is one), so the same code scores tokfilter checkpoints, test doubles and foreign models.

A request is `(context_ids, continuation_ids)`; its score is the sum of log p(continuation token | everything before
it). Contexts are encoded separately from continuations (as lm-evaluation-harness does), and an empty context is
replaced by the end-of-text token, which is also what precedes every document in training. A request longer than the
model's `seq_len` + 1 tokens is left-truncated: the oldest context tokens are dropped, so the model sees the last
`seq_len` tokens before each scored token; if the continuation alone is longer, only its last `seq_len` tokens are
scored. Requests are sorted by length and batched under a token budget (`max_batch_tokens`), right-padded (causal
attention makes right padding invisible to earlier positions), and the log-softmax is taken only at the scored
positions, so a 100k vocabulary costs memory only for the continuation tokens.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

LogitsFn = Callable[[torch.Tensor], torch.Tensor]


class LogLikelihoodScorer:
    """Batched continuation log-likelihoods for a causal LM with a fixed context window `seq_len`."""

    def __init__(self, logits_fn: LogitsFn, seq_len: int, pad_id: int = 0, device: str | torch.device = "cpu",
                 max_batch_tokens: int = 8192, max_batch_size: int = 64, autocast_dtype: torch.dtype | None = None):
        self.logits_fn = logits_fn
        self.seq_len = int(seq_len)
        self.pad_id = int(pad_id)
        self.device = torch.device(device)
        self.max_batch_tokens = max(int(max_batch_tokens), self.seq_len)
        self.max_batch_size = max(1, int(max_batch_size))
        self.autocast_dtype = autocast_dtype

    def _window(self, context: Sequence[int], continuation: Sequence[int]) -> tuple[list[int], list[int]]:
        """Input ids and scored target ids of one request after left truncation."""
        context = list(context) or [self.pad_id]
        full = context + list(continuation)
        full = full[-(self.seq_len + 1):]
        n_cont = min(len(continuation), len(full) - 1)
        return full[:-1], full[len(full) - n_cont:]

    def loglikelihoods(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]],
                       progress: bool = False) -> list[tuple[float, bool]]:
        """For each request: (sum of continuation log-probs, whether every continuation token is the argmax)."""
        return [(float(lp.sum()), bool(greedy.all())) for lp, greedy in self.token_logprobs(requests, progress)]

    @torch.no_grad()
    def token_logprobs(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]],
                       progress: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each request: per-token log-probs (float64, one per scored continuation token) and argmax hits.

        Requests with a one-token continuation and the same (truncated) context share one forward row, so letter
        scoring (" A", " B", ...) costs one forward pass per question, not one per option."""
        rows: list[tuple[list[int], list[int], list[int]]] = []  # (input ids, scored positions, target ids)
        members: list[list[tuple[int, int, int]]] = []  # per row: (request index, first target, n targets)
        shared: dict[tuple[int, ...], int] = {}
        for i, (ctx, cont) in enumerate(requests):
            inp, tgt = self._window(ctx, cont)
            if len(tgt) == 1:
                key = tuple(inp)
                if key in shared:
                    row = rows[shared[key]]
                    members[shared[key]].append((i, len(row[2]), 1))
                    row[1].append(len(inp) - 1)
                    row[2].append(tgt[0])
                    continue
                shared[key] = len(rows)
            rows.append((inp, list(range(len(inp) - len(tgt), len(inp))), list(tgt)))
            members.append([(i, 0, len(tgt))])
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r][0]))
        results: list = [None] * len(requests)
        bar = tqdm(total=len(requests), desc="scoring", unit="req", file=sys.stderr, disable=not progress,
                   leave=False)
        start = 0
        while start < len(order):
            longest = len(rows[order[start]][0])
            size = max(1, min(self.max_batch_size, self.max_batch_tokens // max(1, longest)))
            batch = order[start: start + size]
            start += len(batch)
            for r, (lp, greedy) in zip(batch, self._score_batch([rows[r] for r in batch]), strict=True):
                for i, first, n in members[r]:
                    results[i] = (lp[first: first + n], greedy[first: first + n])
                bar.update(len(members[r]))
        bar.close()
        return results

    def _score_batch(self, rows: list[tuple[list[int], list[int], list[int]]]) -> list[tuple[np.ndarray, np.ndarray]]:
        T = max(len(inp) for inp, _, _ in rows)
        idx = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        row_ids, cols, targets = [], [], []
        for b, (inp, positions, tgt) in enumerate(rows):
            idx[b, : len(inp)] = torch.tensor(inp, dtype=torch.long)
            row_ids += [b] * len(tgt)
            cols += positions
            targets += tgt
        idx = idx.to(self.device)
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
                    else nullcontext())
        with autocast:
            logits = self.logits_fn(idx)
        picked = logits[torch.tensor(row_ids, device=logits.device), torch.tensor(cols, device=logits.device)]
        logprobs = F.log_softmax(picked.float(), dim=-1)
        target = torch.tensor(targets, dtype=torch.long, device=logits.device)
        token_lp = logprobs.gather(1, target[:, None])[:, 0].double().cpu().numpy()
        greedy = (logprobs.argmax(dim=-1) == target).cpu().numpy()
        out, pos = [], 0
        for _, _, tgt in rows:
            out.append((token_lp[pos: pos + len(tgt)], greedy[pos: pos + len(tgt)]))
            pos += len(tgt)
        return out

    def rolling_token_logprobs(self, sequences: Sequence[Sequence[int]], prefix_id: int | None = None,
                               progress: bool = False) -> list[np.ndarray]:
        """Per-token log-probs of whole token sequences, each cut into disjoint windows of `seq_len` tokens (a
        window's first token is predicted from the previous token only, as at the start of a training sequence;
        `prefix_id`, e.g. end-of-text, precedes each sequence's first token). All windows are batched together."""
        prefix = [self.pad_id if prefix_id is None else prefix_id]
        requests, owners = [], []
        for k, seq in enumerate(sequences):
            seq = list(seq)
            for start in range(0, len(seq), self.seq_len):
                context = prefix if start == 0 else [seq[start - 1]]
                requests.append((context, seq[start: start + self.seq_len]))
                owners.append(k)
        pieces: list[list[np.ndarray]] = [[] for _ in sequences]
        for k, (lp, _) in zip(owners, self.token_logprobs(requests, progress), strict=True):
            pieces[k].append(lp)
        return [np.concatenate(p) if p else np.zeros(0) for p in pieces]

    def rolling_loglikelihood(self, ids: Sequence[int], prefix_id: int | None = None) -> float:
        """Log-likelihood of a whole token sequence (see `rolling_token_logprobs`)."""
        return float(self.rolling_token_logprobs([ids], prefix_id)[0].sum())
