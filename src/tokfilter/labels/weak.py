"""One entry point for the weak labelers, for the demo and experiments: documents -> {doc_id: spans}.

    labels = weak_labels(documents, "sentence")          # lexicon-hit density per sentence (best F1)
    labels = weak_labels(documents, "lexicon")           # term hits grown over medical words
    labels = weak_labels(documents, "document")          # provenance: documents tagged forget
    labels = weak_labels(documents, "document-density")  # lexicon-hit density per document

Token F1 of each against the exact-span benchmark (demo, seed 0, demo BPE) is in docs/labels.md; the lexicon-based
kinds need the term lists of ../shared/data/lexicons (or `lexicon_dir`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokfilter.corpus.document import Document
from tokfilter.labels import coarse, lexicon
from tokfilter.labels.spans import Span

KINDS = ("sentence", "lexicon", "document", "document-density")


def weak_labels(documents: Iterable[Document], kind: str = "sentence", lexicon_dir: str | Path | None = None,
                forget_domains: Iterable[str] = ("forget",)) -> dict[str, list[Span]]:
    """Weak char-span labels of `kind` (see KINDS) for every document, with the documented defaults."""
    if kind not in KINDS:
        raise ValueError(f"unknown weak labeler {kind!r} (one of {', '.join(KINDS)})")
    if kind == "document":
        return dict(coarse.label_documents(documents, "domain", forget_domains))
    if kind == "lexicon":
        return dict(lexicon.build_labeler(lexicon_dir=lexicon_dir).label_documents(documents))
    matcher = lexicon.build_matcher(lexicon.MEDICAL_LEXICONS, lexicon.MEDICAL_EXCLUDE, lexicon_dir)
    if kind == "sentence":
        return dict(coarse.label_sentences(documents, matcher))
    return dict(coarse.label_documents(documents, "density", matcher=matcher))
