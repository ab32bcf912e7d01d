"""Label metrics: char- and token-level precision / recall / F1 against exact spans."""

from __future__ import annotations

import pytest

from tokfilter.errors import UserError
from tokfilter.labels.metrics import label_metrics, prf
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec


def test_prf_edge_cases():
    assert prf(0, 0, 0)["f1"] == 0.0
    assert prf(5, 0, 0)["f1"] == 1.0
    assert prf(1, 1, 2) == {"precision": 0.5, "recall": 0.3333, "f1": 0.4, "tp": 1, "fp": 1, "fn": 2}


def test_char_level_counts_by_hand():
    gold = [("a", "0123456789", [(2, 6, 1.0)]), ("b", "abcde", [])]
    predicted = {"a": [(4, 8, 1.0)], "b": [(0, 1, 1.0)], "zzz": [(0, 1, 1.0)]}
    result = label_metrics(predicted, gold)
    assert (result["char"]["tp"], result["char"]["fp"], result["char"]["fn"]) == (2, 3, 2)
    assert result["chars"] == 15 and result["unknown_ids"] == 1 and "token" not in result
    assert label_metrics({"a": [(4, 8, 0.3)]}, gold, threshold=0.5)["char"]["tp"] == 0


def test_token_level_perfect_and_partial():
    tokenizer = load_tokenizer(default_tokenizer_spec())
    text = "The patient had a fever. Plants grow in soil."
    span = (0, text.index(".") + 1, 1.0)
    gold = [("d", text, [span])]
    perfect = label_metrics({"d": [span]}, gold, tokenizer)
    assert perfect["token"]["f1"] == 1.0 and perfect["char"]["f1"] == 1.0
    partial = label_metrics({"d": [(text.index("fever"), text.index("fever") + 5, 1.0)]}, gold, tokenizer)
    assert partial["token"]["precision"] == 1.0 and 0 < partial["token"]["recall"] < 0.5
    assert partial["tokens"] == len(tokenizer.encode(text)[0])
    assert label_metrics({}, gold, tokenizer)["token"]["recall"] == 0.0


def test_span_beyond_text_is_an_error_not_a_silent_clip():
    with pytest.raises(UserError, match="does not fit"):
        label_metrics({"a": [(3, 40, 1.0)]}, [("a", "short text", [])])
