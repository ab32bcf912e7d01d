"""Sentence mixes: extra training documents in which single sentences of one side sit inside a document of the other.

Why: the spliced benchmark hides forget text as passages of 30-150 words, and the rest of a medical document is
forget end to end, so a classifier can score a token by the register of its surroundings. Natural text mixes topics
sentence by sentence (a news story mentions a stroke once, a medical answer explains what a gene does), and there
such a classifier misses the medical sentence and flags the biology one (docs/classifiers.md). A sentence mix is a
pure keep document (no forget label) with 1..`max_inserts` runs of 1..`max_sentences` sentences from pure forget
documents inserted at sentence boundaries, labelled forget exactly there, or the reverse: a pure forget document
(labelled forget from end to end) with keep sentences inserted, labelled keep exactly there. Half of each.

Everything comes from the training items themselves (the label part in the pipeline), so no text of the pretrain
part, the validation or the test split enters; purity is read from the labels, not from domains, so weak labels
work the same way. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from tokfilter.corpus.document import Document
from tokfilter.labels.coarse import sentence_bounds
from tokfilter.labels.spans import Span, spans_to_char_scores

PURE_FORGET_COVER = 0.98  # a document whose forget spans (score >= 0.5) cover this share of its characters


def _forget_cover(text: str, spans: Sequence[Span]) -> float:
    return float((spans_to_char_scores(spans, len(text)) >= 0.5).mean()) if text else 0.0


def sentence_mixes(items: Sequence[tuple[Document, Sequence[Span]]], fraction: float, seed: int = 0,
                   max_inserts: int = 3, max_sentences: int = 2) -> list[tuple[Document, list[Span]]]:
    """round(fraction * len(items)) new (document, exact spans) pairs built from `items` (see the module doc).
    Empty when the items hold no pure forget or no pure keep document with at least two sentences."""
    count = round(fraction * len(items))
    if count <= 0:
        return []
    # (document, its sentence bounds, its spans): bounds computed once per document, reused by every mix
    usable = [(doc, bounds, spans) for doc, spans in items if len(bounds := sentence_bounds(doc.text)) >= 2]
    pure_forget = [(doc, b) for doc, b, spans in usable if _forget_cover(doc.text, spans) >= PURE_FORGET_COVER]
    pure_keep = [(doc, b) for doc, b, spans in usable if not any(score >= 0.5 for _, _, score in spans)]
    if not pure_forget or not pure_keep:
        return []
    rng = random.Random(f"sentence-mix:{seed}")
    out = []
    for index in range(count):
        forget_host = index % 2 == 1
        host, host_bounds = rng.choice(pure_forget if forget_host else pure_keep)
        donors = pure_keep if forget_host else pure_forget
        text, inserted = _insert_sentences(host.text, host_bounds, donors, rng, max_inserts, max_sentences)
        if forget_host:
            edges = [0] + [p for span in inserted for p in span] + [len(text)]
            spans = [(a, b, 1.0) for a, b in zip(edges[::2], edges[1::2]) if b > a]
        else:
            spans = [(a, b, 1.0) for a, b in inserted]
        meta = {"mix_of": host.id, "mix_kind": "keep-in-forget" if forget_host else "forget-in-keep"}
        out.append((Document(f"mix{index}:{host.id}", text, host.domain, meta), spans))
    return out


def _insert_sentences(host: str, bounds: list[tuple[int, int]],
                      donors: Sequence[tuple[Document, list[tuple[int, int]]]], rng: random.Random,
                      max_inserts: int, max_sentences: int) -> tuple[str, list[tuple[int, int]]]:
    """`host` (its sentence `bounds`) with runs of donor sentences (donors: (document, its sentence bounds)) inserted
    before some of its sentences; returns (text, inserted spans)."""
    cuts = sorted(rng.sample(range(1, len(bounds)), min(rng.randint(1, max_inserts), len(bounds) - 1)))
    pieces, inserted, length, previous = [], [], 0, 0
    for cut in cuts:
        chosen, sentences = rng.choice(donors)
        donor = chosen.text
        first = rng.randrange(len(sentences))
        last = min(first + rng.randint(1, max_sentences), len(sentences)) - 1
        run = donor[sentences[first][0]:sentences[last][1]]
        before = host[previous:bounds[cut][0]]
        pieces += [before, run, " "]
        inserted.append((length + len(before), length + len(before) + len(run)))
        length += len(before) + len(run) + 1
        previous = bounds[cut][0]
    pieces.append(host[previous:])
    return "".join(pieces), inserted
