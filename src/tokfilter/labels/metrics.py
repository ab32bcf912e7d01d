"""Precision / recall / F1 of a label file against exact spans, per character and per token.

Character level needs no tokenizer (every character of every document counts once). Token level is what filtering
uses: gold and predicted spans are both moved onto a tokenizer's tokens by overlap (`spans_to_token_scores`), a
token is gold-positive when any gold span touches it, and predicted-positive when a predicted span of score >=
`threshold` touches it. Documents without a predicted label line count as "nothing labelled"; predicted ids absent
from the gold set are reported (`unknown_ids`) and otherwise ignored, so a label file made on another corpus cannot
silently inflate a score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from tokfilter.errors import UserError
from tokfilter.labels.spans import Span, spans_to_char_scores, spans_to_token_scores


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall and F1 from counts (0 where undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tp": int(tp), "fp": int(fp), "fn": int(fn)}


def label_metrics(predicted: Mapping[str, Sequence[Span]], gold: Iterable[tuple[str, str, Sequence[Span]]],
                  tokenizer=None, threshold: float = 0.5) -> dict:
    """Compare predicted spans with gold spans over documents `gold` = [(doc_id, text, gold_spans), ...].

    Returns {"documents", "chars", "char": {precision, recall, f1, tp, fp, fn, gold_fraction, predicted_fraction},
    "tokens" and "token": {...} (when a tokenizer is given), "unknown_ids"}.
    """
    counts = {"char": np.zeros(3, dtype=np.int64), "token": np.zeros(3, dtype=np.int64)}  # tp, fp, fn
    totals = {"char": 0, "token": 0}
    seen: set[str] = set()
    for doc_id, text, gold_spans in gold:
        seen.add(doc_id)
        pred_spans = [s for s in predicted.get(doc_id, ()) if s[2] >= threshold]
        for start, end, _ in (*pred_spans, *gold_spans):
            if not 0 <= start < end <= len(text):
                raise UserError(f"document {doc_id!r}: span [{start}, {end}) does not fit its text "
                                f"({len(text)} characters); labels made for another corpus?")
        counts["char"] += _counts(spans_to_char_scores(gold_spans, len(text)) >= 0.5,
                                  spans_to_char_scores(pred_spans, len(text)) > 0)
        totals["char"] += len(text)
        if tokenizer is not None:
            _, offsets = tokenizer.encode(text)
            counts["token"] += _counts(spans_to_token_scores(gold_spans, offsets) >= 0.5,
                                       spans_to_token_scores(pred_spans, offsets) > 0)
            totals["token"] += len(offsets)
    result: dict = {"documents": len(seen), "threshold": threshold}
    for level in ("char", "token") if tokenizer is not None else ("char",):
        tp, fp, fn = counts[level].tolist()
        result[level + "s"] = totals[level]
        result[level] = {**prf(tp, fp, fn), "gold_fraction": round((tp + fn) / max(totals[level], 1), 4),
                         "predicted_fraction": round((tp + fp) / max(totals[level], 1), 4)}
    result["unknown_ids"] = len(set(predicted) - seen)
    return result


def _counts(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.array([np.sum(gold & pred), np.sum(~gold & pred), np.sum(gold & ~pred)], dtype=np.int64)
