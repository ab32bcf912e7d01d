"""The filtering rules, numpy only: from stored per-token p(forget) scores to decisions, at load time.

Shards store scores, never decisions (DESIGN.md); these functions turn scores into decisions on the fly so a new
threshold, noise rate or delay needs no re-annotation. Used by training batches (train/data.py), the exports
(annotate/export.py) and the token viewer (report/view.py), so all three filter identically.

A token is forget when score >= threshold. With a coarser `granularity` (the paper's coarse-label ablation), each
token's score is first replaced by the mean score of its sentence or document (`pool_scores`), so whole sentences or
documents are masked or removed together. Label noise flips each token decision (each document decision in
`document` mode) with probability r; the flip is a hash of (seed, shard, position), so it is the same whichever
order data is read in. Masking is keyed on the *target* token (PAPER.md).

Contract values live here: `IGNORE_INDEX` (the target id that takes no loss: PyTorch's, Hugging Face's) and `MODES`.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = -100
MODES = ("none", "document", "mask", "remove")  # filtering modes
TOKEN_MODES = ("mask", "remove")
DOC_AGGREGATES = ("frac", "mean")
GRANULARITIES = ("token", "sentence", "document")  # the unit a token-mode decision is made on
SENTENCE_END = (".", "!", "?")
CLOSERS = "\"')]\u201d\u2019"

# ----- pure functions (numpy in, numpy out) -----

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def hash_uniform(seed: int, stream: int, positions: np.ndarray) -> np.ndarray:
    """Deterministic uniforms in [0, 1) keyed on (seed, stream, position): splitmix64 finalizer."""
    with np.errstate(over="ignore"):
        z = (np.asarray(positions, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z ^= np.uint64((seed * 0x632BE59BD9B4E019 + stream * 0x85EBCA77C2B2AE63 + 1) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def token_labels(scores: np.ndarray, threshold: float, noise: float = 0.0, seed: int = 0, stream: int = 0,
                 positions: np.ndarray | None = None) -> np.ndarray:
    """Forget decisions: score >= threshold, each flipped with probability `noise` (keyed on position)."""
    labels = np.asarray(scores, dtype=np.float32) >= threshold
    if noise > 0:
        if positions is None:
            positions = np.arange(len(labels))
        labels ^= hash_uniform(seed, stream, positions) < noise
    return labels


def make_example(window: np.ndarray, forget: np.ndarray | None, mode: str, hidden_id: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One training row from seq_len+1 tokens and their forget decisions.

    targets[t] = window[t+1], set to -100 where forget[t+1] (mask is keyed on the target token); in `remove`
    mode input_ids[t] = hidden_id where forget[t]. `none` and `document` ignore `forget`.
    """
    x = window[:-1].astype(np.int64)
    y = window[1:].astype(np.int64)
    if mode in ("mask", "remove") and forget is not None:
        y[forget[1:]] = IGNORE_INDEX
        if mode == "remove":
            x[forget[:-1]] = hidden_id
    return x, y


def document_scores(scores: np.ndarray, doc_ends: np.ndarray, aggregate: str, threshold: float) -> np.ndarray:
    """Per-document aggregate of token scores (eot included): `mean` score or `frac` of tokens >= threshold."""
    ends = np.asarray(doc_ends, dtype=np.int64)
    if len(ends) == 0:
        return np.zeros(0, dtype=np.float64)
    starts = np.concatenate([[0], ends[:-1]])
    if aggregate == "mean":
        values = np.asarray(scores, dtype=np.float64)
    elif aggregate == "frac":
        values = (np.asarray(scores, dtype=np.float32) >= threshold).astype(np.float64)
    else:
        raise ValueError(f"unknown document aggregate {aggregate!r}")
    sums = np.add.reduceat(values, starts) if len(values) else np.zeros(len(ends))
    return sums / np.maximum(ends - starts, 1)


def documents_to_drop(doc_scores: np.ndarray, doc_threshold: float, noise: float = 0.0, seed: int = 0,
                      stream: int = 0) -> np.ndarray:
    """Documents whose aggregate >= doc_threshold, each decision flipped with probability `noise`."""
    drop = np.asarray(doc_scores) >= doc_threshold
    if noise > 0:
        drop ^= hash_uniform(seed, stream + (1 << 20), np.arange(len(drop))) < noise
    return drop


def sentence_end_table(token_texts: list[str]) -> np.ndarray:
    """Per vocabulary id, whether a token with this text ends a sentence: its text, without trailing spaces and
    closing quotes/brackets, ends with . ! or ?, or it holds a newline. Abbreviations ("Dr.") split too: coarse by
    design, and the same rule for every mode and threshold."""
    table = np.zeros(len(token_texts), dtype=bool)
    for i, text in enumerate(token_texts):
        stripped = text.rstrip().rstrip(CLOSERS)
        table[i] = "\n" in text or stripped.endswith(SENTENCE_END)
    return table


def pool_scores(scores: np.ndarray, doc_ends: np.ndarray, granularity: str, tokens: np.ndarray | None = None,
                sentence_end: np.ndarray | None = None) -> np.ndarray:
    """Each token's score replaced by the mean score of its unit: `sentence` (ends after a token flagged by
    `sentence_end[token]`, or at a document end) or `document`; `token` returns the scores unchanged (float32)."""
    values = np.asarray(scores, dtype=np.float32)
    if granularity == "token" or len(values) == 0:
        return values
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r} (one of {', '.join(GRANULARITIES)})")
    unit_end = np.zeros(len(values), dtype=bool)
    unit_end[np.asarray(doc_ends, dtype=np.int64) - 1] = True
    if granularity == "sentence":
        if tokens is None or sentence_end is None:
            raise ValueError("sentence granularity needs the tokens and a sentence_end table")
        unit_end |= sentence_end[np.asarray(tokens, dtype=np.int64)]
    unit = np.concatenate([[0], np.cumsum(unit_end[:-1])])
    sums = np.bincount(unit, weights=values.astype(np.float64))
    counts = np.bincount(unit)
    return (sums / np.maximum(counts, 1)).astype(np.float32)[unit]
