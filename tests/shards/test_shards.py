"""Shards: exact decode of every document, invariants, determinism across workers, resume, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tokfilter.cli import main
from tokfilter.corpus import read_corpus
from tokfilter.errors import UserError
from tokfilter.shards import ShardSet, verify, write_shards
from tokfilter.tokenizer import load_tokenizer

PUBMED = "corpora/pubmedqa_abstracts.jsonl.gz"


@pytest.fixture(scope="module")
def gpt2_spec(shared_data):
    return str(shared_data / "tokenizers" / "gpt2.tiktoken")


@pytest.fixture(scope="module")
def pubmed_shards(tmp_path_factory, shared_data, gpt2_spec):
    out = tmp_path_factory.mktemp("s") / "pubmed"
    assert main(["tokenize", str(shared_data / PUBMED), "--tokenizer", gpt2_spec, "--out", str(out),
                 "--shard-tokens", "100000", "--quiet"]) == 0
    return out


def test_tokenize_verify_and_decode_exactly(pubmed_shards, shared_data):
    assert main(["shards", "verify", str(pubmed_shards)]) == 0
    shards = ShardSet(pubmed_shards)
    assert shards.num_shards > 1 and shards.dtype == np.uint16
    tokenizer = shards.tokenizer()
    originals = list(read_corpus(str(shared_data / PUBMED)))
    decoded, ids = [], []
    for index in range(shards.num_shards):
        tokens = shards.tokens(index)
        for (start, end), meta in zip(shards.documents(index), shards.doc_meta(index)):
            decoded.append(tokenizer.decode(tokens[start:end]))
            ids.append(meta["id"])
    assert decoded == [d.text for d in originals]
    assert ids == [d.id for d in originals]


def test_token_id_zero_is_an_ordinary_token(tmp_path, gpt2_spec):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "z", "text": "! a ! b"}) + "\n")  # "!" is id 0 in GPT-2
    out = tmp_path / "out"
    assert main(["tokenize", str(corpus), "--tokenizer", gpt2_spec, "--out", str(out), "--quiet"]) == 0
    assert ShardSet(out).tokens(0).tolist()[:-1] == load_tokenizer(gpt2_spec).encode_ids("! a ! b")
    assert 0 in ShardSet(out).tokens(0).tolist()


def test_workers_give_identical_bytes(tmp_path, shared_data, gpt2_spec):
    source = str(shared_data / PUBMED)
    tokenizer = load_tokenizer(gpt2_spec)
    one = write_shards(read_corpus(source), tokenizer, tmp_path / "one", sources=[source], shard_tokens=50_000,
                       workers=1, progress=False)
    two = write_shards(read_corpus(source), tokenizer, tmp_path / "two", sources=[source], shard_tokens=50_000,
                       workers=2, progress=False)
    assert [s["sha256"] for s in one["shards"]] == [s["sha256"] for s in two["shards"]]


def test_resume_after_interruption_is_identical(tmp_path, shared_data, gpt2_spec):
    source = str(shared_data / PUBMED)
    tokenizer = load_tokenizer(gpt2_spec)
    reference = write_shards(read_corpus(source), tokenizer, tmp_path / "ref", sources=[source],
                             shard_tokens=40_000, progress=False)

    def interrupted(limit):
        for i, doc in enumerate(read_corpus(source)):
            if i == limit:
                raise KeyboardInterrupt
            yield doc

    with pytest.raises(KeyboardInterrupt):
        write_shards(interrupted(900), tokenizer, tmp_path / "res", sources=[source], shard_tokens=40_000,
                     progress=False)
    assert not (tmp_path / "res" / "manifest.json").exists()
    assert (tmp_path / "res" / ".tokenize-state.json").exists()
    resumed = write_shards(read_corpus(source), tokenizer, tmp_path / "res", sources=[source],
                           shard_tokens=40_000, progress=False)
    assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in reference["shards"]]


def _corrupt(shards_dir, tmp_path, how):
    target = tmp_path / "corrupt"
    shutil.copytree(shards_dir, target)
    how(target)
    return target


@pytest.mark.parametrize(
    "how, message",
    [
        (lambda d: (d / "00000.tokens.npy").write_bytes((d / "00000.tokens.npy").read_bytes()[:-10]),
         "00000.tokens.npy"),
        (lambda d: np.save(d / "00001.docs.npy", np.load(d / "00001.docs.npy")[::-1].copy()), "00001.docs.npy"),
        (lambda d: np.save(d / "00000.tokens.npy", np.load(d / "00000.tokens.npy").astype(np.int32)),
         "expected 1-D uint16"),
        (lambda d: (d / "00002.docs.npy").unlink(), "missing shard file"),
        (lambda d: (d / "manifest.json").write_text("{"), "corrupt manifest"),
        (lambda d: np.save(d / "00000.scores.forget.npy", np.zeros(3, np.float16)), "scores must be float16"),
    ],
)
def test_verify_names_the_first_violation(pubmed_shards, tmp_path, how, message, capsys):
    bad = _corrupt(pubmed_shards, tmp_path, how)
    with pytest.raises(UserError, match=message):
        verify(bad)
    assert main(["shards", "verify", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tokfilter: error:") and "\n" not in err


def test_tampered_tokens_fail_the_hash(pubmed_shards, tmp_path):
    def flip(d):
        tokens = np.load(d / "00000.tokens.npy")
        tokens[5] = (tokens[5] + 1) % 1000
        np.save(d / "00000.tokens.npy", tokens)

    with pytest.raises(UserError, match="sha256 differs"):
        verify(_corrupt(pubmed_shards, tmp_path, flip))


def test_other_tokenizer_is_refused(pubmed_shards, tmp_path, shared_data):
    from tokfilter.tokenizer import train_tokenizer

    other = train_tokenizer((d.text for d in read_corpus(str(shared_data / PUBMED))), 400, tmp_path / "o.json")
    with pytest.raises(UserError, match="differs from the manifest"):
        verify(pubmed_shards, tokenizer_spec=str(other.path))
    with pytest.raises(UserError, match="another tokenizer"):
        ShardSet(pubmed_shards, expect_tokenizer_hash=other.hash)
    swapped = _corrupt(pubmed_shards, tmp_path, lambda d: None)
    shutil.copyfile(other.path, swapped / "gpt2.tiktoken")
    with pytest.raises(UserError):
        verify(swapped)


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"id": "1", "text": "fine"}\n{"id": "2", "text": "x"\n', "c.jsonl:3002: malformed JSON"),
        (b'{"id": "1", "text": "\xc3\x28"}\n', "c.jsonl:3001: invalid UTF-8"),
        (b'{"id": "1", "txt": "x"}\n', "c.jsonl:3001: record has no 'text' field"),
        (None, "empty corpus"),
    ],
)
def test_bad_input_leaves_no_partial_output(tmp_path, gpt2_spec, content, message, capsys):
    corpus = tmp_path / "c.jsonl"
    good = b"".join(b'{"id": "g%d", "text": "some real words here"}\n' % i for i in range(3000))
    corpus.write_bytes(good + content if content else b'{"id": "1", "text": ""}\n\n')
    out = tmp_path / "out"
    code = main(["tokenize", str(corpus), "--tokenizer", gpt2_spec, "--out", str(out), "--shard-tokens", "500",
                 "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() or not list(out.glob("*.npy"))


def test_missing_tokenizer_and_not_parquet(tmp_path, capsys, gpt2_spec):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "text": "x"}\n')
    assert main(["tokenize", str(corpus), "--tokenizer", str(tmp_path / "nope.json"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "tokenizer file not found" in capsys.readouterr().err
    (tmp_path / "f.parquet").write_text("garbage")
    assert main(["tokenize", str(tmp_path / "f.parquet"), "--tokenizer", gpt2_spec, "--out",
                 str(tmp_path / "o")]) == 2
    assert "f.parquet: not a readable Parquet file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["tokenize", str(corpus), "--tokenizer", "tiktoken:nonexistent-enc", "--out",
                 str(tmp_path / "o")]) == 2
    assert "cannot load tiktoken encoding" in capsys.readouterr().err
