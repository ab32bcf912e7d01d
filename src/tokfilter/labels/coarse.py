"""Coarse labels: one decision per document or per sentence, broadcast to all of its characters.

The paper's coarse-label ablation asks how much of token filtering's advantage survives when labels are only
sentence- or document-level. Two rules decide a unit:
  - `domain`: document provenance (its domain tag is one of the forget domains): the document-filter baseline;
  - `density`: the fraction of the unit's words covered by lexicon hits (`tokfilter.labels.lexicon`) reaches a
    threshold. Hits are sparse (a medical passage is mostly ordinary words), so spreading the lexicon's evidence
    over a sentence turns term hits into labels that look like the truth: whole passages.
With `score="density"` the span score is the density itself (clipped to [0, 1]) instead of 1.0, so a single
labelling run can be evaluated at any threshold (`tokfilter.labels.metrics.label_metrics(threshold=...)`).
Sentences are split by a punctuation rule plus line breaks (`sentence_bounds`): no model, no download.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from tokfilter.corpus.document import Document
from tokfilter.labels.lexicon import covered_words, word_bounds
from tokfilter.labels.spans import Span

# a sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace and a capital/digit
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s+[\"'(\[]?[A-Z0-9])")
_LAST_WORD = re.compile(r"(\w+)\.$")
_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "vs", "fig", "al", "eg", "ie", "e.g", "i.e", "no", "vol", "prof",
                  "jr", "sr", "gen", "gov", "sen", "rep", "approx", "ca", "cf", "etc"}


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence, without surrounding whitespace; line breaks also end sentences."""
    bounds = []
    for para in re.finditer(r"[^\n]+", text):
        start = para.start()
        for match in _SENTENCE_END.finditer(para.group()):
            end = para.start() + match.end()
            previous = _LAST_WORD.search(text, start, end)
            if previous and previous.group(1).lower() in _ABBREVIATIONS:
                continue
            bounds.append((start, end))
            start = end
        bounds.append((start, para.end()))
    out = []
    for start, end in bounds:
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            out.append((start + lead, start + lead + len(stripped)))
    return out


def hit_density(text: str, units: Sequence[tuple[int, int]], hits: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each unit [start, end): fraction of its words that overlap a hit (0 for a unit without words)."""
    words = word_bounds(text)
    if not len(units):
        return np.zeros(0, dtype=np.float64)
    cum = np.concatenate(([0], np.cumsum(covered_words(words, hits))))
    units = np.asarray(units, dtype=np.int64).reshape(-1, 2)
    first = np.searchsorted(words[:, 0], units[:, 0], side="left")
    last = np.searchsorted(words[:, 0], units[:, 1], side="left")
    count = last - first
    return np.where(count > 0, (cum[last] - cum[first]) / np.maximum(count, 1), 0.0)


def _unit_spans(units: Sequence[tuple[int, int]], density: np.ndarray, threshold: float, score: str
                ) -> list[Span]:
    spans = []
    for (start, end), value in zip(units, density.tolist()):
        if score == "density":
            value = min(1.0, value)
            if value > 0:
                spans.append((start, end, round(value, 4)))
        elif value >= threshold:
            spans.append((start, end, 1.0))
    return spans


def smooth(density: np.ndarray, window: int) -> np.ndarray:
    """Mean of each value with its `window` neighbours on either side (0 = unchanged)."""
    if window <= 0 or len(density) == 0:
        return density
    kernel = np.ones(2 * window + 1)
    padded = np.convolve(density, kernel, mode="same")
    norm = np.convolve(np.ones_like(density), kernel, mode="same")
    return padded / norm


def sentence_labels(text: str, matcher, threshold: float = 0.08, score: str = "hard", window: int = 1
                    ) -> list[Span]:
    """Label whole sentences whose lexicon-hit density (optionally averaged over +-window sentences) >= threshold."""
    units = sentence_bounds(text)
    density = smooth(hit_density(text, units, matcher.find(text)), window)
    return _unit_spans(units, density, threshold, score)


def document_labels(doc: Document, rule: str = "domain", forget_domains: Iterable[str] = ("forget",),
                    matcher=None, threshold: float = 0.12, score: str = "hard") -> list[Span]:
    """Label the whole document by provenance (`domain`) or by lexicon-hit density (`density`)."""
    text = doc.text
    stripped = text.strip()
    if not stripped:
        return []
    start = len(text) - len(text.lstrip())
    unit = [(start, start + len(stripped))]
    if rule == "domain":
        return [(unit[0][0], unit[0][1], 1.0)] if doc.domain in set(forget_domains) else []
    if rule != "density":
        raise ValueError(f"unknown document rule {rule!r} (domain or density)")
    if matcher is None:
        raise ValueError("the density rule needs a lexicon matcher")
    return _unit_spans(unit, hit_density(text, unit, matcher.find(text)), threshold, score)


def label_sentences(documents: Iterable[Document], matcher, threshold: float = 0.08, score: str = "hard",
                    window: int = 1) -> Iterator[tuple[str, list[Span]]]:
    for doc in documents:
        yield doc.id, sentence_labels(doc.text, matcher, threshold, score, window)


def label_documents(documents: Iterable[Document], rule: str = "domain", forget_domains: Iterable[str] = ("forget",),
                    matcher=None, threshold: float = 0.12, score: str = "hard") -> Iterator[tuple[str, list[Span]]]:
    forget_domains = tuple(forget_domains)
    for doc in documents:
        yield doc.id, document_labels(doc, rule, forget_domains, matcher, threshold, score)
