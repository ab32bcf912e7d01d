"""Span growth: the vectorised fixed point equals the literal iterate-to-convergence rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tokfilter.labels.grow import grow_spans, grow_spans_iterative


def test_grows_over_positive_neighbours_only():
    flags = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    positive = np.array([1, 0, 1, 1, 1, 1, 0, 1, 1], dtype=bool)
    grown = grow_spans(flags, positive)
    assert grown.tolist() == [False, False, True, True, True, True, False, False, False]


def test_seed_that_is_not_positive_still_grows_both_ways():
    flags = np.array([0, 1, 0, 0], dtype=bool)
    positive = np.array([1, 0, 1, 1], dtype=bool)
    assert grow_spans(flags, positive).tolist() == [True, True, True, True]


def test_no_seed_no_growth_and_empty():
    positive = np.ones(5, dtype=bool)
    assert not grow_spans(np.zeros(5, dtype=bool), positive).any()
    assert grow_spans(np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)).shape == (0,)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60))
def test_matches_iterative_fixed_point(pairs):
    flags = np.array([p[0] for p in pairs], dtype=bool)
    positive = np.array([p[1] for p in pairs], dtype=bool)
    expected = grow_spans_iterative(flags, positive)
    assert np.array_equal(grow_spans(flags, positive), expected)
    # converged: one more step changes nothing
    assert np.array_equal(grow_spans_iterative(expected, positive, max_steps=1), expected)
