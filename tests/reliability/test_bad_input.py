"""Bad input to every `tokfilter` command exits 2 with one line on stderr, no traceback and no partial output.

The cases are data (bad_input_cases.py); docs/reliability.md's table is generated from them
(scripts/reliability_table.py) and checked here against what each case prints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .bad_input_cases import CASES, normalize, run_case

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def doc_rows() -> dict[str, dict]:
    """Rows of the generated table in docs/reliability.md, by case id."""
    rows = {}
    if not DOC.is_file():
        return rows
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([\w-]+)` \| (.*) \| `(.*)` \| (-?\d+) \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = {"input": m.group(2), "command": m.group(3), "code": int(m.group(4)),
                                "message": m.group(5)}
    return rows


def _subcommands(parser) -> dict:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_case_ids_unique_and_every_command_covered():
    """Every command `tokfilter --help` lists, and every subcommand of those (eval mcq, label sae, ...), has a case."""
    from tokfilter.cli import build_parser

    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    covered = {tuple(c.argv[:2]) for c in CASES} | {(c.argv[0],) for c in CASES}
    missing = []
    for name, sub in _subcommands(build_parser()).items():
        leaves = _subcommands(sub)
        missing += [f"{name} {leaf}" for leaf in leaves if (name, leaf) not in covered]
        if not leaves and (name,) not in covered:
            missing.append(name)
    assert not missing, f"commands without a bad-input case: {missing}"


@pytest.mark.parametrize("case", [pytest.param(c, marks=[pytest.mark.shared_data] if c.shared_data else [], id=c.id)
                                  for c in CASES])
def test_bad_input_exits_2_cleanly(case, env, tmp_path):
    work = tmp_path / "w"
    code, stdout, stderr, trace = run_case(case, work, env)
    assert trace is None, f"uncaught exception (a traceback, not exit 2):\n{trace}"
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}, stderr: {stderr!r}"
    assert len(lines) == 1, f"stderr should be one line, got {lines!r}"
    assert re.match(r"^tokfilter( [\w-]+)*: error: ", lines[0]), lines[0]
    assert case.expect.lower() in lines[0].lower(), f"message does not name {case.expect!r}: {lines[0]}"
    out = case.output_path(work, env)
    if out is not None:
        assert not out.exists(), f"partial output left behind: {out}"
    assert not list(work.rglob(".tmp-*")), "temporary files left behind"
    row = doc_rows().get(case.id)
    assert row is not None, "case missing from docs/reliability.md: run scripts/reliability_table.py"
    message = normalize(lines[0].removeprefix("tokfilter: error: "), work, env)
    assert row == {"input": case.input, "command": case.command(), "code": code, "message": message}, \
        "docs/reliability.md is out of date: run scripts/reliability_table.py"


def test_doc_table_has_exactly_the_cases():
    assert set(doc_rows()) == {c.id for c in CASES}, "run scripts/reliability_table.py"


def test_huge_document_is_tokenized(env, tmp_path, capsys):
    """A single 10 MB document is tokenized whole (not truncated, no crash) and decodes back to itself."""
    from tokfilter.cli import main
    from tokfilter.shards import ShardSet, verify

    base = " ".join(json.loads(line)["text"] for line in Path(env["corpus"]).read_text().splitlines())
    text = (base * (10_000_000 // len(base) + 1))[:10_000_000]
    corpus = tmp_path / "huge.jsonl"
    corpus.write_text(json.dumps({"id": "huge", "text": text}) + "\n" + json.dumps({"id": "s", "text": "small"}))
    code = main(["tokenize", str(corpus), "--tokenizer", env["tokenizer"], "--out", str(tmp_path / "out"),
                 "--workers", "1", "--quiet"])
    assert code == 0, capsys.readouterr().err
    shards = ShardSet(tmp_path / "out")
    assert shards.num_documents == 2
    verify(tmp_path / "out")
    start, end = shards.documents(0)[0]  # eot excluded
    tokens = shards.tokens(0)[start:end]
    assert shards.tokenizer().decode(tokens) == text
