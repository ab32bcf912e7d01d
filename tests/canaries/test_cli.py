"""CLI: `canaries generate` writes documents + questions + manifest; `canaries eval` prints one JSON object."""

from __future__ import annotations

import argparse
import json

import pytest

from tokfilter.canaries.cli import register
from tokfilter.errors import UserError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    assert args.func.__name__.startswith("run_")
    return args.func(args)


def test_generate_standalone_only(tmp_path, capsys):
    out = tmp_path / "c"
    assert _run(["canaries", "generate", "--out", str(out), "--corpus", "none", "--facts-per-domain", "8",
                 "--exposures", "1", "--embedded-fraction-forget", "0", "--embedded-fraction-retain", "0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    docs = [json.loads(line) for line in (out / "documents.jsonl").read_text().splitlines()]
    questions = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["documents"] == len(docs) and summary["questions"] == len(questions) == 16 * 7
    assert all("domain" not in d and d["source"] == "canary" for d in docs)
    assert manifest["format"] == "tokfilter-canaries" and len(manifest["facts"]) == 16


def test_generate_into_demo_hosts_is_deterministic(tmp_path, capsys):
    argv = ["--corpus", "demo::train", "--docs-per-domain", "30", "--facts-per-domain", "8", "--exposures", "2"]
    _run(["canaries", "generate", "--out", str(tmp_path / "a"), *argv])
    _run(["canaries", "generate", "--out", str(tmp_path / "b"), *argv])
    capsys.readouterr()
    for name in ("documents.jsonl", "questions.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    docs = [json.loads(line) for line in (tmp_path / "a" / "documents.jsonl").read_text().splitlines()]
    assert sum(d.get("source") != "canary" for d in docs) == 90


def test_bad_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError):
        _run(["canaries", "generate", "--out", str(tmp_path), "--exposures", "a,b"])
    with pytest.raises(UserError):
        _run(["canaries", "generate", "--out", str(tmp_path), "--facts-per-domain", "0"])
    with pytest.raises(UserError, match="--docs-per-domain must be >= 0"):
        _run(["canaries", "generate", "--out", str(tmp_path / "c"), "--docs-per-domain", "-3"])
    assert not (tmp_path / "c").exists()
    with pytest.raises(UserError):
        _run(["canaries", "eval", "--model", str(tmp_path / "none"), "--questions", str(tmp_path / "q.jsonl")])


def test_eval_prints_one_json_object(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "c"
    _run(["canaries", "generate", "--out", str(out), "--corpus", "none", "--facts-per-domain", "8",
          "--exposures", "1", "--embedded-fraction-forget", "0", "--embedded-fraction-retain", "0",
          "--train-templates", "1", "--heldout-templates", "1"])
    capsys.readouterr()
    assert _run(["canaries", "eval", "--model", str(tiny_checkpoint), "--questions", str(out / "questions.jsonl"),
                 "--device", "cpu", "--out", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    result = json.loads(printed[0])
    assert result == json.loads((tmp_path / "r.json").read_text())
    assert result["forget"]["n"] == 8 and result["retain"]["unseen"]["n"] == 8 and result["forget"]["control"]["n"] == 8
