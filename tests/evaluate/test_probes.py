"""Ontology probes: built from the real HPO/GO definitions, reproducible, well-formed; the shipped copy is valid."""

from __future__ import annotations

import json

from tokfilter.cli import main
from tokfilter.evaluate.mcq_data import MCQReader
from tokfilter.evaluate.probes import PROBE_DATA, probe_path


def _check_questions(path, subject):
    reader = MCQReader(path, "jsonl")
    questions = list(reader)
    assert reader.skipped_report()["total"] == 0
    for q in questions:
        assert q.subject == subject and len(q.choices) == 4
        assert len({c.lower() for c in q.choices}) == 4
        definition = q.question.split("? ", 1)[1].lower()
        assert all(c.lower() not in definition for c in q.choices)  # no copy-the-term shortcut
    answers = [q.answer for q in questions]
    assert len(set(answers)) == 4  # answer position varies
    return questions


def test_build_from_shared_data_is_seeded(shared_data, tmp_path, capsys):
    assert main(["eval", "probes", "build", "--out", str(tmp_path / "a"), "--shared-data", str(shared_data),
                 "-n", "50", "--seed", "3"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["files"]["forget"]["n"] == 50 and manifest["files"]["retain"]["n"] == 50
    forget = _check_questions(tmp_path / "a" / "probes_forget.jsonl", "medicine_hpo")
    retain = _check_questions(tmp_path / "a" / "probes_retain.jsonl", "biology_go")
    assert all(q.id.startswith("HP:") for q in forget) and all(q.id.startswith("GO:") for q in retain)
    main(["eval", "probes", "build", "--out", str(tmp_path / "b"), "--shared-data", str(shared_data),
          "-n", "50", "--seed", "3"])
    for name in ("probes_forget.jsonl", "probes_retain.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_demo_seen_and_unseen(shared_data, tmp_path, capsys):
    from tokfilter.corpus.demo import load_demo

    train_text = "\n".join(d.text.lower() for d in load_demo(split="train", domains=["forget", "retain"]))
    for demo, expected in (("seen", True), ("unseen", False)):
        assert main(["eval", "probes", "build", "--out", str(tmp_path / demo), "--shared-data", str(shared_data),
                     "-n", "20", "--demo", demo]) == 0
        capsys.readouterr()
        for name in ("probes_forget.jsonl", "probes_retain.jsonl"):
            for line in (tmp_path / demo / name).read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                definition = record["question"].split("? ", 1)[1].lower()
                term = record["choices"][record["answer"]].lower()
                assert (f"{term}. {definition}" in train_text) is expected
                assert (record["demo_split"] == "train") is expected


def test_shipped_probes_are_small_and_valid():
    total = sum(p.stat().st_size for p in PROBE_DATA.iterdir())
    assert total < 300_000
    assert len(_check_questions(probe_path("forget"), "medicine_hpo")) == 300
    assert len(_check_questions(probe_path("retain"), "biology_go")) == 300
    for kind in ("forget", "retain"):  # shipped: definitions from the demo corpus' train split
        records = [json.loads(line) for line in probe_path(kind).read_text(encoding="utf-8").splitlines()]
        assert {r["demo_split"] for r in records} == {"train"}


def test_missing_shared_data_exit_2(tmp_path, capsys):
    assert main(["eval", "probes", "build", "--out", str(tmp_path / "o"), "--shared-data", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
