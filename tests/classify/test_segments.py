"""Sentence segments from token ids alone (classify/segments.py): they tile the document, they agree with the
text-level sentence splitter on real demo documents, and short pieces join their neighbour."""

from __future__ import annotations

import numpy as np
import pytest

from tokfilter.classify.segments import MIN_SEGMENT, boundary_tables, sentence_segments
from tokfilter.corpus.demo import load_demo
from tokfilter.labels.coarse import sentence_bounds


@pytest.fixture(scope="module")
def tables(tokenizer):
    return boundary_tables(tokenizer)


def test_tables_cover_the_vocabulary(tokenizer, tables):
    ends, spaced = tables
    assert ends.shape == spaced.shape == (tokenizer.vocab_size,)
    period = tokenizer.encode("It ended.")[0][-1]
    word = tokenizer.encode("It ended")[0][1]  # " end"
    assert ends[period] and not ends[word] and spaced[word] and not spaced[period]


def test_segments_tile_the_document_and_split_at_sentence_ends(tokenizer, tables):
    text = "Dr. Smith examined the patient. The red fox feeds mainly on insects and small rodents! Is it?"
    ids, _ = tokenizer.encode(text)
    segments = sentence_segments(ids, *tables)
    assert segments[0][0] == 0 and segments[-1][1] == len(ids)
    assert all(a < b for a, b in segments) and all(b == c for (_, b), (c, _) in zip(segments, segments[1:]))
    pieces = [tokenizer.decode(ids[a:b]).strip() for a, b in segments]
    # "Dr." and the short "Is it?" are shorter than MIN_SEGMENT tokens: they stay with their neighbours
    assert pieces == ["Dr. Smith examined the patient.",
                      "The red fox feeds mainly on insects and small rodents! Is it?"]
    assert sentence_segments(np.zeros(0, dtype=np.int64), *tables) == []
    assert sentence_segments(ids[:3], *tables) == [(0, 3)]
    assert all(b - a >= MIN_SEGMENT for a, b in segments)


@pytest.mark.parametrize("domain", ["forget", "retain", "general"])
def test_segments_start_where_the_text_splitter_starts_a_sentence(tokenizer, tables, domain):
    """On 30 real test documents per domain, >= 90% of segment starts fall on a start of `sentence_bounds` (measured:
    0.92-0.99; abbreviations and headings account for the rest), and there are about as many segments as sentences."""
    hits = total = segments_n = sentences_n = 0
    for doc in load_demo("test", domain)[:30]:
        ids, offsets = tokenizer.encode(doc.text)
        segments = sentence_segments(ids, *tables)
        starts = {a for a, _ in sentence_bounds(doc.text)}
        for a, _ in segments[1:]:
            char = int(offsets[a][0])
            while char < len(doc.text) and doc.text[char].isspace():
                char += 1
            hits += char in starts
            total += 1
        segments_n += len(segments)
        sentences_n += len(sentence_bounds(doc.text))
    assert total > 100 and hits / total >= 0.9
    assert 0.8 <= segments_n / sentences_n <= 1.2
