"""`--limit N`: a seeded sample spread evenly over subjects (standard formats); the first N of the project's jsonl."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tokfilter.evaluate.mcq_data import MCQReader, stratified_sample
from tokfilter.evaluate.probes import probe_path


def test_stratified_sample_is_even_seeded_and_deterministic():
    subjects = ["a"] * 10 + ["b"] * 3 + ["c"] * 7 + ["d"] * 1
    picked = stratified_sample(subjects, 9, seed=0)
    assert picked == stratified_sample(subjects, 9, seed=0)
    assert len(picked) == len(set(picked)) == 9
    counts = Counter(subjects[i] for i in picked)
    assert counts["d"] == 1  # round-robin: 1 from each of a, b, c, d; then a, b, c; then 2 of a, b, c
    assert sorted(counts[s] for s in "abc") == [2, 3, 3]
    assert sorted(stratified_sample(subjects, 100, seed=3)) == list(range(len(subjects)))  # all, when too few
    assert stratified_sample(subjects, 0) == []
    seeds = {tuple(stratified_sample(subjects, 9, seed=s)) for s in range(5)}
    assert len(seeds) > 1
    # a subject's own order does not depend on the other subjects present
    only_a = stratified_sample(["a"] * 10, 10, seed=4)
    mixed = [i for i in stratified_sample(subjects, len(subjects), seed=4) if subjects[i] == "a"]
    assert mixed == only_a


def test_limit_300_on_mmlu_val_covers_the_subjects(shared_data):
    val = shared_data / "mcq" / "mmlu" / "val"
    first = list(MCQReader(val, "mmlu", limit=300))
    subjects = Counter(q.subject for q in first)
    assert len(first) == 300 and len(subjects) >= 50
    assert len(subjects) == 57 and max(subjects.values()) - min(subjects.values()) <= 1  # 300 = 57*5 + 15
    assert [q.id for q in MCQReader(val, "mmlu", limit=300)] == [q.id for q in first]  # deterministic
    other = [q.id for q in MCQReader(val, "mmlu", limit=300, seed=1)]
    assert other != [q.id for q in first] and len(other) == 300
    # the old behaviour, the first 300 in file order, saw only a handful of subjects
    everything = list(MCQReader(val, "mmlu"))
    assert len({q.subject for q in everything[:300]}) < 20


def test_limit_through_the_cli(shared_data, tiny_checkpoint, capsys):
    from tokfilter.cli import main

    rc = main(["eval", "mcq", "--model", str(tiny_checkpoint), "--data", str(shared_data / "mcq" / "mmlu" / "val"),
               "--format", "mmlu", "--limit", "300", "--seed", "0", "--device", "cpu", "--no-progress"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 300 and result["limit"] == 300 and result["seed"] == 0
    assert len(result["per_subject"]) >= 50
    assert result["prompt"] == "mmlu_continuation"


def test_limit_counts_skipped_rows_once(tmp_path):
    rows = [{"question": f"q{i}?", "options": {"A": "x", "B": "y"}, "answer_idx": "A", "subject": f"s{i % 3}"}
            for i in range(9)]
    lines = [json.dumps(r) for r in rows] + ["not json", json.dumps({"question": "q", "options": {}})]
    path = tmp_path / "med.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = MCQReader(path, "medagents", limit=4)
    questions = list(reader)
    assert len(questions) == 4 and len({q.subject for q in questions}) == 3
    assert reader.skipped_report()["total"] == 2


@pytest.mark.parametrize("kind", ["forget", "retain"])
def test_probe_sets_keep_their_first_n(kind):
    """The demo's probe numbers must not move: --limit / mcq_limit take the first N probe questions, any seed."""
    path = probe_path(kind)
    ids = [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert len({json.loads(line)["subject"] for line in path.read_text(encoding="utf-8").splitlines()}) == 1
    for limit in (8, 100, 300):
        for seed in (0, 7):
            assert [q.id for q in MCQReader(path, "jsonl", limit=limit, seed=seed)] == ids[:limit]


def test_generic_jsonl_keeps_file_order(tmp_path):
    plain = [{"question": f"q{i}?", "choices": ["x", "y"], "answer": 0} for i in range(10)]  # no subject field
    mixed = [{**r, "subject": f"s{i % 2}"} for i, r in enumerate(plain)]
    for rows in (plain, mixed):
        path = tmp_path / "set.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        assert [q.question for q in MCQReader(path, "jsonl", limit=4, seed=5)] == ["q0?", "q1?", "q2?", "q3?"]


def test_evaluate_sets_limit_takes_the_first_probe_questions(tiny_checkpoint, monkeypatch):
    """The pipeline's mcq_limit goes through evaluate_sets -> evaluate_mcq -> MCQReader (one function)."""
    from tokfilter.evaluate import mcq
    from tokfilter.evaluate.loading import load_checkpoint

    seen = []
    original = mcq.score_questions

    def spy(questions, *args, **kwargs):
        questions = list(questions)
        seen.append([q.id for q in questions])
        return original(questions, *args, **kwargs)

    monkeypatch.setattr(mcq, "score_questions", spy)
    model, tokenizer = load_checkpoint(tiny_checkpoint, device="cpu")
    out = mcq.evaluate_sets(model, tokenizer, ["probes_forget"], limit=8)
    ids = [json.loads(line)["id"] for line in probe_path("forget").read_text(encoding="utf-8").splitlines()[:8]]
    assert seen == [ids] and out["probes_forget"]["n"] == 8
