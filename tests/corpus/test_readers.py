"""Corpus readers on real files: formats, domain tags, streaming, and bad input naming file and line."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tokfilter.corpus import read_corpus
from tokfilter.corpus.readers import ReadStats, parse_source
from tokfilter.errors import UserError


def _real_records(shared_data, n=50):
    with gzip.open(shared_data / "corpora" / "pubmedqa_abstracts.jsonl.gz", "rt") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def test_jsonl_plain_gz_zst_and_parquet_agree(tmp_path, shared_data):
    records = _real_records(shared_data)
    lines = "".join(json.dumps(r) + "\n" for r in records).encode()
    (tmp_path / "a.jsonl").write_bytes(lines)
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "a.parquet", row_group_size=7)
    expected = [(r["id"], r["text"]) for r in records]
    for name in ("a.jsonl", "a.jsonl.gz", "a.jsonl.zst", "a.parquet"):
        got = [(d.id, d.text) for d in read_corpus(str(tmp_path / name))]
        assert got == expected, name
    assert {d.domain for d in read_corpus(str(tmp_path / "a.jsonl"))} == {"medical"}


def test_domain_tag_and_glob(tmp_path, shared_data):
    records = _real_records(shared_data, 10)
    for i in range(2):
        (tmp_path / f"part{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[i * 5:(i + 1) * 5]))
    docs = list(read_corpus([f"forget={tmp_path}/part*.jsonl"]))
    assert len(docs) == 10 and {d.domain for d in docs} == {"forget"}
    assert parse_source("retain=x/y.jsonl").domain == "retain"


def test_text_field_and_plain_text(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"id": "1", "body": "hello"}\n')
    assert [d.text for d in read_corpus(str(tmp_path / "b.jsonl"), text_field="body")] == ["hello"]
    assert [d.id for d in read_corpus(str(tmp_path / "b.jsonl"), text_field="body", id_field="id")] == ["1"]
    with pytest.raises(UserError, match="has no 'nope' field"):
        list(read_corpus(str(tmp_path / "b.jsonl"), text_field="body", id_field="nope"))
    (tmp_path / "note.txt").write_text("a whole file\nis one document\n")
    (doc,) = read_corpus(str(tmp_path / "note.txt"))
    assert doc.id == "note.txt" and doc.text.startswith("a whole file")


def test_empty_documents_are_skipped_and_counted(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"id": "1", "text": ""}\n{"id": "2", "text": "x"}\n\n')
    stats = ReadStats()
    assert [d.id for d in read_corpus(str(tmp_path / "c.jsonl"), stats=stats)] == ["2"]
    assert stats.empty_skipped == 1 and stats.documents == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"id": "1", "text": "ok"}\n{"id": 2, "text": \n', "c.jsonl:2: malformed JSON"),
        (b'{"id": "1", "text": "ok"}\n{"id": "2", "text": "\xff\xfe"}\n', "c.jsonl:2: invalid UTF-8"),
        (b'{"id": "1", "content": "ok"}\n', "c.jsonl:1: record has no 'text' field"),
        (b'[1, 2]\n', "c.jsonl:1: expected a JSON object"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, content, message):
    (tmp_path / "c.jsonl").write_bytes(content)
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        list(read_corpus(str(tmp_path / "c.jsonl")))


def test_not_parquet_and_missing_file(tmp_path):
    (tmp_path / "fake.parquet").write_text("not parquet at all")
    with pytest.raises(UserError, match="not a readable Parquet file"):
        list(read_corpus(str(tmp_path / "fake.parquet")))
    with pytest.raises(UserError, match="no such file"):
        list(read_corpus(str(tmp_path / "missing.jsonl")))


def test_hf_dataset_saved_to_disk(tmp_path, shared_data):
    datasets = pytest.importorskip("datasets")
    records = _real_records(shared_data, 8)
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "ds"))
    docs = list(read_corpus(str(tmp_path / "ds")))
    assert [d.text for d in docs] == [r["text"] for r in records]
