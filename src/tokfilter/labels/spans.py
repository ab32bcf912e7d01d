"""Character-span labels (a DESIGN.md contract) and their conversion to per-token labels for any tokenizer.

A label file is JSON Lines, one document per line: `{"id": doc_id, "spans": [[start, end, score], ...]}` with
character offsets into the document text, `start < end`, and a score in [0, 1] (1.0 for a hard label). Spans are
tokenizer-independent: `spans_to_token_scores` gives each token the highest score of the spans its characters
overlap, so the same label file serves a 4k BPE, GPT-2's tokenizer or a classifier's own vocabulary.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from tokfilter.atomic import atomic_path
from tokfilter.errors import UserError
from tokfilter.jsonl import json_lines

Span = tuple[int, int, float]


def normalize_spans(spans: Iterable, text_length: int | None = None, where: str = "spans") -> list[Span]:
    """Validate and sort spans; merge overlapping or touching spans of equal score (overlaps keep the max score).

    Raises UserError for malformed spans, start >= end, negative offsets, scores outside [0, 1], or (when
    `text_length` is given) spans beyond the end of the text. An empty list is valid (nothing labelled).
    """
    clean: list[Span] = []
    for span in spans:
        if not isinstance(span, (list, tuple)) or len(span) not in (2, 3):
            raise UserError(f"{where}: a span must be [start, end, score], got {span!r}")
        start, end = span[0], span[1]
        score = span[2] if len(span) == 3 else 1.0
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise UserError(f"{where}: span offsets must be integers, got {span!r}")
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0.0 <= float(score) <= 1.0:
            raise UserError(f"{where}: span score must be a number in [0, 1], got {span!r}")
        if start < 0 or start >= end:
            raise UserError(f"{where}: span [{start}, {end}) is empty or negative")
        if text_length is not None and end > text_length:
            raise UserError(f"{where}: span [{start}, {end}) goes beyond the text ({text_length} characters)")
        clean.append((int(start), int(end), float(score)))
    clean.sort()
    return _resolve_overlaps(clean)


def _resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Make spans disjoint: where spans overlap, each character keeps the highest score."""
    if not spans:
        return []
    bounds = sorted({b for s in spans for b in s[:2]})
    result: list[Span] = []
    for left, right in zip(bounds[:-1], bounds[1:]):
        best = max((s[2] for s in spans if s[0] <= left and s[1] >= right), default=None)
        if best is None:
            continue
        if result and result[-1][1] == left and result[-1][2] == best:
            result[-1] = (result[-1][0], right, best)
        else:
            result.append((left, right, best))
    return result


def spans_to_char_scores(spans: Iterable[Span], text_length: int) -> np.ndarray:
    """Per-character score (float32): the highest score of any span covering the character, else 0."""
    scores = np.zeros(text_length, dtype=np.float32)
    for start, end, score in spans:
        np.maximum(scores[start:end], score, out=scores[start:end])
    return scores


def spans_to_token_scores(spans: Iterable[Span], offsets: np.ndarray, text_length: int | None = None
                          ) -> np.ndarray:
    """Score of each token: the max score of the spans its characters overlap (0 where none does).

    `offsets` is (n_tokens, 2) character [start, end) per token in text order, as `Tokenizer.encode` returns.
    A token that only partly overlaps a span is labelled, so no labelled character is ever left unmasked.
    Runs in O(spans x log tokens): spans are located by binary search, never by looping over tokens.
    """
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    token_scores = np.zeros(len(offsets), dtype=np.float32)
    if len(offsets) == 0:
        return token_scores
    starts = offsets[:, 0]
    ends = np.maximum.accumulate(offsets[:, 1])  # monotone for binary search; offsets come in text order
    nonempty = offsets[:, 1] > offsets[:, 0]
    for start, end, score in spans:
        if text_length is not None and end > text_length:
            raise UserError(f"span [{start}, {end}) goes beyond the text ({text_length} characters)")
        first = int(np.searchsorted(ends, start, side="right"))  # first token ending after the span starts
        last = int(np.searchsorted(starts, end, side="left"))  # tokens starting before the span ends
        if last > first:
            window = token_scores[first:last]
            overlap = nonempty[first:last] & (offsets[first:last, 1] > start)
            np.maximum(window, np.where(overlap, score, 0.0), out=window)
    return token_scores


def token_scores_to_spans(scores: np.ndarray, offsets: np.ndarray, threshold: float = 0.5) -> list[Span]:
    """Char spans of the tokens whose score is >= threshold, adjacent tokens merged (span score = max)."""
    spans: list[Span] = []
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    for (start, end), score in zip(offsets.tolist(), np.asarray(scores, dtype=np.float32).tolist()):
        if score < threshold or end <= start:
            continue
        if spans and start <= spans[-1][1]:
            prev = spans[-1]
            spans[-1] = (prev[0], max(prev[1], end), max(prev[2], score))
        else:
            spans.append((start, end, score))
    return [(s, e, round(float(v), 6)) for s, e, v in spans]


def read_labels(path: str | Path) -> Iterator[tuple[str, list[Span]]]:
    """Stream (doc_id, spans) from a label file; malformed lines raise UserError naming file and line."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for line_no, record in json_lines(fh, path):
                where = f"{path}:{line_no}"
                if not isinstance(record, dict) or "id" not in record or "spans" not in record:
                    raise UserError(f"{where}: a label record needs 'id' and 'spans'")
                if not isinstance(record["spans"], list):
                    raise UserError(f"{where}: 'spans' must be a list")
                yield str(record["id"]), normalize_spans(record["spans"], where=where)
    except FileNotFoundError:
        raise UserError(f"{path}: label file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a label file") from None


def load_labels(path: str | Path) -> dict[str, list[Span]]:
    """All labels of a file as {doc_id: spans}; a duplicated id is an error."""
    labels: dict[str, list[Span]] = {}
    for doc_id, spans in read_labels(path):
        if doc_id in labels:
            raise UserError(f"{path}: document id {doc_id!r} appears twice")
        labels[doc_id] = spans
    return labels


def write_labels(path: str | Path, records: Iterable[tuple[str, Iterable[Span]]]) -> int:
    """Write (doc_id, spans) records atomically; returns the number of documents written."""
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for doc_id, spans in records:
            spans = [[int(s), int(e), round(float(v), 6)] for s, e, v in spans]
            fh.write(json.dumps({"id": doc_id, "spans": spans}) + "\n")
            count += 1
    return count


def write_counted_labels(path: str | Path, records: Iterable[tuple[str, list[Span]]], source: str) -> dict:
    """Write (doc_id, spans) records atomically, refusing a repeated id or an empty corpus (`source` names it in
    the error); returns counts: documents, labelled_documents, spans, labelled_chars."""
    stats = {"documents": 0, "labelled_documents": 0, "spans": 0, "labelled_chars": 0}
    seen: set[str] = set()

    def counted():
        for doc_id, spans in records:
            if doc_id in seen:
                raise UserError(f"document id {doc_id!r} appears twice in the corpus; labels need unique ids")
            seen.add(doc_id)
            stats["documents"] += 1
            stats["labelled_documents"] += bool(spans)
            stats["spans"] += len(spans)
            stats["labelled_chars"] += sum(e - s for s, e, _ in spans)
            yield doc_id, spans
        if not seen:  # raised inside the atomic write: no output file is left behind
            raise UserError(f"{source}: no documents to label")

    write_labels(path, counted())
    return stats
