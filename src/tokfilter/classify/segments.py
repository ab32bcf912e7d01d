"""Sentences of a token-id sequence, found from the tokenizer's vocabulary alone (no text needed).

Why: a classifier that reads a whole window of a document lets the document's verdict bleed into a sentence of the
other side (a biology sentence inside a medical answer is flagged with it; docs/classifiers.md, "Context
bleeding"). The biLM's `scoring = "sentence-min"` also scores every sentence read on its own and keeps the lower of
the two scores, and the scorer sees only token ids, so sentence boundaries come from the vocabulary: a sentence
ends after a token whose text ends in `.`, `!` or `?` (or holds a line break) when the next token starts with
whitespace. Abbreviations ("Dr.", "e.g.") split a sentence early; `min_len` merges such short pieces into the next.
"""

from __future__ import annotations

import numpy as np

MIN_SEGMENT = 6  # tokens: shorter pieces join the next sentence (a lone "Dr." or list number is not a sentence)


def boundary_tables(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Per token id: (ends a sentence, starts with whitespace), as two bool arrays of the vocabulary's size."""
    texts = [tokenizer.decode([i]) for i in range(tokenizer.vocab_size)]
    ends = np.array([("\n" in t) or t.rstrip().endswith((".", "!", "?")) for t in texts], dtype=bool)
    spaced = np.array([t[:1].isspace() for t in texts], dtype=bool)
    return ends, spaced


def sentence_segments(ids: np.ndarray, ends: np.ndarray, spaced: np.ndarray, min_len: int = MIN_SEGMENT
                      ) -> list[tuple[int, int]]:
    """[start, end) token ranges that tile `ids` in order, one per sentence (see the module docstring)."""
    n = len(ids)
    if n == 0:
        return []
    ids = np.asarray(ids, dtype=np.int64)
    candidates = np.flatnonzero(ends[ids[:-1]] & spaced[ids[1:]]) + 1  # a sentence starts at each of these
    cuts = [0]
    for cut in candidates.tolist():
        if cut - cuts[-1] >= min_len:
            cuts.append(cut)
    if len(cuts) > 1 and n - cuts[-1] < min_len:
        cuts.pop()  # a short tail joins the sentence before it
    cuts.append(n)
    return list(zip(cuts[:-1], cuts[1:]))
