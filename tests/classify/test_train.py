"""Training API, classifier directories and the CLI on a small real exact-span benchmark."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tokfilter.classify import check_tokenizer, evaluate_classifier, load_classifier, train_classifiers
from tokfilter.classify.data import load_labeled, tokenize_labeled
from tokfilter.classify.devset import GROUPS, devset_path
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
    assert "groups" not in result  # benchmark documents have no `group` field: overall metrics only

    # the natural-text dev set's documents carry a group: eval reports each group beside the overall figures
    devset = devset_path()
    dev = ["classifier", "eval", "--classifier", str(out), "--data", str(devset / "docs.jsonl"),
           "--labels", str(devset / "labels.jsonl")]
    assert main(dev) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["group_by"] == "group" and set(result["groups"]) == set(GROUPS)
    assert all(result["groups"][g]["documents"] == 16 for g in GROUPS)
    tokens = {g: m["tokens"] for g, m in result["groups"].items()}
    assert sum(tokens.values()) == result["tokens"]
    # a hard-negative group is nearly all keep text, a mostly-forget one mostly forget (from the hand labels)
    assert result["groups"]["hard_negative"]["forget_fraction"] < 0.05 < 0.5 < result["groups"]["mostly_forget"][
        "forget_fraction"]
    assert main([*dev, "--group-by", "source"]) == 0
    by_source = json.loads(capsys.readouterr().out)["groups"]
    assert len(by_source) >= 3 and sum(m["documents"] for m in by_source.values()) == 48
    assert main([*dev, "--group-by", "none"]) == 0
    assert "groups" not in json.loads(capsys.readouterr().out)
    assert main([*dev, "--group-by", "ward"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "48 of 48 documents have no 'ward' field" in err


@pytest.fixture(scope="module")
def quick_trained(tokenizer, tmp_path_factory):
    """Every kind at demo --quick's budget on the demo benchmark (minutes; slow tests only)."""
    from tokfilter.labels.benchmark import build_benchmark

    bench = build_benchmark(None, seed=0)
    out = tmp_path_factory.mktemp("quick")
    metrics = train_classifiers(["bilm", "forward", "windowed", "document"], bench["train"], bench["valid"],
                                tokenizer, out, budget="quick", test_items=bench["test"], log=lambda m: None)
    return bench, out, metrics


@pytest.mark.slow
def test_quick_budget_bilm_beats_every_baseline_on_the_demo_benchmark(quick_trained):
    """The acceptance check at demo --quick's budget: biLM test F1 >= 0.85 and above every baseline (minutes)."""
    _, _, metrics = quick_trained
    assert metrics["bilm"]["f1"] >= 0.85
    for kind in ("forward", "windowed", "document"):
        assert metrics["bilm"]["f1"] > metrics[kind]["f1"], kind


@pytest.mark.slow
def test_sentence_min_stops_a_medical_document_flagging_a_biology_sentence_inside_it(quick_trained, tokenizer):
    """Context bleeding on real text: a biology-textbook sentence inserted into a medical test document. Scored in
    its document's windows most of it is flagged with the document; scored `sentence-min` (the same weights) at
    most half as much, while the spliced test F1 (threshold chosen again on validation) drops by at most 0.03."""
    import random

    from tokfilter.classify.bilm import BiLMClassifier
    from tokfilter.classify.metrics import best_threshold, token_metrics
    from tokfilter.classify.segments import boundary_tables
    from tokfilter.labels.coarse import sentence_bounds

    bench, out, metrics = quick_trained
    window = load_classifier(out / "bilm")
    sentence_min = BiLMClassifier(window.model, window.tokenizer_hash, scoring="sentence-min",
                                  boundaries=boundary_tables(tokenizer))
    test = [(b.document, b.spans) for b in bench["test"]]
    medical = [d.text for d, spans in test if d.domain == "forget" and "passage" not in d.meta]
    biology = [d.text for d, spans in test if d.meta.get("source") == "biology_textbooks" and not spans]
    sentences = [t[a:b] for t in biology for a, b in sentence_bounds(t) if 60 < b - a < 200]
    rng = random.Random(0)
    shares = {"window": [], "sentence-min": []}
    for _ in range(40):
        host, sentence = rng.choice(medical), rng.choice(sentences)
        cut = rng.choice(sentence_bounds(host)[1:])[0]
        ids, offsets = tokenizer.encode(host[:cut] + sentence + " " + host[cut:])
        inside = (offsets[:, 0] >= cut) & (offsets[:, 0] < cut + len(sentence))
        for name, clf in (("window", window), ("sentence-min", sentence_min)):
            shares[name].append(clf.score_tokens(ids)[inside] >= 0.5)
    window_share, min_share = (float(np.concatenate(shares[k]).mean()) for k in ("window", "sentence-min"))
    assert len(medical) > 10 and len(sentences) > 50
    assert window_share > 0.3 and min_share <= window_share / 2, (window_share, min_share)

    def f1(clf) -> float:
        valid = tokenize_labeled([(b.document, b.spans) for b in bench["valid"]], tokenizer)
        threshold, _ = best_threshold(np.concatenate(clf.score_batch([d.ids for d in valid])),
                                      np.concatenate([d.labels for d in valid]))
        docs = tokenize_labeled(test, tokenizer)
        return token_metrics(np.concatenate(clf.score_batch([d.ids for d in docs])),
                             np.concatenate([d.labels for d in docs]), threshold)["f1"]

    assert f1(sentence_min) >= metrics["bilm"]["f1"] - 0.03


def test_sentence_min_scoring_is_trained_saved_and_loaded(small_bench, tokenizer, tiny_budget, tmp_path):
    """`scoring = "sentence-min"`: the validation threshold is chosen on the scores the classifier will give, the
    setting is saved in config.json, and the loaded classifier scores the same way (never above window scoring)."""
    from tokfilter.classify.bilm import BiLMClassifier

    metrics = train_classifiers(["bilm"], small_bench["train"], small_bench["valid"], tokenizer, tmp_path,
                                budget={**tiny_budget, "scoring": "sentence-min"}, test_items=small_bench["test"],
                                log=lambda m: None)["bilm"]
    assert json.loads((tmp_path / "bilm" / "config.json").read_text())["scoring"] == "sentence-min"
    clf = load_classifier(tmp_path / "bilm")
    assert clf.scoring == "sentence-min"
    assert clf.flops_per_token == pytest.approx(1.5 * BiLMClassifier(clf.model, clf.tokenizer_hash).flops_per_token)
    docs = tokenize_labeled([(b.document, b.spans) for b in small_bench["test"][:6]], tokenizer)
    sentence_min = clf.score_batch([d.ids for d in docs])
    window = BiLMClassifier(clf.model, clf.tokenizer_hash).score_batch([d.ids for d in docs])
    assert all((s <= w).all() for s, w in zip(sentence_min, window, strict=True))
    assert any((s < w - 1e-3).any() for s, w in zip(sentence_min, window))
    again = evaluate_classifier(tmp_path / "bilm", small_bench["test"])
    assert again["f1"] == metrics["f1"] and again["flops_per_token"] == metrics["flops_per_token"]
