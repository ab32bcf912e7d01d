"""Training API, classifier directories and the CLI on a small real exact-span benchmark."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tokfilter.classify import check_tokenizer, evaluate_classifier, load_classifier, train_classifiers
from tokfilter.classify.data import load_labeled, tokenize_labeled
from tokfilter.cli import main
from tokfilter.errors import UserError
from tokfilter.labels.spans import write_labels


@pytest.fixture(scope="module")
def trained(small_bench, tokenizer, tiny_budget, tmp_path_factory):
    out = tmp_path_factory.mktemp("classifiers")
    metrics = train_classifiers(["windowed", "bilm", "forward", "document", "bilm-frozen"], small_bench["train"],
                                small_bench["valid"], tokenizer, out, budget=tiny_budget, test_items=small_bench["test"],
                                log=lambda m: None)
    return out, metrics


def test_windowed_baseline_learns_real_forget_text(trained):
    _, metrics = trained
    m = metrics["windowed"]
    # Everything-is-forget would score F1 = 2f/(1+f) at forget fraction f; the bag-of-tokens must do far better.
    f = m["test"]["forget_fraction"]
    assert m["f1"] > 2 * f / (1 + f) + 0.15 and m["auroc"] > 0.85


def test_metrics_and_directory_contents(trained):
    out, metrics = trained
    for kind, m in metrics.items():
        directory = out / kind
        names = {p.name for p in directory.iterdir()}
        assert {"config.json", "model.safetensors", "metrics.json", "tokenizer.json", "pr_curve.png"} <= names
        assert not any(n.endswith((".pkl", ".joblib", ".pt")) for n in names)
        assert 0.0 <= m["f1"] <= 1.0 and m["params"] > 0 and m["flops_per_token"] > 0
        assert m["kind"] == kind.removesuffix("-frozen") and json.loads((directory / "metrics.json").read_text())["f1"] == m["f1"]
    assert metrics["forward"]["params"] < metrics["bilm"]["params"]
    sweep = metrics["bilm-frozen"]["train"]["probe"]["layer_sweep_valid_f1"]
    assert len(sweep) == 3  # embeddings, after the block, after the final norm


def test_save_load_round_trip_gives_identical_scores(trained, small_bench, tokenizer):
    out, metrics = trained
    docs = tokenize_labeled([(b.document, b.spans) for b in small_bench["test"][:6]], tokenizer)
    for kind in metrics:
        clf = load_classifier(out / kind)
        assert clf.kind == kind.removesuffix("-frozen") and clf.tokenizer_hash == tokenizer.hash
        assert clf.threshold == pytest.approx(metrics[kind]["threshold"])
        batch = clf.score_batch([d.ids for d in docs])
        for d, scores in zip(docs, batch):
            single = clf.score_tokens(d.ids)
            assert single.dtype == np.float32 and single.shape == d.ids.shape
            assert np.array_equal(single, scores)
        again = evaluate_classifier(out / kind, small_bench["test"])
        assert again["f1"] == metrics[kind]["f1"] and again["auroc"] == metrics[kind]["auroc"]


def test_document_classifier_gives_each_document_one_score(trained, small_bench, tokenizer):
    out, _ = trained
    clf = load_classifier(out / "document")
    docs = tokenize_labeled([(b.document, b.spans) for b in small_bench["test"][:4]], tokenizer)
    batch = clf.score_batch([d.ids for d in docs])
    assert len(docs) == 4 and len(batch) == len(docs)
    for scores in batch:
        assert np.all(scores == scores[0])


def test_other_tokenizer_is_refused(trained, tmp_path):
    out, _ = trained
    clf = load_classifier(out / "bilm")
    with pytest.raises(UserError, match="tokenizer"):
        check_tokenizer(clf, "0" * 64, "shards")
    with pytest.raises(UserError, match="outside the classifier's vocabulary"):
        clf.score_tokens(np.array([1, 2, 100_000]))
    broken = tmp_path / "bilm"
    shutil.copytree(out / "bilm", broken)
    config = json.loads((broken / "config.json").read_text())
    config["tokenizer"]["hash"] = "f" * 64  # the weights belong to another tokenizer than the copy next to them
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="hash"):
        evaluate_classifier(broken, [])


def test_weak_labels_train_and_are_checked_against_the_text(small_bench_dir, small_bench, tmp_path):
    weak = tmp_path / "weak.jsonl"
    write_labels(weak, [(b.document.id, [(0, 5, 1.0)]) for b in small_bench["train"]])
    items = load_labeled(small_bench_dir, weak, "train")
    assert all(spans == [(0, 5, 1.0)] for _, spans in items)
    bad = tmp_path / "bad.jsonl"
    first = small_bench["train"][0].document
    write_labels(bad, [(first.id, [(0, len(first.text) + 10, 1.0)])])
    with pytest.raises(UserError, match="beyond the text"):
        load_labeled(small_bench_dir, bad, "train")


def test_cli_train_and_eval(small_bench_dir, tmp_path, capsys):
    out = tmp_path / "clf"
    assert main(["classifier", "train", "--data", str(small_bench_dir), "--out", str(out), "--kind", "windowed"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["classifier", "eval", "--classifier", str(out), "--data", str(small_bench_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("precision", "recall", "f1", "auroc", "threshold", "params", "flops_per_token"):
        assert key in result
    assert result["f1"] == trained["f1"] and (out / "pr_curve_eval.png").stat().st_size > 1000
    assert main(["classifier", "eval", "--classifier", str(tmp_path / "missing"), "--data", str(small_bench_dir)]) == 2


@pytest.mark.slow
def test_quick_budget_bilm_beats_every_baseline_on_the_demo_benchmark(tokenizer, tmp_path):
    """The acceptance check at demo --quick's budget: biLM test F1 >= 0.85 and above every baseline (minutes)."""
    from tokfilter.labels.benchmark import build_benchmark

    bench = build_benchmark(None, seed=0)
    metrics = train_classifiers(["bilm", "forward", "windowed", "document"], bench["train"], bench["valid"],
                                tokenizer, tmp_path, budget="quick", test_items=bench["test"], log=lambda m: None)
    assert metrics["bilm"]["f1"] >= 0.85
    for kind in ("forward", "windowed", "document"):
        assert metrics["bilm"]["f1"] > metrics[kind]["f1"], kind
