"""Token-labelled documents for the classifiers, window sampling for training, and window plans for scoring.

Labels are character spans (DESIGN.md) until here: `tokenize_labeled` moves them onto the classifier's own tokens
with `spans_to_token_scores` (a token is labelled with the highest score of the spans it overlaps), so the same
label file trains a classifier with any tokenizer. Sources: an exact-span benchmark directory (`labels benchmark`),
or any corpus plus a weak label file (weak-to-strong training).

Scoring a document of any length (`window_plan`): windows of `seq_len` tokens with stride `seq_len // 2`, the last one
aligned to the document end; each token takes its score from the window in which it sits most centrally (largest
distance to the nearer window edge; ties go to the earlier window), so every token away from the document edges sees
at least `seq_len // 4` tokens of context on each side. The plan depends only on the document length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokfilter.corpus import read_corpus
from tokfilter.corpus.document import Document
from tokfilter.errors import UserError
from tokfilter.labels.benchmark import load_benchmark
from tokfilter.labels.spans import Span, load_labels, normalize_spans, spans_to_token_scores


@dataclass
class TokenDoc:
    """A document as classifier tokens with a p(forget) label per token (0/1 for exact spans, soft for weak)."""

    id: str
    ids: np.ndarray  # int64
    labels: np.ndarray  # float32, same length
    domain: str = ""


def is_benchmark_dir(path: str | Path) -> bool:
    return (Path(path) / "manifest.json").is_file() and (Path(path) / "train.labels.jsonl").is_file()


def load_labeled(data: str | Path, labels: str | Path | None = None, split: str = "train"
                 ) -> list[tuple[Document, list[Span]]]:
    """(document, spans) pairs from a benchmark directory split, or a corpus spec with a label file.

    With a benchmark directory and `labels` given, the benchmark's documents are labelled by `labels` instead of the
    exact spans (weak-to-strong); documents missing from the label file count as unlabelled (no forget tokens).
    """
    if is_benchmark_dir(data):
        items = [(b.document, b.spans) for b in load_benchmark(data, split)]
        if labels is None:
            return items
        weak = load_labels(labels)
        return [(doc, _checked(weak.get(doc.id, []), doc, labels)) for doc, _ in items]
    if labels is None:
        raise UserError(f"{data}: not a benchmark directory, so --labels LABELS.jsonl is required")
    weak = load_labels(labels)
    docs = list(read_corpus([str(data)]))
    if not docs:
        raise UserError(f"{data}: no documents")
    known = sum(doc.id in weak for doc in docs)
    if known == 0:
        raise UserError(f"{labels}: none of its document ids occur in {data}")
    return [(doc, _checked(weak.get(doc.id, []), doc, labels)) for doc in docs]


def _checked(spans: Sequence[Span], doc: Document, where) -> list[Span]:
    return normalize_spans(spans, len(doc.text), where=f"{where}: document {doc.id!r}")


def tokenize_labeled(items: Iterable[tuple[Document, Sequence[Span]]], tokenizer) -> list[TokenDoc]:
    """Tokenize documents and move their char spans onto the tokens; empty documents are dropped."""
    out = []
    for doc, spans in items:
        ids, offsets = tokenizer.encode(doc.text)
        if len(ids) == 0:
            continue
        labels = spans_to_token_scores(spans, offsets, len(doc.text))
        out.append(TokenDoc(doc.id, np.asarray(ids, dtype=np.int64), labels, doc.domain))
    return out


def window_starts(n: int, seq_len: int) -> list[int]:
    """Start offsets of the scoring windows of a document of n tokens (see the module docstring)."""
    if n <= seq_len:
        return [0]
    stride = max(seq_len // 2, 1)
    starts = list(range(0, n - seq_len + 1, stride))
    if starts[-1] != n - seq_len:
        starts.append(n - seq_len)
    return starts


def window_plan(n: int, seq_len: int) -> list[tuple[int, int, int, int]]:
    """[(window start, window length, first owned token, end of owned tokens)]: which tokens take their score from
    which window. The owned ranges tile [0, n) in order."""
    starts = window_starts(n, seq_len)
    best = np.full(n, -1, dtype=np.int64)
    owner = np.zeros(n, dtype=np.int64)
    t = np.arange(n)
    for k, s in enumerate(starts):
        e = min(s + seq_len, n)
        margin = np.minimum(t[s:e] - s, e - 1 - t[s:e])
        better = margin > best[s:e]
        best[s:e][better] = margin[better]
        owner[s:e][better] = k
    plan = []
    for k, s in enumerate(starts):
        owned = np.flatnonzero(owner == k)
        if len(owned):
            plan.append((s, min(seq_len, n - s), int(owned[0]), int(owned[-1]) + 1))
    return plan


class TokenWindowSampler:
    """Random training windows (ids, labels) of at most seq_len tokens from within single documents.

    A document is drawn with probability proportional to its number of windows, then a uniform start; short
    documents give short rows (padded by the caller). Deterministic given the seed.
    """

    def __init__(self, docs: Sequence[TokenDoc], seq_len: int, seed: int = 0):
        if not docs:
            raise UserError("no training documents")
        self.docs, self.seq_len = list(docs), seq_len
        lengths = np.array([len(d.ids) for d in self.docs], dtype=np.float64)
        weights = np.maximum(lengths - seq_len + 1, 1.0) + np.minimum(lengths, seq_len) / seq_len
        self.p = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def sample(self, batch_size: int) -> list[TokenDoc]:
        rows = []
        for i in self.rng.choice(len(self.docs), size=batch_size, p=self.p):
            doc = self.docs[i]
            start = int(self.rng.integers(0, max(len(doc.ids) - self.seq_len, 0) + 1))
            end = start + self.seq_len
            rows.append(TokenDoc(doc.id, doc.ids[start:end], doc.labels[start:end], doc.domain))
        return rows


def pad_rows(rows: Sequence[np.ndarray], seq_len: int, pad_id: int, dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad rows to (len(rows), seq_len); returns (array, lengths)."""
    out = np.full((len(rows), seq_len), pad_id, dtype=dtype)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for r, row in enumerate(rows):
        out[r, :len(row)] = row
        lengths[r] = len(row)
    return out, lengths
