"""Opt-in corpus cleaning: ids for records without one, duplicate ids, deterministic train / valid / test splits."""

from __future__ import annotations

import collections
import gzip
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokfilter.corpus import (
    CorpusReport,
    Document,
    assign_splits,
    normalize_documents,
    prepare_corpus,
    read_corpus,
)
from tokfilter.corpus.normalize import split_key, split_of
from tokfilter.errors import UserError


def _doc(doc_id, text, split=None, domain="forget"):
    return Document(id=doc_id, text=text, domain=domain, meta={"split": split} if split else {})


def _medquad(shared_data):
    return shared_data / "corpora" / "medquad_answers.jsonl.gz"


def test_records_without_id_get_source_and_line(tmp_path):
    lines = ['{"id": "a", "text": "one"}', '{"text": "two"}', "", '{"id": null, "text": "four"}',
             '{"id": "", "text": "five"}']
    (tmp_path / "Notes.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    docs = list(read_corpus(f"forget={tmp_path}/Notes.jsonl.gz"))
    assert [d.id for d in docs] == ["a", "Notes:2", "Notes:4", "Notes:5"]
    assert [d.id_assigned for d in docs] == [False, True, True, True]
    pq.write_table(pa.Table.from_pylist([{"text": "x"}, {"text": "y"}]), tmp_path / "t.parquet")
    assert [d.id for d in read_corpus(str(tmp_path / "t.parquet"))] == ["t:1", "t:2"]
    _, report = normalize_documents(docs)
    assert report.ids_assigned == 3 and report.documents == 4


def test_duplicate_ids_dropped_when_identical_renamed_when_different():
    docs = [_doc("a", "first"), _doc("b#2", "taken"), _doc("a", "first"), _doc("a", "second"), _doc("b", "bee"),
            _doc("a", "third"), _doc("b", "other"), _doc("a", "second"), _doc("c", "first")]
    kept, report = normalize_documents(docs)
    assert [(d.id, d.text) for d in kept] == [("a", "first"), ("b#2", "taken"), ("a#2", "second"), ("b", "bee"),
                                              ("a#3", "third"), ("b#3", "other"), ("c", "first")]
    assert (report.documents_read, report.documents, report.duplicates_dropped, report.ids_renamed) == (9, 7, 2, 3)
    assert len({d.id for d in kept}) == len(kept)
    assert docs[3].id == "a"  # the input is not modified
    assert report.summary() == "9 documents read; 7 kept; 2 duplicates dropped; 3 ids renamed"


def test_split_assignment_is_deterministic_and_order_independent():
    docs = [_doc(f"doc-{i}", f"text {i}") for i in range(2000)]
    first, counts = assign_splits(docs, 0.1, 0.2, seed=3)
    again, counts_again = assign_splits(docs, 0.1, 0.2, seed=3)
    split = {d.id: d.meta["split"] for d in first}
    assert split == {d.id: d.meta["split"] for d in again} and counts == counts_again
    shuffled = docs[:]
    random.Random(0).shuffle(shuffled)
    assert {d.id: d.meta["split"] for d in assign_splits(shuffled, 0.1, 0.2, seed=3)[0]} == split
    # growing the corpus leaves every earlier record where it was
    grown = assign_splits(docs + [_doc(f"new-{i}", "x") for i in range(500)], 0.1, 0.2, seed=3)[0]
    assert {d.id: d.meta["split"] for d in grown if d.id in split} == split
    # pinned: a change to the split rule would move users' held-out documents into training
    assert counts == {"forget": {"train": 1384, "valid": 221, "test": 395}}
    other_seed = {d.id: d.meta["split"] for d in assign_splits(docs, 0.1, 0.2, seed=4)[0]}
    assert sum(other_seed[k] != split[k] for k in split) > 500
    assert all("split" not in d.meta for d in docs)  # copies, not the caller's documents


def test_existing_splits_are_kept():
    docs = [_doc(f"d{i}", "t", split=s) for i, s in enumerate(["valid", "test", "dev"] * 50)]
    out, counts = assign_splits(docs, 0.0, 0.9)
    assert [d.meta["split"] for d in out] == [d.meta["split"] for d in docs]
    assert all(a is b for a, b in zip(out, docs))
    assert counts == {"forget": {"train": 0, "valid": 50, "test": 50, "dev": 50}}


def test_split_key_uses_text_for_assigned_ids_and_groups_parts():
    assigned = Document(id="f:7", text="same words", id_assigned=True)
    moved = Document(id="f:9", text="same words", id_assigned=True)
    assert split_key(assigned) == split_key(moved)
    assert split_key(_doc("page#3", "x")) == split_key(_doc("page", "y")) == "id:page"
    assert split_of("id:page", 0.05, 0.05) == split_of("id:page", 0.05, 0.05)


@pytest.mark.parametrize("valid, test", [(-0.1, 0.1), (0.5, 0.5), (1.0, 0.0), (0.0, 1.2)])
def test_bad_fractions(valid, test):
    with pytest.raises(UserError):
        assign_splits([_doc("a", "b")], valid, test)


def test_medquad_ids_and_splits(shared_data):
    """MedQuAD repeats an id for each answer on one source page: 4,274 records renamed, none identical."""
    docs, report = prepare_corpus(str(_medquad(shared_data)))
    assert isinstance(report, CorpusReport)
    assert (report.documents_read, report.ids_assigned, report.duplicates_dropped, report.ids_renamed,
            report.documents, report.splits_assigned) == (16407, 0, 0, 4274, 16407, 16407)
    assert len({d.id for d in docs}) == len(docs)
    counts = report.split_counts["medical"]
    assert sum(counts.values()) == 16407
    assert abs(counts["valid"] / 16407 - 0.05) < 0.01 and abs(counts["test"] / 16407 - 0.05) < 0.01
    # the parts of one page (renamed id#k) share its split
    by_page = collections.defaultdict(set)
    for d in docs:
        by_page[d.id.split("#")[0]].add(d.meta["split"])
    assert all(len(s) == 1 for s in by_page.values())
    assert report.as_dict()["split_counts"] == report.split_counts


def test_plain_file_without_ids_splits_by_text_in_any_order(shared_data, tmp_path):
    with gzip.open(_medquad(shared_data), "rt") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(3000), fh)]
    texts = list(dict.fromkeys(texts))
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    shuffled = texts[:]
    random.Random(1).shuffle(shuffled)
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in shuffled))
    a, report = prepare_corpus(str(tmp_path / "a.jsonl"), valid_frac=0.1, test_frac=0.1)
    b, _ = prepare_corpus(str(tmp_path / "b.jsonl"), valid_frac=0.1, test_frac=0.1)
    assert report.ids_assigned == len(texts) and a[0].id == "a:1"
    assert {d.text: d.meta["split"] for d in a} == {d.text: d.meta["split"] for d in b}
    fractions = collections.Counter(d.meta["split"] for d in a)
    assert abs(fractions["valid"] / len(a) - 0.1) < 0.02 and abs(fractions["test"] / len(a) - 0.1) < 0.02


def test_demo_passes_through_unchanged():
    docs, report = prepare_corpus("demo")
    plain = list(read_corpus("demo"))
    assert [(d.id, d.meta["split"]) for d in docs] == [(d.id, d.meta["split"]) for d in plain]
    assert (report.ids_assigned, report.duplicates_dropped, report.ids_renamed, report.splits_assigned) == (0, 0, 0, 0)
