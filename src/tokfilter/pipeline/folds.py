"""The label/pretrain division of the train split: no pretraining token is scored by a classifier trained on it.

The benchmark's train split (the spliced documents, benchmark/train.jsonl.gz) is divided by document id into two
disjoint parts:

    label     the token classifier and its baselines train on these documents (classifier step)
    pretrain  the only documents written to shards/, annotated by that classifier and pretrained on (shards step)

so every score in `shards/*.scores.forget.npy` is out of sample, as it would be on new text; a classifier scoring
the documents it was trained on looks better than it is (the quick demo's biLM: AUROC 0.986 in sample, 0.965 on
test). `[classifier] label_fraction` is the label part's share.

A document's part is a pure function of its id: the first 8 bytes of sha256("label:" + id), read as a fraction of
2^64, below `label_fraction` -> label. It uses neither `seed` nor `[data] split_seed`, so a new training seed or a
new valid/test draw keeps the division, and raising the fraction only moves documents from pretrain to label (the
thresholds are nested). Spliced documents are assigned by their own (host) id; each forget donor lends its passage to
one host only (labels/benchmark.py), so a passage's text sits in exactly one part. `out_of_fold` counts the
overlap of the ids actually used, donors' ids included, rather than assuming it is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from tokfilter.corpus.normalize import unit_hash
from tokfilter.labels.benchmark import BenchmarkDoc, load_benchmark
from tokfilter.pipeline.experiment import ClassifierSection

T = TypeVar("T")
METHOD = "disjoint label/pretrain split of the train documents"


def label_part(doc_id: str, fraction: float) -> bool:
    """True when document `doc_id` of the train split belongs to the label part (the classifier trains on it)."""
    return unit_hash(f"label:{doc_id}") < fraction


def divide(items: Iterable[T], fraction: float, key: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """(label part, pretrain part) of `items`, each item's part decided by `label_part(key(item), fraction)`."""
    label: list[T] = []
    pretrain: list[T] = []
    for item in items:
        (label if label_part(key(item), fraction) else pretrain).append(item)
    return label, pretrain


def label_and_pretrain(train: Iterable[BenchmarkDoc], fraction: float) -> tuple[list[BenchmarkDoc], list[BenchmarkDoc]]:
    """(label part, pretrain part) of the benchmark's train split, by each (host) document's id."""
    return divide(train, fraction, key=lambda b: b.document.id)


def demo_label_part(benchmark: str | Path, fraction: float | None = None) -> list[BenchmarkDoc]:
    """The label part of a finished run's benchmark (benchmark/train.jsonl.gz): what its classifier trained on.
    `fraction` defaults to `[classifier] label_fraction`'s default, the shipped demos' value."""
    if fraction is None:
        fraction = ClassifierSection().label_fraction
    return label_and_pretrain(load_benchmark(benchmark, "train"), fraction)[0]


def source_ids(meta: dict) -> set[str]:
    """The ids of the source documents whose text a benchmark/shard document carries: its own and its passage's."""
    ids = {str(meta["id"])}
    passage = meta.get("passage")
    if isinstance(passage, dict) and "id" in passage:
        ids.add(str(passage["id"]))
    return ids


def out_of_fold(label_meta: Iterable[dict], pretrain_meta: Iterable[dict], fraction: float) -> dict:
    """results.json's `classifier.out_of_fold`: counts of the two parts and of the source documents they share.

    `label_meta`: metadata ({"id", "passage"?}) of the documents the classifier trained on; `pretrain_meta`: of the
    documents in shards/ (ShardSet.doc_meta). `shared_documents` is the number of source ids (own or passage donor)
    found in both; the pipeline requires it to be 0."""
    label_meta, pretrain_meta = list(label_meta), list(pretrain_meta)
    label_sources = set().union(*map(source_ids, label_meta)) if label_meta else set()
    pretrain_sources = set().union(*map(source_ids, pretrain_meta)) if pretrain_meta else set()
    return {"method": METHOD, "label_fraction": fraction, "label_documents": len(label_meta),
            "pretrain_documents": len(pretrain_meta), "shared_documents": len(label_sources & pretrain_sources)}
