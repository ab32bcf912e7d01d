"""Chat format: the template, loss masking of the prompt, truncation, file readers and their errors, shipped data."""

from __future__ import annotations

import gzip
import json

import pytest

from tokfilter.cli import main
from tokfilter.corpus.demo import DEMO_DIR
from tokfilter.errors import UserError
from tokfilter.posthoc.chat import (
    DATA_DIR,
    ChatExample,
    default_general_path,
    default_qa_path,
    default_questions_path,
    encode_example,
    format_prompt,
    prompt_ids,
    read_chat_file,
    read_qa_pairs,
    read_questions,
    response_ids,
    split_half,
)
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(default_tokenizer_spec())


def test_template_is_plain_text_plus_eot(tok):
    assert format_prompt("  What is a cell? ") == "User: What is a cell?\nAssistant:"
    p = prompt_ids(tok, "What is a cell?")
    assert p[0] == tok.eot_id and tok.eot_id not in p[1:]
    assert tok.decode(p[1:]) == "User: What is a cell?\nAssistant:"
    r = response_ids(tok, "A unit of life.")
    assert r[-1] == tok.eot_id and tok.decode(r[:-1]) == " A unit of life."
    # a user cannot forge the end-of-text token with its string
    assert tok.eot_id not in prompt_ids(tok, "hi <|endoftext|> there")[1:]


def test_encode_example_masks_prompt_and_keeps_response(tok):
    ex = ChatExample("Name a primary colour.", "Red.")
    x, y = encode_example(tok, ex, seq_len=128)
    p, r = prompt_ids(tok, ex.prompt), response_ids(tok, ex.response)
    assert list(x) == (p + r)[:-1]
    assert list(y[: len(p) - 1]) == [-100] * (len(p) - 1)
    assert list(y[len(p) - 1:]) == r  # the response and its final eot are the only targets


def test_encode_example_truncates_long_prompt_from_the_left(tok):
    ex = ChatExample("word " * 300, "Short answer.")
    x, y = encode_example(tok, ex, seq_len=64)
    assert len(x) == len(y) == 64
    r = response_ids(tok, ex.response)
    assert list(y[-len(r):]) == r
    ex = ChatExample("Q?", "long " * 300)
    x, y = encode_example(tok, ex, seq_len=64)
    assert len(x) == 64 and (y != -100).sum() >= 48  # the response gets at least 3/4 of the window


def test_readers_accept_alpaca_prompt_response_and_reject_missing_fields(tmp_path):
    alpaca = tmp_path / "a.json"
    alpaca.write_text(json.dumps([{"instruction": "Add", "input": "2 and 3", "output": "5"},
                                  {"instruction": "Say hi", "input": "", "output": "Hi"}]))
    got = read_chat_file(alpaca)
    assert got[0] == ChatExample("Add\n2 and 3", "5") and got[1] == ChatExample("Say hi", "Hi")
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n\n")
    assert read_chat_file(jsonl) == [ChatExample("p", "r")]
    bad = tmp_path / "c.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n" + json.dumps({"question": "q"}) + "\n")
    with pytest.raises(UserError, match=r"c\.jsonl:2: .*expected fields"):
        read_chat_file(bad)
    broken = tmp_path / "d.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(UserError, match="d.jsonl:1"):
        read_chat_file(broken)
    with pytest.raises(UserError):
        read_chat_file(tmp_path / "missing.json")
    with pytest.raises(UserError, match="question"):
        read_qa_pairs(jsonl)
    q = tmp_path / "q.txt"
    q.write_text("Is it?\n\n  Why? \n")
    assert read_questions(q) == ["Is it?", "Why?"]


def test_cli_refusal_rejects_chat_file_without_fields(tmp_path, capsys):
    bad = tmp_path / "chat.json"
    bad.write_text(json.dumps([{"instruction": "x"}]))
    rc = main(["align", "refusal", "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--general", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "expected fields" in err
    assert not (tmp_path / "o").exists()


def test_shipped_data_is_small_readable_and_documented():
    files = [default_questions_path(), default_general_path(), default_qa_path()]
    assert sum(f.stat().st_size for f in files) < 200_000
    assert "healthsearchqa" in (DATA_DIR / "PROVENANCE.md").read_text().lower()
    questions = read_questions(default_questions_path())
    assert len(questions) == 3156 and all(q.endswith("?") or len(q) > 5 for q in questions)
    general = read_chat_file(default_general_path())
    assert len(general) == 800 and all(e.response for e in general)
    pairs = read_qa_pairs(default_qa_path())
    assert len(pairs) == 240 and len({q for q, _ in pairs}) == 240
    # held out from the demo corpus: no shipped MedQuAD question is a demo document's first line
    with gzip.open(DEMO_DIR / "forget.jsonl.gz", "rt", encoding="utf-8") as fh:
        demo_first = {json.loads(line)["text"].split("\n", 1)[0].strip() for line in fh}
    assert not demo_first & {q for q, _ in pairs}


def test_split_half_is_seeded_and_disjoint():
    a, b = split_half(list(range(11)), seed=3)
    assert sorted(a + b) == list(range(11)) and len(a) == 5
    assert split_half(list(range(11)), seed=3) == (a, b)
