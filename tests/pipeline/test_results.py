"""results.json's `aggregates` and the terminal summary, on hand-made run records (no training)."""

from __future__ import annotations

import pytest

from tokfilter.pipeline.results import print_summary, seed_aggregates


def record(mode: str, seed: int, forget: float, retain: float, threshold=None, doc_threshold=None,
           several: bool = True) -> dict:
    name = f"{mode}-tiny-0.2m" + (f"-s{seed}" if several else "")
    return {"name": name, "mode": mode, "size": "tiny-0.2m", "threshold": threshold, "doc_threshold": doc_threshold,
            "seed": seed, "params": 200_000, "tokens_filtered_frac": 0.1 * seed,
            "loss": {"forget": forget, "retain": retain, "general": 6.0},
            "mcq": {"probes_forget": {"n": 10, "accuracy": 0.3 + 0.1 * seed, "chance": 0.25}}}


RUNS = [record("none", 0, 6.0, 5.0), record("remove", 0, 6.5, 5.02, threshold=0.3),
        record("none", 1, 6.1, 5.1), record("remove", 1, 6.4, 5.1, threshold=0.3)]


def test_canaries_before_and_after_the_attack_are_averaged_per_mode():
    def attacked(forget_before, forget_after):
        return {"recovery_tokens": None, "reached": False,
                "canaries": {"before": {"forget": {"accuracy": forget_before}, "retain": {"accuracy": 0.9}},
                             "after": {"forget": {"accuracy": forget_after}, "retain": {"accuracy": 0.8}}}}
    robustness = {"remove-tiny-0.2m-s0": attacked(0.3, 0.2), "remove-tiny-0.2m-s1": attacked(0.5, 0.4),
                  "none-tiny-0.2m-s0-rmu": {"recovery_tokens": 100, "reached": True}}
    agg = seed_aggregates([0, 1], RUNS, {}, robustness, {})["robustness"]
    canaries = agg["remove"]["canaries"]
    assert canaries["before"]["forget"]["mean"] == pytest.approx(0.4) and canaries["before"]["forget"]["n"] == 2
    assert canaries["after"]["forget"]["mean"] == pytest.approx(0.3)
    assert canaries["after"]["retain"]["mean"] == pytest.approx(0.8) and canaries["after"]["retain"]["sd"] == 0.0
    assert "canaries" not in agg["rmu"]  # measured nowhere: no empty aggregate


def test_aggregates_per_configuration_with_t_intervals():
    robustness = {"remove-tiny-0.2m-s0": {"recovery_tokens": 1000, "recovery_fraction": 0.1, "reached": True},
                  "remove-tiny-0.2m-s1": {"recovery_tokens": None, "recovery_fraction": None, "reached": False},
                  "none-tiny-0.2m-s0-rmu": {"recovery_tokens": 100, "reached": True},
                  "none-tiny-0.2m-s1-rmu": {"recovery_tokens": 300, "reached": True}}
    refusal = {"remove-tiny-0.2m-s0": {"forget_refusal_rate": 0.5, "general_refusal_rate": 0.1},
               "remove-tiny-0.2m-s1": {"forget_refusal_rate": 0.7, "general_refusal_rate": 0.1}}
    slowdown = {"aggregates": [{"mode": "remove", "size": "tiny-0.2m", "threshold": 0.3, "doc_threshold": None,
                                "forget": 40.0, "ci": {"forget": [10.0, 90.0]}, "seeds": [0, 1]}]}
    agg = seed_aggregates([0, 1], RUNS, slowdown, robustness, refusal)
    assert agg["n_seeds"] == 2 and agg["interval"] == "t"
    none, remove = agg["runs"]
    assert none["mode"] == "none" and none["n"] == 2 and none["runs"] == ["none-tiny-0.2m-s0", "none-tiny-0.2m-s1"]
    forget = remove["loss"]["forget"]  # 6.45 +- 12.706 * 0.0707 / 1.414
    assert forget["mean"] == pytest.approx(6.45) and forget["ci"] == pytest.approx([6.45 - 0.635310, 6.45 + 0.635310],
                                                                                  abs=1e-5)
    assert remove["mcq"]["probes_forget"]["accuracy"]["mean"] == pytest.approx(0.35)
    assert remove["tokens_filtered_frac"]["mean"] == pytest.approx(0.05)
    assert remove["slowdown"] == {"forget": 40.0, "ci": {"forget": [10.0, 90.0]}}
    assert "slowdown" not in none
    assert agg["robustness"]["remove"]["recovery_tokens"] == {"mean": 1000.0, "ci": None, "sd": None, "n": 1}
    assert agg["robustness"]["remove"]["reached_share"] == 0.5 and agg["robustness"]["rmu"]["n"] == 2
    assert agg["robustness"]["rmu"]["recovery_tokens"]["mean"] == pytest.approx(200.0)
    assert agg["refusal"]["remove"]["forget_refusal_rate"]["mean"] == pytest.approx(0.6)
    assert agg["pareto"]["pairs"] == []  # no document run
    assert seed_aggregates([0, 1], RUNS, {}, {"skipped": "no"}, {})["robustness"] == {}


def test_one_seed_has_n_one_and_no_interval(capsys):
    runs = [record("none", 0, 6.0, 5.0, several=False), record("remove", 0, 6.5, 5.02, threshold=0.3, several=False)]
    agg = seed_aggregates([0], runs, {}, {}, {})
    assert [e["n"] for e in agg["runs"]] == [1, 1]
    assert all(e["loss"][d]["ci"] is None for e in agg["runs"] for d in ("forget", "retain", "general"))
    print_summary({"runs": runs, "aggregates": agg})
    assert "one seed: no interval" in capsys.readouterr().out


def test_summary_prints_means_and_intervals_for_several_seeds(capsys):
    print_summary({"runs": RUNS, "aggregates": seed_aggregates([0, 1], RUNS, {}, {}, {})})
    out = capsys.readouterr().out
    assert "over 2 seeds" in out and "remove-t0.3-tiny-0.2m" in out and "6.450 [" in out
    assert "one seed" not in out
