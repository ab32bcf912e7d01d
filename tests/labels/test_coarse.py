"""Coarse labels: sentences, densities, and document/sentence broadcast."""

from __future__ import annotations

import numpy as np

from tokfilter.corpus import Document
from tokfilter.labels.coarse import (
    document_labels,
    hit_density,
    label_documents,
    sentence_bounds,
    sentence_labels,
    smooth,
)
from tokfilter.labels.lexicon import LexiconMatcher


def test_sentence_bounds_split_on_punctuation_and_lines():
    text = "  Hello there. Dr. Smith saw 3 cases!\nNext line here\n\nLast one? yes."
    pieces = [text[s:e] for s, e in sentence_bounds(text)]
    assert pieces == ["Hello there.", "Dr. Smith saw 3 cases!", "Next line here", "Last one? yes."]


def test_hit_density_counts_covered_words():
    text = "fever and cough today"
    density = hit_density(text, [(0, len(text)), (10, 15), (16, 21)], [(0, 5), (10, 15)])
    assert np.allclose(density, [0.5, 1.0, 0.0])


def test_sentence_labels_broadcast_whole_sentences():
    matcher = LexiconMatcher(["fever", "cough"])
    text = "Patients had fever and cough. The weather was fine and sunny all week long."
    spans = sentence_labels(text, matcher, threshold=0.2, window=0)
    assert [text[s:e] for s, e, _ in spans] == ["Patients had fever and cough."]
    soft = sentence_labels(text, matcher, score="density", window=0)
    assert [round(v, 2) for _, _, v in soft] == [0.4]
    assert sentence_labels("", matcher) == []


def test_smoothing_spreads_to_neighbours():
    assert np.allclose(smooth(np.array([0.0, 0.9, 0.0]), 1), [0.45, 0.3, 0.45])
    assert np.array_equal(smooth(np.array([0.2]), 0), [0.2])


def test_document_rules():
    doc = Document("d", "  Fever, cough.\n", "forget")
    assert document_labels(doc) == [(2, 15, 1.0)]
    assert document_labels(Document("e", "Fever, cough.", "general")) == []
    matcher = LexiconMatcher(["fever"])
    docs = [Document("a", "fever fever calm", "general"), Document("b", "calm calm calm fever", "general")]
    out = dict(label_documents(docs, "density", matcher=matcher, threshold=0.5))
    assert out == {"a": [(0, 16, 1.0)], "b": []}
