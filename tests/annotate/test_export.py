"""Exports: each format round-trips, with -100 / loss-off exactly where the filtering rules say."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
import torch

from tokfilter.annotate import annotate
from tokfilter.annotate.export import FilteredTokenDataset, export
from tokfilter.cli import main
from tokfilter.shards import ShardSet
from tokfilter.testing import LOADER

THRESHOLD = 0.5


@pytest.fixture(scope="module")
def scored(tmp_path_factory, source_shards, classifier_dir) -> ShardSet:
    target = tmp_path_factory.mktemp("scored") / "shards"
    shutil.copytree(source_shards, target)
    annotate(classifier_dir, target, loader=LOADER, progress=False)
    return ShardSet(target)


def expected_documents(shards: ShardSet, mode: str, doc_threshold: float = 0.5):
    """(ids, forget flags) per kept document, computed here from the raw arrays, independently of export.py."""
    out = []
    for s in range(shards.num_shards):
        tokens = np.asarray(shards.tokens(s)).astype(np.int64)
        scores = np.asarray(shards.scores(s, "forget")).astype(np.float32)
        ends = np.asarray(shards.doc_ends(s)).astype(np.int64)
        for a, b in zip(np.concatenate([[0], ends[:-1]]), ends):
            ids, sc = tokens[a:b], scores[a:b]
            if mode == "document":
                if sc.mean() >= doc_threshold:
                    continue
                out.append((ids, np.zeros(len(ids), dtype=bool)))
            else:
                out.append((ids, (sc >= THRESHOLD) & (ids != shards.eot_id)))
    return out


@pytest.mark.parametrize("mode", ["mask", "remove", "document"])
def test_hf_export_round_trips(scored, tmp_path, mode):
    import datasets

    out = tmp_path / f"hf-{mode}"
    summary = export("hf", scored.dir, out, threshold=THRESHOLD, mode=mode)
    dataset = datasets.load_from_disk(str(out))
    expected = expected_documents(scored, mode)
    assert len(dataset) == len(expected) == summary["documents"]
    if mode == "document":
        assert 0 < len(dataset) < scored.num_documents
    masked = 0
    for row, (ids, forget) in zip(dataset, expected):
        labels, input_ids = np.array(row["labels"]), np.array(row["input_ids"])
        assert np.array_equal(labels == -100, forget)
        assert np.array_equal(labels[~forget], ids[~forget])
        hidden = np.where(forget, scored.hidden_id, ids) if mode == "remove" else ids
        assert np.array_equal(input_ids, hidden)
        masked += int(forget.sum())
    assert summary["masked"] == masked and (masked > 0) == (mode != "document")


@pytest.mark.parametrize("mode", ["mask", "remove", "document"])
def test_datatrove_export_round_trips(scored, tmp_path, mode):
    out = tmp_path / "dt"
    export("datatrove", scored.dir, out, threshold=THRESHOLD, mode=mode)
    expected = expected_documents(scored, mode)
    ids = np.concatenate([np.fromfile(p, dtype="<u2") for p in sorted(out.glob("*.ds"))])
    loss = np.concatenate([np.fromfile(p, dtype=np.uint8) for p in sorted(out.glob("*.ds.loss"))])
    ends = [np.fromfile(p, dtype="<u8") for p in sorted(out.glob("*.ds.index"))]
    want_ids = np.concatenate([np.where(f, scored.hidden_id, i) if mode == "remove" else i for i, f in expected])
    want_loss = np.concatenate([~f for _, f in expected]).astype(np.uint8)
    assert np.array_equal(ids, want_ids) and np.array_equal(loss, want_loss)
    assert sum(len(e) for e in ends) == len(expected)
    assert all(np.all(np.diff(e.astype(np.int64)) > 0) for e in ends)


def test_dolma_export_spans_cover_exactly_the_forget_tokens(scored, tmp_path):
    out = tmp_path / "dolma"
    export("dolma", scored.dir, out, threshold=THRESHOLD, mode="mask")
    tokenizer = scored.tokenizer()
    docs = [json.loads(x) for p in sorted((out / "documents").glob("*.jsonl.gz")) for x in gzip.open(p, "rt")]
    attrs = [json.loads(x) for p in sorted((out / "attributes" / "forget").glob("*.jsonl.gz"))
             for x in gzip.open(p, "rt")]
    expected = expected_documents(scored, "mask")
    assert len(docs) == len(attrs) == len(expected)
    checked = 0
    for doc, attr, (ids, forget) in zip(docs, attrs, expected):
        assert doc["id"] == attr["id"]
        text = doc["text"]
        assert text == tokenizer.decode(ids[:-1].tolist())
        spans = attr["attributes"]["tokfilter__forget__mask"]
        covered = np.zeros(len(text), dtype=bool)
        for start, end, score in spans:
            assert 0 <= start < end <= len(text) and score >= THRESHOLD
            covered[start:end] = True
        _, offsets = tokenizer.encode(text)
        for (a, b), flag in zip(offsets.tolist(), forget[:-1].tolist()):
            if b > a and flag:
                assert covered[a:b].all()
            elif b > a and not covered[a:b].any():
                checked += 1
    assert checked > 0


@pytest.mark.parametrize("mode", ["mask", "remove"])
def test_torch_dataset_masks_on_the_target_token(scored, mode):
    seq_len = 64
    dataset = FilteredTokenDataset(scored.dir, threshold=THRESHOLD, mode=mode, seq_len=seq_len)
    tokens = np.asarray(scored.tokens(0)).astype(np.int64)
    scores = np.asarray(scored.scores(0, "forget")).astype(np.float32)
    forget = (scores >= THRESHOLD) & (tokens != scored.eot_id)
    assert len(dataset) >= (len(tokens) - 1) // seq_len
    for i in range(3):
        x, y = dataset[i]
        a = i * seq_len
        assert x.dtype == torch.int64 and x.shape == y.shape == (seq_len,)
        assert np.array_equal(y.numpy() == -100, forget[a + 1:a + seq_len + 1])
        want_x = np.where(forget[a:a + seq_len], scored.hidden_id, tokens[a:a + seq_len]) if mode == "remove" \
            else tokens[a:a + seq_len]
        assert np.array_equal(x.numpy(), want_x)
        keep = y.numpy() != -100
        assert np.array_equal(y.numpy()[keep], tokens[a + 1:a + seq_len + 1][keep])


@pytest.mark.slow  # importing transformers alone takes ~15 s on the shared cores
def test_torch_dataset_feeds_a_hugging_face_causal_lm(scored):
    transformers = pytest.importorskip("transformers")
    dataset = FilteredTokenDataset(scored.dir, threshold=THRESHOLD, mode="remove", seq_len=32, hf=True)
    config = transformers.GPT2Config(vocab_size=scored.vocab_size, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    assert (batch["labels"] == -100).any()
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_export_bad_input(scored, tmp_path, capsys):
    out = tmp_path / "exists"
    out.mkdir()
    assert main(["export", "hf", "--shards", str(scored.dir), "--out", str(out)]) == 2
    assert main(["export", "dolma", "--shards", str(scored.dir), "--name", "nothere", "--out",
                 str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("tokfilter: error:") for line in err)
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".tmp-*"))


def test_default_threshold_comes_from_the_classifier(scored, tmp_path, capsys):
    from tokfilter.annotate.score import default_threshold, marker_path

    assert default_threshold(scored.dir, "forget") == 0.5  # the stand-in recommends none
    copy = tmp_path / "copy"
    shutil.copytree(scored.dir, copy)
    for s in range(scored.num_shards):
        path = marker_path(copy, s, "forget")
        path.write_text(json.dumps({**json.loads(path.read_text()), "classifier_threshold": 0.3}))
    assert default_threshold(copy, "forget") == 0.3
    assert main(["export", "datatrove", "--shards", str(copy), "--out", str(tmp_path / "dt"), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["threshold"] == 0.3
