"""The natural-text dev set loads, its hand labels are well formed, its groups have the intended forget share, and
none of its documents comes from the embedded demo corpus (by id or by any shared 200-character window)."""

from __future__ import annotations

import pytest

from tokfilter.classify.devset import GROUPS, groups, load_devset
from tokfilter.corpus.demo import load_demo


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
