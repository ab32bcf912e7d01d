"""Two experiment options in one micro run (one run keeps the suite fast):

- `[canaries] enabled`: facts planted into the pretrain part only (never into the classifier's training documents),
  truth marks medical canary text as forget, every run answers the questions (`runs[].canaries`), aggregates and
  the report show them, and every attacked model answers them before and after the finetuning attack;
- `[classifier] labels = "sentence"`: the classifier learns from a weak teacher on a capped label part and
  results.json scores the teacher against the exact spans beside the student (weak-to-strong)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from tokfilter.cli import main

CANARIES = """
[canaries]
enabled = true
facts_per_domain = 8
exposures = [6, 12]
"""


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory, micro_experiment, shared_data):
    """The micro run; the sentence teacher reads the default medical lexicons of ../shared/data (skips without)."""
    root = tmp_path_factory.mktemp("canary")
    text = micro_experiment("canary").replace("[refusal]", "[refusal]\nenabled = false")
    text = text.replace("[classifier]\n", '[classifier]\nlabels = "sentence"\nlabel_docs = 60\n')
    (root / "canary.toml").write_text(text + CANARIES)
    out = root / "out"
    assert main(["run", str(root / "canary.toml"), "--out", str(out)]) == 0
    return out


def _entities(out) -> dict[str, str]:
    manifest = json.loads((out / "canaries" / "manifest.json").read_text())
    return {f["entity"]: f["domain"] for f in manifest["facts"]}


def test_planted_into_the_pretraining_shards_only(canary_run):
    from tokfilter.labels.benchmark import load_benchmark
    from tokfilter.pipeline.folds import label_part
    from tokfilter.shards import ShardSet

    out = canary_run
    entities = _entities(out)
    assert len(entities) == 16
    shards = ShardSet(out / "shards")
    meta = [m for i in range(shards.num_shards) for m in shards.doc_meta(i)]
    assert sum(str(m["id"]).startswith("canary-") for m in meta) > 0
    fraction = json.loads((out / "results.json").read_text())["config"]["classifier"]["label_fraction"]
    # the classifier's training documents (the label part of the benchmark's train split) carry no canary text
    label_docs = [b.document for b in load_benchmark(out / "benchmark", "train") if label_part(b.document.id, fraction)]
    assert label_docs
    label_text = " ".join(d.text for d in label_docs)
    assert not any(name in label_text for name in entities)
    with gzip.open(out / "benchmark" / "train.jsonl.gz", "rt") as fh:  # nor does the benchmark itself
        assert not any(name in fh.read() for name in entities)


def test_truth_marks_medical_canary_text_only(canary_run):
    from tokfilter.shards import ShardSet

    out = canary_run
    manifest = json.loads((out / "canaries" / "manifest.json").read_text())
    domain_of = {f["id"]: f["domain"] for f in manifest["facts"]}
    canary_domain = {d["id"]: domain_of[d["facts"][0]] for d in manifest["documents"]}
    shards = ShardSet(out / "shards")
    seen = {"forget": 0, "retain": 0}
    for index in range(shards.num_shards):
        truth = shards.scores(index, "truth").astype(np.float32)
        forget = shards.scores(index, "forget")  # the classifier scored the canary text like any other text
        assert np.isfinite(forget.astype(np.float32)).all()
        for meta, (start, end) in zip(shards.doc_meta(index), shards.documents(index), strict=True):
            domain = canary_domain.get(str(meta["id"]))
            if domain is None:
                continue
            seen[domain] += 1
            assert (truth[start:end] == (1.0 if domain == "forget" else 0.0)).all()
    assert seen["forget"] > 0 and seen["retain"] > 0


def test_every_run_answers_the_canaries(canary_run):
    out = canary_run
    results = json.loads((out / "results.json").read_text())
    questions = (out / "canaries" / "questions.jsonl").read_text().splitlines()
    assert questions
    for run in results["runs"]:
        for domain in ("forget", "retain"):
            entry = run["canaries"][domain]
            assert entry["n"] > 0 and entry["chance"] == pytest.approx(0.25)
            assert 0.0 <= entry["accuracy"] <= 1.0
            assert set(entry["by_exposures"]) == {"6", "12"}
    assert results["corpus"]["canaries"]["forget"]["facts"] == 8
    assert all("canaries" in entry for entry in results["aggregates"]["runs"])
    by_name = {run["name"]: run for run in results["runs"]}
    for entry in results["aggregates"]["runs"]:  # one seed: the aggregate is that run's own breakdown
        run = by_name[entry["runs"][0]]
        for domain in ("forget", "retain"):
            agg, own = entry["canaries"][domain], run["canaries"][domain]
            assert agg["accuracy"]["mean"] == pytest.approx(own["accuracy"])
            assert {k: v["mean"] for k, v in agg["by_placement"].items()} == \
                pytest.approx({k: v["accuracy"] for k, v in own["by_placement"].items()})
            assert set(agg["by_exposures"]) == {"6", "12"}
    assert (out / "figures" / "canaries.png").stat().st_size > 0
    assert "Canary facts" in (out / "report.html").read_text()


def test_disabled_by_default_keeps_the_shards_cache_key(tmp_path):
    from tokfilter.pipeline.cache import Stages
    from tokfilter.pipeline.context import Context
    from tokfilter.pipeline.experiment import Experiment
    from tokfilter.pipeline.steps import shards

    ctx = Context(Experiment(), tmp_path, Stages(tmp_path, []))
    assert "canaries" not in shards.config(ctx)  # the shards' cache key is what it was before canaries existed


def test_weak_teacher_is_scored_beside_the_student(canary_run):
    classifier = json.loads((canary_run / "results.json").read_text())["classifier"]
    teacher = classifier["teacher"]
    assert classifier["labels"] == "sentence" and teacher["labels"] == "sentence"
    assert teacher["documents"] == 60
    assert teacher["test"]["documents"] > 0 and 0.3 < teacher["test"]["f1"] <= 1.0  # sentence labels: ~0.85 on demo
    assert teacher["label_part"]["documents"] == 60


def test_attacked_models_answer_the_canaries_before_and_after(canary_run):
    robustness = json.loads((canary_run / "results.json").read_text())["robustness"]
    assert any(name.endswith("-rmu") for name in robustness)
    for name, entry in robustness.items():
        for when in ("before", "after"):
            measured = entry["canaries"][when]
            assert measured["forget"]["n"] > 0 and 0.0 <= measured["retain"]["accuracy"] <= 1.0, (name, when)
    page = (canary_run / "report.html").read_text()
    assert "canaries before attack" in page
