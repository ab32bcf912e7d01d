"""The natural-text dev set loads, its hand labels are well formed, its groups have the intended forget share, and
none of its documents comes from the embedded demo corpus (by id or by any shared 200-character window)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokfilter.classify.devset import GROUPS, groups, load_devset
from tokfilter.corpus.demo import load_demo

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def devset():
    return load_devset()


def test_loads_with_enough_documents_per_group(devset):
    documents, labels = devset
    assert len(documents) >= 40
    assert {d.id for d in documents} == set(labels)
    assert len({d.id for d in documents}) == len(documents)
    by_group = groups()
    assert set(by_group) == set(GROUPS)
    assert all(len(ids) >= 12 for ids in by_group.values())
    assert sorted(i for ids in by_group.values() for i in ids) == sorted(d.id for d in documents)


def test_spans_in_bounds_sorted_disjoint(devset):
    documents, labels = devset
    for document in documents:
        spans = labels[document.id]
        for start, end, score in spans:
            assert 0 <= start < end <= len(document.text) and score == 1.0
        for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
            assert end <= start, document.id


def test_forget_fraction_per_group(devset):
    documents, labels = devset
    group_of = {i: g for g, ids in groups().items() for i in ids}
    chars = dict.fromkeys(GROUPS, 0)
    forget = dict.fromkeys(GROUPS, 0)
    for document in documents:
        group = group_of[document.id]
        chars[group] += len(document.text)
        forget[group] += sum(end - start for start, end, _ in labels[document.id])
    fraction = {g: forget[g] / chars[g] for g in GROUPS}
    assert fraction["mostly_forget"] > 0.6
    assert 0.02 < fraction["mixed_few_forget"] < 0.4
    assert fraction["hard_negative"] < 0.05


def test_no_document_from_the_demo_corpus(devset, shared_window):
    documents, _ = devset
    demo = load_demo()
    demo_ids = {d.id for d in demo}
    for document in documents:
        assert document.id not in demo_ids
        assert document.id.split("#")[0] not in demo_ids
    assert shared_window(documents, demo) is None


def test_evaluate_on_devset_reports_every_group_with_keep_flagged(small_bench, tokenizer, tiny_budget, tmp_path,
                                                                  monkeypatch):
    """The figures the demo and scripts/classifier_steps.py read: per group, precision / recall / F1, the forget
    fraction and the share of keep tokens flagged, consistent with each other."""
    from tokfilter.classify.devset import evaluate_on_devset
    from tokfilter.classify.metrics import f1_at_share
    from tokfilter.classify.train import train_classifier

    train_classifier("bilm", small_bench["train"], small_bench["valid"], tokenizer, tmp_path / "bilm", tiny_budget,
                     seed=0, log=lambda message: None)
    result = evaluate_on_devset(tmp_path / "bilm")
    assert set(result) == {"all", *GROUPS}
    for group, m in result.items():
        assert {"precision", "recall", "f1", "keep_flagged", "forget_fraction", "documents"} <= set(m), group
        assert 0 <= m["keep_flagged"] <= 1
    mixed = result["mixed_few_forget"]
    if mixed["recall"] > 0:
        assert f1_at_share(mixed["recall"], mixed["keep_flagged"], mixed["forget_fraction"]) == pytest.approx(
            mixed["f1"], abs=0.01)

    # scripts/false_positives.py splits the same flagged keep tokens by cause: its counts are the metrics' own
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import false_positives

    split = false_positives.false_positives(tmp_path / "bilm", examples=3)["groups"]
    for group in GROUPS:
        row = split[group]
        assert sum(c["tokens"] for c in row["causes"].values()) == row["flagged"]
        assert row["keep_flagged"] == pytest.approx(result[group]["keep_flagged"], abs=1e-4)
        assert len(row["examples"]) <= 3 and all(e["cause"] in false_positives.CAUSES for e in row["examples"])


def test_false_positive_causes(monkeypatch):
    import numpy as np

    monkeypatch.syspath_prepend(str(SCRIPTS))
    from false_positives import cause

    gold = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    segments = [(0, 3), (3, 6), (6, 9), (9, 12)]
    assert [cause(gold, segments, k) for k in range(4)] == ["next to forget", "same sentence", "next to forget",
                                                              "isolated"]
