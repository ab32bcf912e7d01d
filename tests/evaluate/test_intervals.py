"""Means over seeds with a t-interval (results.json `aggregates`), on numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from tokfilter.evaluate.intervals import config_key, config_of, mean_interval, share, t_quantile


def test_t_quantiles_match_the_table():
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile(0.975, 30) == pytest.approx(2.0423, abs=1e-4)


def test_interval_on_known_numbers():
    # mean 2, sd 1, n 3: 2 +- 4.302653 / sqrt(3) = 2 +- 2.484138
    stat = mean_interval([1.0, 2.0, 3.0])
    assert stat["n"] == 3 and stat["mean"] == pytest.approx(2.0) and stat["sd"] == pytest.approx(1.0)
    assert stat["ci"] == pytest.approx([2.0 - 2.484138, 2.0 + 2.484138], abs=1e-6)
    # two seeds: 6 +- 12.706205 * sqrt(2) / sqrt(2)
    assert mean_interval([5.0, 7.0])["ci"] == pytest.approx([6.0 - 12.706205, 6.0 + 12.706205], abs=1e-6)
    # a 90% interval is narrower: t_{0.95,2} = 2.919986
    assert mean_interval([1.0, 2.0, 3.0], confidence=0.9)["ci"][1] == pytest.approx(2.0 + 2.919986 / math.sqrt(3))


def test_one_value_has_no_interval_and_nulls_are_dropped():
    assert mean_interval([4.5]) == {"mean": 4.5, "ci": None, "sd": None, "n": 1}
    assert mean_interval([None, 4.5, float("nan")]) == {"mean": 4.5, "ci": None, "sd": None, "n": 1}
    assert mean_interval([]) is None and mean_interval([None]) is None
    equal = mean_interval([3.0, 3.0])
    assert equal["ci"] == [3.0, 3.0] and equal["sd"] == 0.0


def test_share_and_configuration_keys():
    assert share([True, False, None, True]) == {"share": 2 / 3, "n": 3}
    assert share([None]) is None
    run = {"name": "mask-t0.5-tiny-0.1m-s1", "mode": "mask", "size": "tiny-0.1m", "threshold": 0.5,
           "doc_threshold": None, "seed": 1}
    assert config_of(run) == {"mode": "mask", "size": "tiny-0.1m", "threshold": 0.5, "doc_threshold": None,
                              "variant": None}
    assert config_key(run) == config_key({**run, "name": "other", "seed": 0})
