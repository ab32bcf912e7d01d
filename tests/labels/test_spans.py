"""Char-span labels: validation, overlap handling, and conversion through two different tokenizers."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from tokfilter.errors import UserError
from tokfilter.labels.spans import (
    load_labels,
    normalize_spans,
    spans_to_char_scores,
    spans_to_token_scores,
    token_scores_to_spans,
    write_labels,
)
from tokfilter.tokenizer import load_tokenizer, train_tokenizer


def test_normalize_validates_and_resolves_overlaps():
    assert normalize_spans([]) == []
    assert normalize_spans([[5, 10, 0.5], [0, 3], [8, 12, 1.0]]) == [(0, 3, 1.0), (5, 8, 0.5), (8, 12, 1.0)]
    assert normalize_spans([[0, 4, 1.0], [2, 6, 1.0]]) == [(0, 6, 1.0)]
    for bad in ([[3, 3, 1.0]], [[-1, 2, 1.0]], [[0, 2, 1.5]], [["a", 2]], [[0, 2, 1.0, 9]]):
        with pytest.raises(UserError):
            normalize_spans(bad)
    with pytest.raises(UserError, match="beyond the text"):
        normalize_spans([[0, 11, 1.0]], text_length=10)


def test_label_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "labels.jsonl"
    write_labels(path, [("a", [(0, 4, 1.0)]), ("b", [])])
    assert load_labels(path) == {"a": [(0, 4, 1.0)], "b": []}
    path.write_text('{"id": "a", "spans": [[0, 4, 1.0]]}\n{"id": "a", "spans": []}\n')
    with pytest.raises(UserError, match="appears twice"):
        load_labels(path)
    path.write_text('{"id": "a"}\n')
    with pytest.raises(UserError, match=r"labels.jsonl:1"):
        load_labels(path)
    with pytest.raises(UserError, match="is a directory"):
        load_labels(tmp_path)


def test_same_spans_through_two_tokenizers_agree_on_labelled_characters(tmp_path, shared_data):
    with gzip.open(shared_data / "corpora" / "medquad_answers.jsonl.gz", "rt") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(100), fh)]
    bpe = train_tokenizer(texts, 500, tmp_path / "t.json")
    gpt2 = load_tokenizer(shared_data / "tokenizers" / "gpt2.tiktoken")
    rng = np.random.default_rng(0)
    for text in texts[:30]:
        cuts = np.sort(rng.choice(len(text), size=4, replace=False))
        spans = normalize_spans([[int(cuts[0]), int(cuts[1]), 1.0], [int(cuts[2]), int(cuts[3]), 1.0]], len(text))
        truth = spans_to_char_scores(spans, len(text)) > 0
        covered = []
        for tok in (bpe, gpt2):
            _, offsets = tok.encode(text)
            scores = spans_to_token_scores(spans, offsets, len(text))
            chars = np.zeros(len(text), bool)
            for (start, end), s in zip(offsets, scores):
                if s > 0:
                    chars[start:end] = True
            assert chars[truth].all()  # every labelled character is inside a labelled token
            covered.append(chars)
            # round trip back to spans covers the same characters
            back = spans_to_char_scores(token_scores_to_spans(scores, offsets), len(text)) > 0
            assert np.array_equal(back, chars)
        # the tokenizers differ only at span edges: inside the spans they agree exactly
        assert np.array_equal(covered[0] & truth, covered[1] & truth)
        # and neither labels a character farther than a token away from a span
        for chars in covered:
            assert (chars & ~truth).sum() <= 2 * 40
