"""deltas_vs_unfiltered: loss changes paired by size and seed, one STAT per filtered configuration."""

from __future__ import annotations

import pytest

from tokfilter.evaluate.intervals import deltas_vs_unfiltered


def _run(mode, size, seed, forget, threshold=None, variant=None):
    return {"name": f"{mode}-{size}-s{seed}", "mode": mode, "size": size, "seed": seed, "threshold": threshold,
            "doc_threshold": None, "variant": variant, "params": 1 if size == "a" else 2,
            "loss": {"forget": forget, "retain": 1.0}, "tokens_filtered_frac": 0.1}


def test_pairs_by_seed_so_shared_seed_noise_cancels():
    runs = [_run("none", "a", 0, 5.0), _run("none", "a", 1, 6.0),  # seed 1 is 1 nat worse for every mode
            _run("remove", "a", 0, 5.5, 0.3), _run("remove", "a", 1, 6.5, 0.3),
            _run("remove", "b", 0, 9.0, 0.3)]  # no unfiltered run of size b: left out
    (entry,) = deltas_vs_unfiltered(runs, domains=("forget", "retain"))
    assert entry["name"] == "remove-t0.3-a" and entry["n"] == 2 and entry["seeds"] == [0, 1]
    assert entry["forget"]["mean"] == pytest.approx(0.5) and entry["forget"]["sd"] == pytest.approx(0.0)
    assert entry["retain"]["mean"] == pytest.approx(0.0)


def test_variants_are_separate_configurations():
    runs = [_run("none", "a", 0, 5.0), _run("remove", "a", 0, 5.5, 0.3, "n0"), _run("remove", "a", 0, 5.2, 0.3, "n4")]
    deltas = {d["variant"]: d["forget"]["mean"] for d in deltas_vs_unfiltered(runs)}
    assert deltas == pytest.approx({"n0": 0.5, "n4": 0.2})
