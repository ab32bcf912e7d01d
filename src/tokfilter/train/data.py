"""Training batches from token shards, with document / token-mask / token-removal filtering applied at load time.

Shards store per-token p(forget) scores, never decisions; everything here turns scores into decisions on the fly, so
a new threshold, noise rate or delay needs no re-annotation (PAPER.md, "Filtering during pretraining").

Modes (a batch is `(input_ids, targets)`, targets = -100 where no loss is taken; DESIGN.md "Training batches"):
  none      the token stream as is;
  document  documents whose aggregate score passes `doc_threshold` are dropped from the stream entirely (aggregate:
            the mean token score, or the fraction of tokens whose score >= `threshold`);
  mask      targets = -100 wherever the *target* token (the one being predicted) is forget; inputs unchanged;
  remove    as mask, and forget tokens in the input are replaced by the `<|hidden|>` id.
A token is forget when score >= threshold. End-of-text tokens are never forget: they are structure, and hiding one
would merge two documents. Label noise flips each token decision (each document decision in `document` mode) with
probability r; the flip is a hash of (seed, shard, position), so it is the same whichever order data is read in.
A delayed start (`delay` > 0) is handled by the caller passing `filtered=False` until the delay has passed.

Sampling: `random` draws windows of seq_len+1 tokens uniformly over all window starts of the (kept) stream;
`sequential` packs the stream in order, wrapping around at the end. Documents are separated by their eot token.

Batch size (`batch_targets`):
  fixed (default)  every global batch holds exactly batch_size x seq_len loss-bearing targets, the count of an
            unfiltered batch. Windows are drawn in chunks (first batch_size of them, then ceil(missing / seq_len),
            the fewest that could still be enough) until the unmasked targets reach the count; the last row's surplus
            targets (its last ones) are set to -100, and a window with no target left at all is skipped (it could
            only add compute). No window of a chunk is ever wasted: k < ceil(missing / seq_len) rows hold at most
            k x seq_len < missing targets, so the count can only be reached by a chunk's last row. So a masked or
            removed run takes exactly the steps of an unfiltered run of the same effective-token budget, each with
            the same number of targets in its loss: the only difference between modes is *which* targets they are.
            It reads more windows per step than an unfiltered run (1 / (1 - filtered fraction) on average); that
            extra compute is reported (`flops_processed`), not hidden. `none` and `document` batches always have
            batch_size rows and draw exactly what `rows` draws. More than MAX_ROWS_FACTOR x batch_size windows
            without enough targets is an error (the filter leaves almost nothing to learn from).
  rows      the old behaviour: batch_size windows per step whatever is masked, so filtered runs take more steps
            for the same effective tokens (each with fewer targets).
Every rank builds the same global batch from the same RNG and keeps rows rank::world (a `fixed` batch is padded with
all -100 rows to a multiple of the process count first), so a run's data depends only on the seed and the global
batch size, not on the number of processes. `last_rows` / `last_targets` describe the last global batch (padding
not counted). `state_dict()` (RNG state + cursor) is JSON; a batch is built whole inside `next_batch` and nothing
carries over to the next, so restoring it continues the identical batch sequence.
"""

from __future__ import annotations

import numpy as np
import torch

from tokfilter.errors import UserError
from tokfilter.filtering import (  # noqa: F401  (re-exported: the batch code's vocabulary)
    IGNORE_INDEX,
    MODES,
    TOKEN_MODES,
    document_scores,
    documents_to_drop,
    hash_uniform,
    make_example,
    pool_scores,
    sentence_end_table,
    token_labels,
)
from tokfilter.shards import ShardSet
from tokfilter.train.config import BATCH_TARGETS

MAX_ROWS_FACTOR = 64  # `fixed` batches: at most this many times batch_size windows per step

# ----- views of one shard: the raw stream, or the stream of kept documents -----


class _RawView:
    """A shard's token stream as stored."""

    def __init__(self, tokens: np.ndarray):
        self.tokens = tokens
        self.length = len(tokens)

    def read(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Tokens [start, start+n) and their raw positions."""
        return np.asarray(self.tokens[start:start + n]), np.arange(start, start + n, dtype=np.int64)

    def from_raw(self, raw: int) -> int:
        return raw


class _KeptView:
    """A shard's stream with dropped documents cut out, read without materialising it."""

    def __init__(self, tokens: np.ndarray, doc_ends: np.ndarray, drop: np.ndarray):
        ends = np.asarray(doc_ends, dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        keep = ~drop
        self.tokens = tokens
        self.doc_starts, self.doc_ends, self.keep = starts, ends, keep
        self.kept_starts, self.kept_ends = starts[keep], ends[keep]
        self.kept_cum = np.concatenate([[0], np.cumsum(self.kept_ends - self.kept_starts)])  # kept tokens before
        self.length = int(self.kept_cum[-1])

    def read(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        k = int(np.searchsorted(self.kept_cum, start, side="right")) - 1
        pieces, positions, need, offset = [], [], n, start - int(self.kept_cum[k])
        while need > 0 and k < len(self.kept_starts):
            a = int(self.kept_starts[k]) + offset
            b = min(int(self.kept_ends[k]), a + need)
            pieces.append(np.asarray(self.tokens[a:b]))
            positions.append(np.arange(a, b, dtype=np.int64))
            need -= b - a
            k, offset = k + 1, 0
        return np.concatenate(pieces), np.concatenate(positions)

    def from_raw(self, raw: int) -> int:
        """Kept-stream offset of raw offset `raw` (the next kept token at or after it)."""
        d = int(np.searchsorted(self.doc_ends, raw, side="right"))
        if d >= len(self.doc_ends):
            return self.length
        kept_before = int(self.kept_cum[np.count_nonzero(self.keep[:d])])
        return kept_before + (raw - int(self.doc_starts[d]) if self.keep[d] else 0)


# ----- the batch source -----


class BatchSource:
    """Global batches of (input_ids, targets) over a ShardSet with one filtering mode; this rank's rows only."""

    def __init__(self, shards: ShardSet, seq_len: int, batch_size: int, mode: str = "none",
                 score_name: str = "forget", threshold: float = 0.5, doc_threshold: float = 0.5,
                 doc_aggregate: str = "mean", noise: float = 0.0, sampling: str = "random", seed: int = 0,
                 rank: int = 0, world_size: int = 1, batch_targets: str = "fixed", granularity: str = "token"):
        if mode not in MODES:
            raise UserError(f"filter mode {mode!r} is not one of {', '.join(MODES)}")
        if sampling not in ("random", "sequential"):
            raise UserError(f"sampling {sampling!r} is not 'random' or 'sequential'")
        if batch_targets not in BATCH_TARGETS:
            raise UserError(f"batch_targets {batch_targets!r} is not one of {', '.join(BATCH_TARGETS)}")
        if batch_size % world_size:
            raise UserError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
        if mode != "none" and not shards.has_scores(score_name):
            raise UserError(f"{shards.dir}: no '{score_name}' scores for filter mode {mode!r} "
                            f"(run `tokfilter annotate --name {score_name}` or pick another filter.scores)")
        self.shards, self.seq_len, self.batch_size = shards, seq_len, batch_size
        self.mode, self.score_name, self.threshold = mode, score_name, threshold
        self.noise, self.sampling, self.seed = noise, sampling, seed
        self.rank, self.world_size, self.batch_targets = rank, world_size, batch_targets
        self.last_rows = self.last_targets = 0
        self.eot_id, self.hidden_id = shards.eot_id, shards.hidden_id
        tokens = [shards.tokens(i) for i in range(shards.num_shards)]
        self.raw_views = [_RawView(t) for t in tokens]
        self.scores = [shards.scores(i, score_name) for i in range(shards.num_shards)] if mode != "none" else None
        if mode in TOKEN_MODES and granularity != "token":  # coarse labels: one decision per sentence / document
            table = sentence_end_table([shards.tokenizer().decode([i]) for i in range(shards.vocab_size)]) \
                if granularity == "sentence" else None
            self.scores = [pool_scores(self.scores[i], shards.doc_ends(i), granularity, tokens[i], table)
                           for i in range(shards.num_shards)]
        self.kept_views = None
        self.dropped_tokens = 0
        if mode == "document":
            self.kept_views = []
            for i, t in enumerate(tokens):
                ends = shards.doc_ends(i)
                drop = documents_to_drop(document_scores(self.scores[i], ends, doc_aggregate, threshold),
                                         doc_threshold, noise, seed, stream=i)
                view = _KeptView(t, ends, drop)
                self.dropped_tokens += len(t) - view.length
                self.kept_views.append(view)
        if sum(max(v.length - seq_len, 0) for v in self._views(True)) == 0:
            raise UserError(f"{shards.dir}: fewer than seq_len+1 = {seq_len + 1} tokens to train on after filtering")
        self.rng = np.random.default_rng(seed)
        self.cursor = {"view": "raw", "shard": 0, "offset": 0, "epoch": 0}

    def _views(self, filtered: bool) -> list:
        return self.kept_views if (filtered and self.kept_views is not None) else self.raw_views

    def filtered_fraction(self, max_tokens: int = 1 << 27) -> float:
        """Fraction of training-corpus tokens the filter removes (dropped documents, or tokens labelled forget).

        Token modes read the scores: exactly up to `max_tokens`, beyond that from evenly strided 4M-token chunks."""
        total = self.shards.num_tokens
        if self.mode == "none" or total == 0:
            return 0.0
        if self.mode == "document":
            return self.dropped_tokens / total
        chunk = 1 << 22
        stride = chunk * max(1, -(-total // max_tokens))
        flagged = counted = 0
        for i, view in enumerate(self.raw_views):
            for a in range(0, view.length, stride):
                positions = np.arange(a, min(a + chunk, view.length))
                flagged += int(self._forget(i, positions).sum())
                counted += len(positions)
        return flagged / max(counted, 1)

    def _forget(self, shard: int, positions: np.ndarray) -> np.ndarray:
        labels = token_labels(self.scores[shard][positions], self.threshold, self.noise, self.seed, shard, positions)
        labels &= np.asarray(self.raw_views[shard].tokens[positions]) != self.eot_id
        return labels

    def _window_starts(self, filtered: bool, n: int) -> list[tuple[int, int]]:
        views, T = self._views(filtered), self.seq_len
        if self.sampling == "random":
            counts = np.array([max(v.length - T, 0) for v in views], dtype=np.int64)
            cum = np.cumsum(counts)
            picks = self.rng.integers(0, int(cum[-1]), size=n)
            shard_of = np.searchsorted(cum, picks, side="right")
            return [(int(s), int(p - (cum[s] - counts[s]))) for s, p in zip(shard_of, picks, strict=True)]
        view_name = "kept" if views is self.kept_views else "raw"
        if self.cursor["view"] != view_name:  # delayed document filtering switches streams: keep the position
            s = self.cursor["shard"]
            self.cursor.update(view=view_name, offset=views[s].from_raw(self.cursor["offset"]))
        out = []
        for _ in range(n):
            s, o = self.cursor["shard"], self.cursor["offset"]
            while o + T + 1 > views[s].length:
                s, o = s + 1, 0
                if s == len(views):
                    s, self.cursor["epoch"] = 0, self.cursor["epoch"] + 1
            out.append((s, o))
            self.cursor["shard"], self.cursor["offset"] = s, o + T
        return out

    def _example(self, views: list, shard: int, offset: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
        window, positions = views[shard].read(offset, self.seq_len + 1)
        forget = self._forget(shard, positions) if mode in ("mask", "remove") else None
        return make_example(window, forget, mode, self.hidden_id)

    def next_batch(self, filtered: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows of the next global batch; `filtered=False` (delayed start) trains on the raw stream."""
        views = self._views(filtered)
        mode = self.mode if filtered else "none"
        if self.batch_targets == "rows":
            starts = self._window_starts(filtered, self.batch_size)
            rows = [self._example(views, s, o, mode) for s, o in starts[self.rank::self.world_size]]
            self.last_rows = self.batch_size
            self.last_targets = None  # only this rank's rows were built
            return torch.from_numpy(np.stack([x for x, _ in rows])), torch.from_numpy(np.stack([y for _, y in rows]))
        rows = self._fixed_rows(views, mode, filtered)
        self.last_rows, self.last_targets = len(rows), self.batch_size * self.seq_len
        pad = -len(rows) % self.world_size
        if pad:
            blank = (np.full(self.seq_len, self.eot_id, dtype=np.int64), np.full(self.seq_len, IGNORE_INDEX, np.int64))
            rows = rows + [blank] * pad
        mine = rows[self.rank::self.world_size]
        return torch.from_numpy(np.stack([x for x, _ in mine])), torch.from_numpy(np.stack([y for _, y in mine]))

    def _fixed_rows(self, views: list, mode: str, filtered: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """The whole global batch of a `fixed` step: rows until exactly batch_size x seq_len targets (see above)."""
        T = self.seq_len
        missing, draw, drawn, rows = self.batch_size * T, self.batch_size, 0, []
        while missing > 0:
            if drawn + draw > MAX_ROWS_FACTOR * self.batch_size:
                got = self.batch_size * T - missing
                raise UserError(f"{self.shards.dir}: {drawn} windows of {T} tokens hold only {got} of the "
                                f"{self.batch_size * T} targets a step needs; the filter (mode {self.mode}, threshold "
                                f"{self.threshold}) leaves too little to train on")
            for s, o in self._window_starts(filtered, draw):
                x, y = self._example(views, s, o, mode)
                keep = np.flatnonzero(y != IGNORE_INDEX)
                if len(keep) == 0:
                    continue
                if len(keep) > missing:  # the last row: its surplus targets take no loss
                    y[keep[missing:]] = IGNORE_INDEX
                missing -= min(len(keep), missing)
                rows.append((x, y))
            drawn += draw
            draw = -(-missing // T)
        return rows

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "cursor": dict(self.cursor)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.cursor = dict(state["cursor"])
