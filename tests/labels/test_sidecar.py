"""Label spans -> score sidecar on real shards: exact alignment with the char spans, missing labels refused."""

from __future__ import annotations

import numpy as np
import pytest

from tokfilter.corpus import Document
from tokfilter.corpus.demo import load_demo
from tokfilter.errors import UserError
from tokfilter.labels.sidecar import write_label_sidecar
from tokfilter.labels.spans import spans_to_token_scores
from tokfilter.shards import ShardSet, verify, write_shards
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec


def test_sidecar_matches_spans_on_real_documents(tmp_path):
    tokenizer = load_tokenizer(default_tokenizer_spec())
    docs = load_demo(split="valid")[:60]
    rng = np.random.default_rng(0)
    labels = {}
    for doc in docs:
        a, b = sorted(rng.choice(len(doc.text), 2, replace=False).tolist())
        labels[doc.id] = [(a, b + 1, 1.0)] if doc.domain != "general" else []
    write_shards(iter(docs), tokenizer, tmp_path / "s", shard_tokens=5000, progress=False)
    shards = ShardSet(tmp_path / "s")
    summary = write_label_sidecar(shards, labels, "truth", progress=False)
    assert summary["labelled_tokens"] > 0
    verify(tmp_path / "s")  # the sidecar passes every invariant (float16, lengths, [0, 1])
    by_id = {d.id: d for d in docs}
    for index in range(shards.num_shards):
        scores, tokens = shards.scores(index, "truth"), shards.tokens(index)
        ends = shards.doc_ends(index)
        assert np.all(scores[ends.astype(np.int64) - 1] == 0)  # eot tokens are never labelled
        for (start, end), meta in zip(shards.documents(index), shards.doc_meta(index)):
            doc = by_id[meta["id"]]
            ids, offsets = tokenizer.encode(doc.text)
            assert np.array_equal(ids, tokens[start:end])
            expected = spans_to_token_scores(labels[doc.id], offsets, len(doc.text))
            assert np.array_equal(scores[start:end].astype(np.float32), expected)


def test_document_without_labels_is_refused(tmp_path):
    tokenizer = load_tokenizer(default_tokenizer_spec())
    docs = [Document("a", "Fever and cough.", "forget"), Document("b", "Cells divide.", "retain")]
    write_shards(iter(docs), tokenizer, tmp_path / "s", progress=False)
    with pytest.raises(UserError, match="no labels for document 'b'"):
        write_label_sidecar(ShardSet(tmp_path / "s"), {"a": [(0, 5, 1.0)]}, "truth", progress=False)
    summary = write_label_sidecar(ShardSet(tmp_path / "s"), {"a": [(0, 5, 1.0)]}, "truth", missing="zero",
                                  progress=False)
    assert summary["unlabelled_documents"] == 1
