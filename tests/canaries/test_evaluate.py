"""Evaluation: Wilson intervals, breakdowns, and scoring a real checkpoint with the project's cloze scorer."""

from __future__ import annotations

import pytest

from tokfilter.canaries import CanarySettings, make_facts, make_questions
from tokfilter.canaries.evaluate import (
    canary_report,
    control_questions,
    evaluate_canaries,
    evaluate_checkpoint,
    score_canaries,
    wilson,
)


def test_wilson_interval():
    lo, hi = wilson(45, 100)
    assert lo == pytest.approx(0.3561, abs=1e-3) and hi == pytest.approx(0.5476, abs=1e-3)
    assert wilson(0, 0) == [0.0, 1.0]
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35


def _rows():
    rows = []
    for domain in ("forget", "retain"):
        for i in range(8):
            rows.append({"domain": domain, "template": "seen" if i < 6 else "unseen", "hit": i % 2 == 0,
                         "hit_calibrated": True, "options": 4, "placement": "embedded" if i < 2 else "standalone",
                         "exposures": 4 if i < 4 else 16})
    return rows


def test_sentence_prompt_is_the_question_text(tiny_checkpoint):
    from tokfilter.canaries.evaluate import option_loglikelihoods
    from tokfilter.evaluate.loading import load_checkpoint, scorer_for

    model, tokenizer = load_checkpoint(tiny_checkpoint, device="cpu")
    q = make_questions(make_facts(CanarySettings(), 0))[0]
    got = option_loglikelihoods(model, tokenizer, [q])[0]
    ctx = [tokenizer.eot_id] + tokenizer.encode_ids(q["question"])
    want = [lp for lp, _ in scorer_for(model, tokenizer).loglikelihoods(
        [(ctx, tokenizer.encode_ids(" " + c)) for c in q["choices"]])]
    assert got == pytest.approx(want)
    with pytest.raises(ValueError):
        option_loglikelihoods(model, tokenizer, [q], prompt="letter")


def test_report_shape_and_breakdowns():
    report = canary_report(_rows())
    for domain in ("forget", "retain"):
        r = report[domain]
        assert r["n"] == 6 and r["accuracy"] == 0.5 and r["chance"] == 0.25 and r["accuracy_calibrated"] == 1.0
        assert len(r["ci"]) == 2 and r["ci"][0] < 0.5 < r["ci"][1]
        assert set(r["by_placement"]) == {"embedded", "standalone"} and r["by_placement"]["embedded"]["n"] == 2
        assert r["by_exposures"]["4"]["n"] == 4 and r["by_exposures"]["16"]["n"] == 2
        assert r["unseen"]["n"] == 2 and r["unseen"]["accuracy"] == 0.5


def test_control_questions_swap_in_unplanted_names():
    questions = make_questions(make_facts(CanarySettings(), 0))
    control = control_questions(questions)
    assert len(control) == len(questions)
    planted = {q["entity"] for q in questions}
    for c, q in zip(control, questions):
        assert c["entity"] not in planted and q["entity"] not in c["question"]
        assert c["question"] == q["question"].replace(q["entity"], c["entity"])
        assert c["choices"] == q["choices"] and c["template"] == "control-" + q["template"]
    assert len({c["entity"] for c in control}) == len(planted)


def test_scores_a_checkpoint(tiny_checkpoint, tmp_path):
    from tokfilter.canaries import write_questions
    from tokfilter.evaluate.loading import load_checkpoint, scorer_for
    from tokfilter.evaluate.mcq import score_questions
    from tokfilter.evaluate.mcq_data import MCQ

    questions = make_questions(make_facts(CanarySettings(facts_per_domain=8, exposures=[1], train_templates=2,
                                                         heldout_templates=1), 0))
    model, tokenizer = load_checkpoint(tiny_checkpoint, device="cpu")
    rows = score_canaries(model, tokenizer, questions)
    assert len(rows) == 2 * len(questions)
    # the mcq-prompt accuracy is exactly `tokfilter eval mcq`'s cloze scoring, question by question
    mcqs = [MCQ(q["question"], q["choices"], q["answer"], q["id"], q["id"]) for q in questions]
    tallies = score_questions(mcqs, scorer_for(model, tokenizer), tokenizer, progress=False)
    for row in rows[: len(questions)]:
        assert row["hit_mcq"] == bool(tallies[row["id"]].correct["accuracy"])
        assert isinstance(row["hit_calibrated"], bool) and isinstance(row["hit"], bool)
    result = evaluate_canaries(model, tokenizer, questions)
    for domain in ("forget", "retain"):
        r = result[domain]
        assert r["n"] == 16 and r["unseen"]["n"] == 8 and r["control"]["n"] == 16
        assert r["chance"] == 0.25 and 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["accuracy_calibrated"] <= 1.0
        assert 0.0 <= r["accuracy_mcq_prompt"] <= 1.0 and "accuracy_mcq_prompt" not in r["control"]
    path = tmp_path / "q.jsonl"
    write_questions(path, questions)
    assert evaluate_checkpoint(tiny_checkpoint, path, device="cpu") == result  # deterministic, same scorer


def test_calibration_cancels_option_priors(monkeypatch):
    """Options with a strong prior (first option +5 nats whatever the entity) and a small entity effect (+1 nat on
    the right answer, absent for the control name): plain scoring follows the prior, calibrated scoring the fact."""
    import tokfilter.canaries.evaluate as ev

    questions = make_questions(make_facts(CanarySettings(), 0))

    def fake(model, tokenizer, records, prompt="sentence", **_):
        out = []
        for q in records:
            ll = [5.0 if k == 0 else 0.0 for k in range(4)]
            if not q["template"].startswith("control"):
                ll[q["answer"]] += 1.0
            out.append(ll)
        return out

    monkeypatch.setattr(ev, "option_loglikelihoods", fake)
    result = ev.canary_report(ev.score_canaries(None, None, questions))
    for domain in ("forget", "retain"):
        r = result[domain]
        first = sum(q["answer"] == 0 for q in questions if q["domain"] == domain and q["template"] == "seen") / r["n"]
        assert r["accuracy_calibrated"] == 1.0 and r["accuracy"] == pytest.approx(first, abs=1e-6)
        assert r["control"]["accuracy"] == pytest.approx(first, abs=1e-6)
