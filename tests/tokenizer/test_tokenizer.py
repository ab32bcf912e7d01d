"""Tokenizers: exact round trips and offsets on real text, special-token safety, training, spec errors."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from tokfilter.errors import UserError
from tokfilter.tokenizer import load_tokenizer, train_tokenizer

SAMPLE = "Fever, cough and dyspnoea — naïve T-cells 日本 <|endoftext|> end\n\n  tabs\tok"


def _texts(shared_data, name="pubmedqa_abstracts.jsonl.gz", n=200):
    with gzip.open(shared_data / "corpora" / name, "rt") as fh:
        return [json.loads(line)["text"] for _, line in zip(range(n), fh)]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    return train_tokenizer(_texts(shared_data) + _texts(shared_data, "brown.jsonl.gz", 50), 600, out)


@pytest.fixture(scope="module")
def gpt2(shared_data):
    return load_tokenizer(shared_data / "tokenizers" / "gpt2.tiktoken")


def test_trained_bpe_has_special_tokens(bpe):
    assert bpe.vocab_size == 600
    assert bpe.eot_id != bpe.hidden_id
    assert bpe.decode([bpe.eot_id]) == "<|endoftext|>"


@pytest.mark.parametrize("which", ["bpe", "gpt2"])
def test_round_trip_and_offsets(which, request, shared_data):
    tok = request.getfixturevalue(which)
    for text in [SAMPLE, *_texts(shared_data, "bbc_news.jsonl.gz", 20)]:
        ids, offsets = tok.encode(text)
        assert tok.decode(ids) == text
        assert ids.tolist() == tok.encode_ids(text)
        assert offsets.shape == (len(ids), 2)
        assert np.all(offsets[:, 0] <= offsets[:, 1]) and offsets[-1, 1] == len(text)
        assert np.all(np.diff(offsets[:, 0]) >= 0)
        covered = np.zeros(len(text), bool)
        for start, end in offsets:
            covered[start:end] = True
        assert covered.all()


@pytest.mark.parametrize("which", ["bpe", "gpt2"])
def test_special_strings_in_documents_are_plain_text(which, request):
    tok = request.getfixturevalue(which)
    ids = tok.encode_ids("a <|endoftext|> b <|hidden|> c")
    assert tok.eot_id not in ids and tok.hidden_id not in ids


def test_gpt2_ids_match_reference(gpt2):
    assert gpt2.encode_ids("Hello world") == [15496, 995]
    assert gpt2.eot_id == 50256 and gpt2.hidden_id == 50257


def test_hash_is_stable_and_distinguishes(bpe, gpt2, tmp_path):
    again = load_tokenizer(bpe.spec)
    assert again.hash == bpe.hash != gpt2.hash
    copy = tmp_path / "copy.json"
    copy.write_text(bpe.path.read_text())
    assert load_tokenizer(copy).hash == bpe.hash


def test_bad_specs(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not a Hugging Face tokenizer"):
        load_tokenizer(tmp_path / "bad.json")
    (tmp_path / "bad.tiktoken").write_text("zzz not base64 ranks\n")
    with pytest.raises(UserError, match="not a tiktoken ranks file"):
        load_tokenizer(tmp_path / "bad.tiktoken")
    with pytest.raises(UserError, match="cannot train a tokenizer on an empty corpus"):
        train_tokenizer([], 400, tmp_path / "t.json")
    with pytest.raises(UserError, match=r"--min-frequency must be >= 0, not -1"):
        train_tokenizer(["some text"], 400, tmp_path / "t.json", min_frequency=-1)
    assert not (tmp_path / "t.json").exists()
