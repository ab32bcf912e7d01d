"""`tokfilter run` end to end on a micro experiment over the embedded corpus: every stage, the output layout
contract, results.json's schema, no pretraining document among the classifier's training documents, and a second run
that reuses every stage."""

from __future__ import annotations

import json
import time

import pytest

from tokfilter.cli import main


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory, micro_experiment):
    root = tmp_path_factory.mktemp("micro")
    (root / "micro.toml").write_text(micro_experiment())
    out = root / "out"
    assert main(["run", str(root / "micro.toml"), "--out", str(out)]) == 0
    return root, out


def test_output_layout_and_results_schema(micro_run):
    _, out = micro_run
    for path in ("results.json", "report.html", "view.html", "classifier/config.json", "shards/manifest.json",
                 "figures/frontier.png"):
        assert (out / path).exists(), path
    results = json.loads((out / "results.json").read_text())
    for key in ("tokfilter_version", "experiment", "seed", "wall_seconds", "classifier", "runs", "pareto",
                "slowdown", "robustness", "refusal"):
        assert key in results, key
    assert {"kind", "params", "f1", "auroc", "threshold", "baselines"} <= set(results["classifier"])
    assert {run["mode"] for run in results["runs"]} == {"none", "document", "mask", "remove"}
    for run in results["runs"]:
        assert {"name", "mode", "threshold", "params", "train_tokens", "effective_tokens", "flops",
                "tokens_filtered_frac", "loss", "mcq"} <= set(run)
        assert set(run["loss"]) >= {"forget", "retain", "general"}
        assert (out / "runs" / run["name"] / "checkpoint" / "model.safetensors").exists()
    assert main(["eval", "loss", "--model", str(out / "runs" / results["runs"][0]["name"]), "--data",
                 str(out / "eval-shards")]) == 0
    masked = next(r for r in results["runs"] if r["mode"] == "mask")
    assert masked["tokens_filtered_frac"] > 0
    (comparison,) = results["pareto"]["comparisons"]  # one document run at one size
    assert comparison["document_run"] == "document-t0.1-tiny-0.1m"
    assert "Token removal vs document filtering" in (out / "report.html").read_text()
    assert "fit" in results["slowdown"]  # two unfiltered sizes -> a power-law fit
    assert any(name.endswith("-rmu") for name in results["robustness"])
    assert len(results["refusal"]) == 4


def test_no_pretraining_document_was_trained_on(micro_run):
    from tokfilter.labels.benchmark import load_benchmark
    from tokfilter.pipeline.folds import label_part
    from tokfilter.shards import ShardSet

    _, out = micro_run
    shards = ShardSet(out / "shards")
    shard_meta = [meta for index in range(shards.num_shards) for meta in shards.doc_meta(index)]
    pretrained = {meta["id"] for meta in shard_meta}
    donors = {meta["passage"]["id"] for meta in shard_meta if "passage" in meta}
    trained_on = set(json.loads((out / "classifier" / "label_ids.json").read_text()))
    assert trained_on and pretrained, "both parts must be non-empty"
    assert not trained_on & (pretrained | donors), "a pretraining document was in the classifier's training data"
    train_ids = {b.document.id for b in load_benchmark(out / "benchmark", "train")}
    assert trained_on | pretrained == train_ids  # the two parts divide the train split
    assert trained_on == {i for i in train_ids if label_part(i, 0.5)}  # by the one assignment function
    assert shards.has_scores("forget") and shards.has_scores("truth")  # the classifier scored these documents
    fold = json.loads((out / "results.json").read_text())["classifier"]["out_of_fold"]
    assert fold == {"method": "disjoint label/pretrain split of the train documents", "label_fraction": 0.5,
                    "label_documents": len(trained_on), "pretrain_documents": len(pretrained),
                    "shared_documents": 0}


def test_second_run_reuses_every_stage(micro_run):
    root, out = micro_run
    start = time.time()
    assert main(["run", str(root / "micro.toml"), "--out", str(out)]) == 0
    seconds = time.time() - start
    results = json.loads((out / "results.json").read_text())
    assert set(results["stages"]["cached"]) == set(results["stages"]["seconds"])  # every stage came from cache
    assert seconds < 60


def test_one_seed_keeps_names_and_says_there_is_no_interval(micro_run, capsys):
    _, out = micro_run
    results = json.loads((out / "results.json").read_text())
    names = {run["name"] for run in results["runs"]}
    assert "none-tiny-0.1m" in names and "remove-t0.5-tiny-0.1m" in names  # no -s{seed} with one seed
    assert results["seeds"] == [0] and {run["seed"] for run in results["runs"]} == {0}
    agg = results["aggregates"]
    assert agg["n_seeds"] == 1 and agg["runs"] and all(entry["n"] == 1 for entry in agg["runs"])
    assert all(entry["loss"]["forget"]["ci"] is None for entry in agg["runs"])
    assert "One seed: no interval" in (out / "report.html").read_text()
    from tokfilter.pipeline.results import print_summary

    print_summary(results)
    assert "one seed: no interval" in capsys.readouterr().out
