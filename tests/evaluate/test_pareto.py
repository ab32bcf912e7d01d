"""The Pareto check of results.json: removal vs each document-filtered run, per size."""

from __future__ import annotations

import pytest

from tokfilter.evaluate.pareto import describe, describe_aggregates, pareto_aggregates, pareto_summary


def run(name: str, mode: str, forget: float, retain: float, size: str = "tiny-0.2m") -> dict:
    return {"name": name, "mode": mode, "size": size, "tokens_filtered_frac": 0.1,
            "loss": {"forget": forget, "retain": retain, "general": 6.0}}


RUNS = [
    run("none", "none", 6.0, 5.0),
    run("doc-strict", "document", 6.4, 5.3),   # +0.4 forget, +0.3 retain
    run("doc-lenient", "document", 6.2, 5.05),  # +0.2 forget, +0.05 retain
    run("remove-a", "remove", 6.25, 4.95),     # +0.25 forget, -0.05 retain
    run("remove-b", "remove", 6.37, 5.1),      # +0.37 forget, +0.1 retain
    run("mask-a", "mask", 6.1, 4.9),
]


def test_best_cheaper_removal_run_is_compared_with_each_document_run():
    summary = pareto_summary(RUNS)
    by_doc = {c["document_run"]: c for c in summary["comparisons"]}
    strict, lenient = by_doc["doc-strict"], by_doc["doc-lenient"]
    # against the strict filter both removal runs cost less retain loss; the stronger one is chosen: 0.37/0.4
    assert strict["remove"]["run"] == "remove-b"
    assert abs(strict["remove"]["forget_ratio"] - 0.925) < 1e-9 and strict["remove"]["holds"]
    # against the lenient filter only remove-a is cheaper on retain: 0.25/0.2 of its forget increase
    assert lenient["remove"]["run"] == "remove-a" and lenient["remove"]["holds"]
    assert lenient["mask"]["run"] == "mask-a" and not lenient["mask"]["holds"]  # 0.1 / 0.2 = 50%
    assert summary["holds"] == {"remove": ["doc-strict", "doc-lenient"], "mask": []}


def test_claim_fails_when_no_removal_run_is_cheaper_or_strong_enough():
    runs = [run("none", "none", 6.0, 5.0), run("doc", "document", 6.5, 5.01), run("remove", "remove", 6.4, 5.2),
            run("remove-weak", "remove", 6.1, 4.9)]
    (entry,) = pareto_summary(runs)["comparisons"]
    assert entry["remove"]["run"] == "remove-weak" and not entry["remove"]["holds"]
    assert "does not hold" in describe(pareto_summary(runs))[0]
    no_cheaper = [run("none", "none", 6.0, 5.0), run("doc", "document", 6.5, 4.8), run("remove", "remove", 6.4, 5.2)]
    (entry,) = pareto_summary(no_cheaper)["comparisons"]
    assert entry["remove"] is None
    assert "no removal run" in describe(pareto_summary(no_cheaper))[0]


def test_sizes_are_compared_with_their_own_baseline():
    runs = RUNS + [run("none-big", "none", 5.0, 4.0, "tiny-0.4m"), run("doc-big", "document", 5.5, 4.3, "tiny-0.4m"),
                   run("remove-big", "remove", 5.48, 4.1, "tiny-0.4m")]
    big = [c for c in pareto_summary(runs)["comparisons"] if c["size"] == "tiny-0.4m"]
    assert len(big) == 1 and big[0]["remove"]["run"] == "remove-big"
    assert abs(big[0]["remove"]["forget_ratio"] - 0.96) < 1e-9


def test_seeds_are_compared_with_their_own_baseline():
    seeded = [{**r, "seed": 0} for r in RUNS] + [
        {**run("none-s1", "none", 6.3, 5.2), "seed": 1},  # a noisier seed: its filtered runs start higher too
        {**run("doc-s1", "document", 6.7, 5.5), "seed": 1},
        {**run("remove-s1", "remove", 6.69, 5.25), "seed": 1}]
    comparisons = pareto_summary(seeded)["comparisons"]
    assert [(c["seed"], c["document_run"]) for c in comparisons] == [(0, "doc-strict"), (0, "doc-lenient"),
                                                                     (1, "doc-s1")]
    s1 = comparisons[-1]["remove"]
    assert s1["run"] == "remove-s1" and abs(s1["forget_increase"] - 0.39) < 1e-9 and s1["holds"]
    assert pareto_summary(RUNS)["comparisons"][0]["seed"] is None  # runs without seeds: as before


def seeded(seed: int, forget_shift: float, doc: tuple, remove: tuple) -> list[dict]:
    """One seed's runs: an unfiltered run at (6 + shift, 5), a document run and a removal run given as increases."""
    base = {**run(f"none-s{seed}", "none", 6.0 + forget_shift, 5.0), "seed": seed}
    return [base,
            {**run(f"document-t0.1-s{seed}", "document", 6.0 + forget_shift + doc[0], 5.0 + doc[1]),
             "doc_threshold": 0.1, "threshold": 0.2, "seed": seed},
            {**run(f"remove-t0.3-s{seed}", "remove", 6.0 + forget_shift + remove[0], 5.0 + remove[1]),
             "threshold": 0.3, "seed": seed}]


def test_aggregates_over_seeds_share_and_intervals():
    # seed 0: removal +0.38 forget / +0.05 retain vs document +0.4 / +0.2 -> holds (95%)
    # seed 1: removal +0.20 / +0.05 vs document +0.4 / +0.2 -> 50%, does not hold
    runs = seeded(0, 0.0, (0.4, 0.2), (0.38, 0.05)) + seeded(1, 0.3, (0.4, 0.2), (0.2, 0.05))
    agg = pareto_aggregates(runs)
    (pair,) = agg["pairs"]
    assert pair["n"] == 2 and pair["seeds"] == [0, 1] and pair["holds_share"] == 0.5
    assert pair["document"]["doc_threshold"] == 0.1 and pair["token"]["mode"] == "remove"
    assert pair["token"]["runs"] == ["remove-t0.3-s0", "remove-t0.3-s1"]
    forget = pair["token"]["forget_increase"]
    assert forget["mean"] == pytest.approx(0.29) and forget["n"] == 2
    assert forget["ci"][0] < 0.2 and forget["ci"][1] > 0.38  # the interval contains both seeds
    assert pair["document"]["forget_increase"]["mean"] == pytest.approx(0.4)  # the per-seed baseline absorbs +0.3
    assert pair["document"]["forget_increase"]["sd"] == pytest.approx(0.0, abs=1e-9)
    verdict = next(v for v in agg["verdicts"] if v["mode"] == "remove")
    assert verdict["n"] == 2 and verdict["holds_share"] == 0.5
    assert verdict["chosen"] == {"remove-t0.3-s0": 1, "remove-t0.3-s1": 1}
    assert describe_aggregates(agg) == ["document >= 0.1 (tiny-0.2m) vs the best cheaper removal run: the claim "
                                        "holds in 1/2 seeds"]


def test_aggregates_with_one_seed_have_no_interval():
    agg = pareto_aggregates(seeded(0, 0.0, (0.4, 0.2), (0.38, 0.05)))
    (pair,) = agg["pairs"]
    assert pair["n"] == 1 and pair["holds_share"] == 1.0
    assert pair["token"]["forget_increase"]["ci"] is None and pair["token"]["forget_increase"]["n"] == 1
