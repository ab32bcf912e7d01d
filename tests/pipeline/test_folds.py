"""The label/pretrain division of the train split (pipeline/folds.py): deterministic, near the requested fraction
on the demo corpus, nested in the fraction, counted from the ids actually used, and part of the steps' cache keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from tokfilter.pipeline.experiment import Experiment
from tokfilter.pipeline.folds import (
    METHOD,
    demo_label_part,
    divide,
    label_and_pretrain,
    label_part,
    out_of_fold,
)


@pytest.fixture(scope="module")
def demo_train_ids() -> list[str]:
    from tokfilter.pipeline.steps import corpus

    exp = Experiment()  # the demo corpus, every train document
    documents, _ = corpus.read_documents(exp)
    ids = [doc.id for doc in corpus.split_documents(exp, documents)["train"]]
    assert len(ids) > 1000
    return ids


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_near_the_requested_fraction_on_the_demo_train_split(demo_train_ids, fraction):
    share = sum(label_part(i, fraction) for i in demo_train_ids) / len(demo_train_ids)
    assert abs(share - fraction) < 0.03, share  # ~5,000 ids: the binomial sd is <= 0.007


def test_deterministic_across_processes_and_nested(demo_train_ids):
    ids = demo_train_ids[:300]
    here = "".join("1" if label_part(i, 0.5) else "0" for i in ids)
    code = ("import json, sys; from tokfilter.pipeline.folds import label_part; "
            "ids = json.load(sys.stdin); print(''.join('1' if label_part(i, 0.5) else '0' for i in ids))")
    for hash_seed in ("1", "2"):  # Python's own hash() is salted per process: the assignment must not use it
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        there = subprocess.run([sys.executable, "-c", code], input=json.dumps(ids), capture_output=True, text=True,
                               env=env, check=True).stdout.strip()
        assert there == here
    assert "0" in here and "1" in here
    smaller = {i for i in demo_train_ids if label_part(i, 0.3)}
    larger = {i for i in demo_train_ids if label_part(i, 0.5)}
    assert smaller < larger  # raising the fraction only moves documents from pretrain to label


def test_divide_is_a_partition():
    items = [{"id": f"doc-{n}"} for n in range(200)]
    label, pretrain = divide(items, 0.5, key=lambda item: item["id"])
    assert label and pretrain and len(label) + len(pretrain) == len(items)
    assert all(label_part(item["id"], 0.5) for item in label)
    assert not any(label_part(item["id"], 0.5) for item in pretrain)


def test_a_runs_label_part_is_the_classifier_steps_division(tmp_path):
    """Scripts that retrain on a finished run's label part (demo_label_part) take the documents the pipeline's
    classifier step took: the same host ids, whatever the passages."""
    from tokfilter.corpus.demo import load_demo
    from tokfilter.labels.benchmark import BenchmarkConfig, load_benchmark, make_benchmark, write_benchmark

    docs = [d for domain in ("forget", "retain", "general") for d in load_demo("train", domain)[:40]]
    config = BenchmarkConfig(seed=0)
    write_benchmark(make_benchmark(docs, config), tmp_path, config, ["demo-subset"])
    train = load_benchmark(tmp_path, "train")
    label, pretrain = label_and_pretrain(train, 0.5)
    assert label and pretrain and len(label) + len(pretrain) == len(train)
    assert [b.document.id for b in demo_label_part(tmp_path)] == [b.document.id for b in label]
    assert all(label_part(b.document.id, 0.5) for b in label)
    assert len(demo_label_part(tmp_path, 0.3)) < len(label)  # a smaller fraction: a subset


def test_out_of_fold_counts_shared_ids_and_passage_donors():
    label = [{"id": "a"}, {"id": "b", "passage": {"id": "f1", "start": 0, "end": 5}}]
    pretrain = [{"id": "c"}, {"id": "d", "passage": {"id": "f2", "start": 0, "end": 5}}]
    assert out_of_fold(label, pretrain, 0.5) == {"method": METHOD, "label_fraction": 0.5, "label_documents": 2,
                                                 "pretrain_documents": 2, "shared_documents": 0}
    assert out_of_fold(label, [*pretrain, {"id": "a"}], 0.5)["shared_documents"] == 1  # the same document
    assert out_of_fold(label, [{"id": "e", "passage": {"id": "f1"}}], 0.5)["shared_documents"] == 1  # same passage


def test_label_fraction_changes_the_shards_and_classifier_cache_keys(tmp_path):
    from tokfilter.pipeline.cache import Stages
    from tokfilter.pipeline.context import Context
    from tokfilter.pipeline.steps import classifier, shards

    def configs(fraction: float) -> tuple:
        exp = Experiment()
        exp.classifier = replace(exp.classifier, label_fraction=fraction)
        ctx = Context(exp, tmp_path, Stages(tmp_path, []))
        return shards.config(ctx), classifier.config(ctx)

    (shards_a, classifier_a), (shards_b, classifier_b) = configs(0.5), configs(0.6)
    assert shards_a != shards_b and classifier_a != classifier_b
