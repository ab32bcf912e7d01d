"""Token metrics: the share of keep tokens flagged, and F1 carried to another forget fraction."""

from __future__ import annotations

import numpy as np
import pytest

from tokfilter.classify.metrics import f1_at_share, token_metrics


def test_keep_flagged_is_the_false_positive_rate():
    gold = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.2, 0.1] + [0.7, 0.6] + [0.0] * 14)
    m = token_metrics(scores, gold, 0.5)
    assert (m["precision"], m["recall"], m["keep_flagged"]) == (0.5, 0.5, 0.125)


def test_f1_at_share_reproduces_the_measured_f1_and_falls_with_the_base_rate():
    rng = np.random.default_rng(0)
    gold = rng.random(20_000) < 0.155
    scores = np.where(gold, rng.random(gold.size) * 0.9 + 0.1, rng.random(gold.size) * 0.6)
    m = token_metrics(scores, gold, 0.5)
    assert f1_at_share(m["recall"], m["keep_flagged"], m["forget_fraction"]) == pytest.approx(m["f1"], abs=2e-3)
    # the same classifier on text with 6% forget: fewer true positives against the same false-alarm rate
    rare = f1_at_share(m["recall"], m["keep_flagged"], 0.06)
    assert rare < m["f1"] - 0.05
    assert f1_at_share(m["recall"], 0.0, 0.06) == pytest.approx(2 * m["recall"] / (1 + m["recall"]), abs=1e-4)
    with pytest.raises(ValueError):
        f1_at_share(0.5, 0.1, 0.0)
