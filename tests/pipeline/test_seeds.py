"""`tokfilter run` with `seeds = [0, 1]` on the micro experiment of test_run.py: one record per seed, run names with
-s{seed}, `aggregates` whose means and t-intervals agree with the records, and robustness / refusal per seed."""

from __future__ import annotations

import json
import statistics

import pytest

from tokfilter.cli import main


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory, micro_experiment):
    root = tmp_path_factory.mktemp("micro-seeds")
    (root / "micro.toml").write_text(micro_experiment("micro-seeds", "seeds = [0, 1]"))
    out = root / "out"
    assert main(["run", str(root / "micro.toml"), "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def _config(run: dict) -> tuple:
    return run["mode"], run["size"], run["threshold"], run["doc_threshold"]


def test_one_record_per_seed_with_suffixed_names(seeds_run):
    _, results = seeds_run
    assert results["seed"] == 0 and results["seeds"] == [0, 1]
    runs = results["runs"]
    assert len(runs) == 10  # (none, document, mask, remove) at 0.1m + none at 0.2m, twice
    by_config: dict[tuple, list[dict]] = {}
    for run in runs:
        assert run["name"].endswith(f"-s{run['seed']}")
        by_config.setdefault(_config(run), []).append(run)
    assert len(by_config) == 5
    for records in by_config.values():
        assert sorted(r["seed"] for r in records) == [0, 1]
        assert records[0]["loss"]["forget"] != records[1]["loss"]["forget"]  # the seeds trained different models


def test_aggregates_agree_with_the_records(seeds_run):
    _, results = seeds_run
    agg = results["aggregates"]
    assert agg["n_seeds"] == 2 and agg["seeds"] == [0, 1] and agg["confidence"] == 0.95
    records = {}
    for run in results["runs"]:
        records.setdefault(_config(run), []).append(run)
    assert len(agg["runs"]) == len(records)
    for entry in agg["runs"]:
        group = records[(entry["mode"], entry["size"], entry["threshold"], entry["doc_threshold"])]
        assert entry["n"] == 2 and sorted(entry["seeds"]) == [0, 1]
        for domain in ("forget", "retain", "general"):
            values = [r["loss"][domain] for r in group]
            stat = entry["loss"][domain]
            assert stat["n"] == 2 and stat["mean"] == pytest.approx(statistics.mean(values))
            assert stat["ci"][0] <= min(values) and stat["ci"][1] >= max(values)
        for name in group[0]["mcq"]:
            accuracies = [r["mcq"][name]["accuracy"] for r in group]
            assert entry["mcq"][name]["accuracy"]["mean"] == pytest.approx(statistics.mean(accuracies))
        fracs = [r["tokens_filtered_frac"] for r in group]
        assert entry["tokens_filtered_frac"]["mean"] == pytest.approx(statistics.mean(fracs))
    (pair,) = [p for p in agg["pareto"]["pairs"] if p["token"]["mode"] == "remove"]
    assert pair["n"] == 2 and 0.0 <= pair["holds_share"] <= 1.0
    assert len(results["pareto"]["comparisons"]) == 2  # each seed against its own unfiltered run
    assert {c["seed"] for c in results["pareto"]["comparisons"]} == {0, 1}


def test_slowdown_resamples_seeds(seeds_run):
    _, results = seeds_run
    slow = results["slowdown"]
    assert "fit" in slow and slow["bootstrap"]["seeds"] is True
    assert {a["mode"] for a in slow["aggregates"]} == {"document", "mask", "remove"}
    assert all(len(a["seeds"]) == 2 for a in slow["aggregates"])
    for entry in results["aggregates"]["runs"]:
        if entry["mode"] != "none":
            assert entry["slowdown"]["ci"]["forget"] is not None


def test_robustness_and_refusal_per_seed(seeds_run):
    out, results = seeds_run
    robust, refusal = results["robustness"], results["refusal"]
    for seed in (0, 1):
        assert f"none-tiny-0.1m-s{seed}-rmu" in robust
        assert {f"{mode}-t0.5-tiny-0.1m-s{seed}" for mode in ("mask", "remove")} <= set(robust)
        assert f"none-tiny-0.1m-s{seed}" in refusal
    assert len(refusal) == 8 and len(robust) == 8  # 3 filtered + RMU per seed; 4 models per seed
    assert results["aggregates"]["robustness"]["rmu"]["n"] == 2
    assert results["aggregates"]["refusal"]["remove"]["n"] == 2
    rates = [refusal[f"remove-t0.5-tiny-0.1m-s{s}"]["forget_refusal_rate"] for s in (0, 1)]
    assert results["aggregates"]["refusal"]["remove"]["forget_refusal_rate"]["mean"] == pytest.approx(
        statistics.mean(rates))
    page = (out / "report.html").read_text()
    assert "Over seeds" in page and "One seed: no interval" not in page
    assert (out / "figures" / "frontier.png").stat().st_size > 0


def test_seeds_are_validated(tmp_path):
    from tokfilter.errors import UserError
    from tokfilter.pipeline.experiment import load_experiment

    path = tmp_path / "e.toml"
    for bad in ("[0, 0]", "[-1]", '["a"]'):
        path.write_text(f'name = "e"\nseeds = {bad}\n')
        with pytest.raises(UserError, match="seeds"):
            load_experiment(path)
    path.write_text('name = "e"\nseed = 3\n')
    assert load_experiment(path).seed_list() == [3]  # empty seeds: one seed, `seed`


def test_plan_lists_the_grid_once_per_seed():
    from tokfilter.pipeline.experiment import Experiment
    from tokfilter.pipeline.steps import pretrain

    exp = Experiment(seed=5)
    one = pretrain.plan(exp)
    assert [r["name"] for r in one] == [r["name"] for r in pretrain.grid(exp)]  # one seed: today's names
    assert {r["seed"] for r in one} == {5}
    exp.seeds = [0, 2]
    two = pretrain.plan(exp)
    assert len(two) == 2 * len(one)
    assert [r["name"] for r in two[: len(one)]] == [f"{r['name']}-s0" for r in one]
    assert {r["seed"] for r in two[len(one):]} == {2}
