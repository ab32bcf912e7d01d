"""MCQ readers on the real standard files (exact counts) and on malformed input."""

from __future__ import annotations

import csv
import gzip
import json

import pytest

from tokfilter.errors import UserError
from tokfilter.evaluate.mcq_data import MMLU_CATEGORIES, MMLU_GROUPS, MCQReader, detect_format, mmlu_subject


def _csv_rows(directory):
    rows, subjects = 0, set()
    for path in directory.glob("*.csv"):
        with open(path, encoding="utf-8", newline="") as fh:
            rows += sum(1 for _ in csv.reader(fh))
        subjects.add(path.name.rsplit("_", 1)[0])
    return rows, subjects


@pytest.mark.parametrize("split", ["val", "dev"])
def test_mmlu_directory_counts_every_row_and_subject(shared_data, split):
    directory = shared_data / "mcq" / "mmlu" / split
    expected_rows, expected_subjects = _csv_rows(directory)
    reader = MCQReader(directory, "mmlu")
    questions = list(reader)
    assert len(questions) == expected_rows
    assert {q.subject for q in questions} == expected_subjects
    assert len(expected_subjects) == 57 and expected_subjects == set(MMLU_CATEGORIES)
    assert reader.skipped_report()["total"] == 0
    assert all(len(q.choices) == 4 and 0 <= q.answer < 4 for q in questions)


def test_mmlu_parent_directory_picks_a_split(shared_data):
    # ../mmlu holds dev/ and val/ (no test/): the reader takes val, the first present of test, val, dev
    parent = list(MCQReader(shared_data / "mcq" / "mmlu", "mmlu"))
    assert len(parent) == _csv_rows(shared_data / "mcq" / "mmlu" / "val")[0]
    dev = list(MCQReader(shared_data / "mcq" / "mmlu", "mmlu", split="dev"))
    assert len(dev) == _csv_rows(shared_data / "mcq" / "mmlu" / "dev")[0]
    assert detect_format(shared_data / "mcq" / "mmlu") == "mmlu"


def test_mmlu_answer_and_subject(shared_data):
    path = shared_data / "mcq" / "mmlu" / "val" / "anatomy_val.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        first = next(csv.reader(fh))
    q = next(iter(MCQReader(path, "mmlu")))
    assert q.subject == "anatomy" and q.question == first[0]
    assert q.choices[q.answer] == first[1 + "ABCD".index(first[5])]
    assert mmlu_subject(path.with_name("high_school_us_history_test.csv")) == "high_school_us_history"


def test_medagents_file(shared_data):
    path = shared_data / "mcq" / "medexqa_test.jsonl"
    reader = MCQReader(path, "medagents")
    questions = list(reader)
    assert len(questions) == 935
    assert reader.skipped_report()["total"] == 0
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert questions[0].choices[questions[0].answer] == first["options"][first["answer_idx"]]
    assert detect_format(path) == "medagents"


def test_arc_files(shared_data):
    numeric_seen = 0
    for path in sorted((shared_data / "mcq" / "arc").glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        reader = MCQReader(path, "arc")
        questions = list(reader)
        assert len(questions) == len(lines) and reader.skipped_report()["total"] == 0
        assert detect_format(path) == "arc"
        for q, line in zip(questions, lines, strict=True):
            record = json.loads(line)
            labels = [c["label"] for c in record["question"]["choices"]]
            assert q.choices[q.answer] == record["question"]["choices"][labels.index(record["answerKey"])]["text"]
            numeric_seen += labels[0] == "1"
    assert numeric_seen > 0
    assert detect_format(shared_data / "mcq" / "arc") == "arc"
    directory = list(MCQReader(shared_data / "mcq" / "arc", "arc"))
    assert len(directory) == sum(len(p.read_text(encoding="utf-8").splitlines())
                                 for p in (shared_data / "mcq" / "arc").glob("*.jsonl"))  # the 1-4 labelled questions were read, not skipped


def test_malformed_rows_are_counted_not_fatal(tmp_path):
    mmlu = tmp_path / "mmlu"
    mmlu.mkdir()
    (mmlu / "virology_test.csv").write_text(
        'Q1,a,b,c,d,A\nQ2,a,b,c\nQ3,a,b,c,d,F\n"Q4, with comma",a,"b\nmultiline",c,d,D\n', encoding="utf-8")
    reader = MCQReader(mmlu, "mmlu")
    questions = list(reader)
    assert [q.question for q in questions] == ["Q1", "Q4, with comma"]
    assert questions[1].choices[1] == "b\nmultiline" and questions[1].answer == 3
    assert reader.skipped == {"missing options": 1, "answer outside options": 1}

    med = tmp_path / "med.jsonl"
    rows = [
        {"question": "ok", "options": {"A": "x", "B": "y", "C": "z"}, "answer_idx": "C"},
        {"question": "no options", "answer_idx": "A"},
        {"question": "gap", "options": {"A": "x", "C": "z"}, "answer_idx": "A"},
        {"question": "bad answer", "options": {"A": "x", "B": "y"}, "answer_idx": "E"},
        {"question": "empty option", "options": {"A": "x", "B": ""}, "answer_idx": "A"},
        {"question": "numbers", "options": {"A": 5, "B": 7.5}, "answer_idx": "b"},
    ]
    med.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n", encoding="utf-8")
    reader = MCQReader(med, "medagents")
    assert [(q.answer, q.choices[q.answer]) for q in reader] == [(2, "z"), (1, "7.5")]
    assert reader.skipped == {"missing options": 3, "answer outside options": 1, "invalid JSON": 1}

    arc = tmp_path / "arc.jsonl"
    arc.write_text(json.dumps({"question": {"stem": "s", "choices": [{"text": "a", "label": "1"},
                                                                     {"text": "b", "label": "2"}]},
                               "answerKey": "3"}) + "\n", encoding="utf-8")
    reader = MCQReader(arc, "arc")
    with pytest.raises(StopIteration):
        next(iter(reader))
    assert reader.skipped == {"answer outside options": 1}


def test_generic_jsonl_index_letter_subject_and_gzip(tmp_path):
    path = tmp_path / "probe.jsonl.gz"
    rows = [{"question": "q1", "choices": ["a", "b", "c"], "answer": 2, "subject": "s1"},
            {"question": "q2", "choices": ["a", "b"], "answer": "b"},
            {"question": "q3", "choices": ["a", "b"], "answer": 5},
            {"question": "q4", "choices": ["a", "b"], "answer": True}]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    reader = MCQReader(path, "jsonl")
    questions = list(reader)
    assert [(q.answer, q.subject) for q in questions] == [(2, "s1"), (1, "probe")]
    assert reader.skipped == {"answer outside options": 2}
    assert detect_format(path) == "jsonl"
    assert len(list(MCQReader(path, "jsonl", limit=1))) == 1


def test_unknown_format_and_missing_path(tmp_path):
    with pytest.raises(UserError, match="unknown MCQ format"):
        MCQReader(tmp_path, "csv")
    with pytest.raises(UserError, match="no such file"):
        MCQReader(tmp_path / "nope.jsonl", "jsonl")
    (tmp_path / "x.jsonl").write_text('{"foo": 1}\n', encoding="utf-8")
    with pytest.raises(UserError, match="--format"):
        detect_format(tmp_path / "x.jsonl")


def test_groups_follow_the_paper():
    assert set(MMLU_GROUPS["mmlu_medicine"]) == {"college_medicine", "professional_medicine", "medical_genetics",
                                                 "clinical_knowledge", "anatomy", "virology"}
    assert set(MMLU_GROUPS["mmlu_biology"]) == {"college_biology", "high_school_biology"}
    assert set(MMLU_GROUPS["mmlu_stem"]) | set(MMLU_GROUPS["mmlu_non_stem"]) == set(MMLU_CATEGORIES)
    assert not set(MMLU_GROUPS["mmlu_stem"]) & set(MMLU_GROUPS["mmlu_non_stem"])
    assert len(MMLU_CATEGORIES) == 57
