"""Questions: one generic-MCQ record per (fact, template), readable by the project's MCQ reader, with metadata."""

from __future__ import annotations

import json

import pytest

from tokfilter.canaries import CanarySettings, make_facts, make_questions, read_questions, write_questions
from tokfilter.canaries.questions import REQUIRED
from tokfilter.errors import UserError
from tokfilter.evaluate.mcq_data import MCQReader, detect_format


def test_one_record_per_fact_and_template(tmp_path):
    s = CanarySettings(facts_per_domain=16, exposures=[1, 2], train_templates=4, heldout_templates=3)
    facts = make_facts(s, 0)
    questions = make_questions(facts)
    assert len(questions) == len(facts) * 7
    assert len({q["id"] for q in questions}) == len(questions)
    for f in facts:
        mine = [q for q in questions if q["fact"] == f.id]
        assert sorted(q["template_index"] for q in mine if q["template"] == "seen") == f.seen
        assert sorted(q["template_index"] for q in mine if q["template"] == "unseen") == f.unseen
        assert all(q["entity"] == f.entity and f.entity in q["question"] for q in mine)
        assert all(q["domain"] == f.domain and q["placement"] == f.placement and q["exposures"] == f.exposures
                   and q["choices"][q["answer"]] == f.answer_text for q in mine)


def test_records_are_the_generic_mcq_jsonl(tmp_path):
    questions = make_questions(make_facts(CanarySettings(facts_per_domain=8, exposures=[1]), 0))
    path = tmp_path / "questions.jsonl"
    write_questions(path, questions)
    assert detect_format(path) == "jsonl"
    reader = MCQReader(path, "jsonl")
    read = list(reader)
    assert reader.skipped_report()["total"] == 0 and len(read) == len(questions)
    for mcq, q in zip(read, questions):
        assert (mcq.question, mcq.choices, mcq.answer, mcq.id) == (q["question"], q["choices"], q["answer"], q["id"])
        assert mcq.subject == f"canary_{q['domain']}"
    assert read_questions(path) == questions


def test_read_questions_rejects_other_files(tmp_path):
    with pytest.raises(UserError):
        read_questions(tmp_path / "missing.jsonl")
    other = tmp_path / "mcq.jsonl"
    other.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 0}) + "\n")
    with pytest.raises(UserError, match="not a canary question"):
        read_questions(other)
    assert set(REQUIRED) >= {"domain", "placement", "exposures", "template", "fact"}


@pytest.mark.parametrize("change, message", [
    ({"question": 5}, "missing question"),
    ({"answer": 9}, "answer outside options"),
    ({"answer": "2"}, "answer outside options"),
    ({"choices": "abcd"}, "missing options"),
    ({"exposures": "many"}, "'exposures' must be an integer >= 0"),
])
def test_read_questions_validates_records(tmp_path, change, message):
    question = make_questions(make_facts(CanarySettings(facts_per_domain=8, exposures=[1]), 0))[0]
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({**question, **change}) + "\n")
    with pytest.raises(UserError, match=message):
        read_questions(path)


def test_read_questions_rejects_invalid_utf8(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"question": "caf\xe9"}\n')
    with pytest.raises(UserError, match="invalid UTF-8"):
        read_questions(path)
