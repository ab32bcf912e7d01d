"""`tokfilter eval loss`: shards with a label sidecar, raw corpora, and tokenizer mismatches."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tokfilter.atomic import save_npy
from tokfilter.cli import main

FORGET = ["The patient presented with fever and a cough; the physician prescribed antibiotics for pneumonia.",
          "Hypertension is treated with diuretics and beta blockers to lower the blood pressure."]
RETAIN = ["Mitochondria produce ATP through oxidative phosphorylation in eukaryotic cells.",
          "Gene expression in bacteria is regulated by operons such as the lac operon."]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    for name, texts in (("forget", FORGET), ("retain", RETAIN)):
        (d / f"{name}.jsonl").write_text("".join(json.dumps({"id": f"{name}{i}", "text": t}) + "\n"
                                                 for i, t in enumerate(texts * 5)), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def shards(corpus, tiny_tokenizer, tmp_path_factory):
    """Shards of the corpus with a `truth` sidecar: every token of the forget documents scores 1."""
    from tokfilter.corpus import read_corpus
    from tokfilter.shards import ShardSet, write_shards

    out = tmp_path_factory.mktemp("shards") / "s"
    write_shards(read_corpus([f"forget={corpus / 'forget.jsonl'}", f"retain={corpus / 'retain.jsonl'}"]),
                 tiny_tokenizer, out, progress=False)
    shard_set = ShardSet(out)
    for i in range(shard_set.num_shards):
        scores = np.zeros(len(shard_set.tokens(i)), dtype=np.float16)
        for (start, end), meta in zip(shard_set.documents(i), shard_set.doc_meta(i), strict=True):
            if meta["domain"] == "forget":
                scores[start:end] = 1.0
        save_npy(shard_set.score_path(i, "truth"), scores)
    return out


def test_loss_on_shards_with_labels(tiny_checkpoint, shards, capsys):
    rc = main(["eval", "loss", "--model", str(tiny_checkpoint), "--data", str(shards), "--labels", "truth",
               "--no-progress"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["input"] == "shards" and set(result["domains"]) == {"forget", "retain"}
    for entry in result["domains"].values():
        # an untrained model is close to uniform over its 512-token vocabulary: ~ln(512) nats per token
        assert entry["loss"] == pytest.approx(math.log(512), rel=0.05)
        assert entry["bpb"] > 0 and entry["own_loss"] > 0
        # forget documents are all forget tokens, retain documents none: own tokens = all non-eot tokens
        assert 0 < entry["own_tokens"] <= entry["tokens"]
        assert entry["tokens"] - entry["own_tokens"] <= 10  # only the eot targets are not own tokens


def test_loss_on_raw_corpus(tiny_checkpoint, corpus, capsys):
    rc = main(["eval", "loss", "--model", str(tiny_checkpoint), "--data", f"forget={corpus / 'forget.jsonl'}",
               f"retain={corpus / 'retain.jsonl'}", "--no-progress"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["input"] == "corpus" and set(result["domains"]) == {"forget", "retain"}
    assert "own_loss" not in result["domains"]["forget"]


def test_loss_errors_exit_2(tiny_checkpoint, corpus, shards, tmp_path, capsys):
    from tokfilter.corpus import read_corpus
    from tokfilter.shards import write_shards
    from tokfilter.tokenizer import train_tokenizer

    other = train_tokenizer(FORGET * 10, 300, tmp_path / "other.json")
    write_shards(read_corpus([str(corpus / "forget.jsonl")]), other, tmp_path / "other_shards", progress=False)
    cases = [
        (["--data", str(tmp_path / "other_shards")], "tokenizer"),
        (["--data", str(shards), "--labels", "nope"], "no 'nope'"),
        (["--data", str(corpus / "forget.jsonl"), "--labels", "truth"], "--labels"),
    ]
    for extra, message in cases:
        assert main(["eval", "loss", "--model", str(tiny_checkpoint), "--no-progress", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
