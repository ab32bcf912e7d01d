"""`tokfilter eval mcq` and lm-evaluation-harness (through the `tokfilter` adapter) agree on MMLU questions.

The lm-eval side runs local copies of the installed `mmlu_<subject>_continuation` (cloze) and `mmlu_<subject>`
(letter) task configs, offline: each local YAML `include`s the installed subject config and only swaps the hub
dataset (cais/mmlu) for a local JSON file in its schema (question, subject, choices, answer), so the prompt is
lm-eval's own. Both paths must give the same accuracy, the same prediction per question, and the same per-option
log-likelihoods on the same tiny checkpoint and questions (30 MMLU val questions from 6 subjects).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tokfilter.evaluate.mcq_data import MCQReader
from tokfilter.evaluate.prompts import build_prompt

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval not installed (optional extra: pip install 'tokfilter[lmeval]')")

SUBJECTS = ("anatomy", "astronomy", "college_biology", "high_school_biology", "nutrition", "virology")
PER_SUBJECT = 5
TEMPLATE_DIRS = {"cloze": ("continuation", "_continuation"), "letter": ("default", "")}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_tokenizer) -> Path:
    """A random 2-layer GPT with a 512-token window, so that no MMLU prompt here is truncated."""
    from tokfilter.model import GPT, GPTConfig
    from tokfilter.train.checkpoint import save_checkpoint

    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=tiny_tokenizer.vocab_size, n_layer=2, n_head=2, d_model=32, seq_len=512))
    return save_checkpoint(tmp_path_factory.mktemp("agree") / "model", model, tokenizer=tiny_tokenizer)


@pytest.fixture()
def offline_hf(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _cais_rows(questions) -> str:
    return "".join(json.dumps({"question": q.question, "subject": q.subject, "choices": q.choices,
                               "answer": q.answer}) + "\n" for q in questions)


@pytest.fixture()
def mmlu_subset(shared_data, tmp_path):
    """The same questions as an MMLU CSV directory (for tokfilter) and as local lm-eval tasks (both scorings)."""
    import csv

    mmlu = shared_data / "mcq" / "mmlu"
    installed = Path(lm_eval.__file__).parent / "tasks" / "mmlu"
    csv_dir, tasks_dir, data_dir = tmp_path / "val", tmp_path / "tasks", tmp_path / "data"
    for d in (csv_dir, tasks_dir, data_dir):
        d.mkdir()
    questions, tasks = [], {"cloze": [], "letter": []}
    for subject in SUBJECTS:
        picked = list(MCQReader(mmlu / "val" / f"{subject}_val.csv", "mmlu", limit=PER_SUBJECT, seed=0))
        questions += picked
        with open(csv_dir / f"{subject}_val.csv", "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([q.question, *q.choices, "ABCD"[q.answer]] for q in picked)
        (data_dir / f"{subject}_test.jsonl").write_text(_cais_rows(picked), encoding="utf-8")
        (data_dir / f"{subject}_dev.jsonl").write_text(_cais_rows(MCQReader(mmlu / "dev" / f"{subject}_dev.csv",
                                                                            "mmlu")), encoding="utf-8")
        for scoring, (directory, suffix) in TEMPLATE_DIRS.items():
            name = f"local_mmlu_{subject}{suffix}"
            (tasks_dir / f"{name}.yaml").write_text(
                f"include: {installed / directory / f'mmlu_{subject}.yaml'}\n"
                f"task: {name}\ntag: []\ndataset_path: json\ndataset_name: null\n"
                f"dataset_kwargs:\n  data_files:\n    test: {data_dir / f'{subject}_test.jsonl'}\n"
                f"    dev: {data_dir / f'{subject}_dev.jsonl'}\n", encoding="utf-8")
            tasks[scoring].append(name)
    assert len(questions) == len(SUBJECTS) * PER_SUBJECT
    return csv_dir, tasks_dir, tasks, questions


def _micro_acc(results: dict, n: dict, tasks: list[str]) -> tuple[float, int]:
    total = sum(n[t]["effective"] for t in tasks)
    return sum(results[t]["acc,none"] * n[t]["effective"] for t in tasks) / total, total


@pytest.mark.parametrize("scoring", ["cloze", "letter"])
def test_tokfilter_and_lm_eval_give_the_same_accuracy(checkpoint, mmlu_subset, offline_hf, scoring, capsys):
    from tokfilter.cli import main
    from tokfilter.evaluate.lmeval import run_lmeval

    csv_dir, tasks_dir, tasks, questions = mmlu_subset
    assert main(["eval", "mcq", "--model", str(checkpoint), "--data", str(csv_dir), "--format", "mmlu",
                 "--scoring", scoring, "--device", "cpu", "--no-progress"]) == 0
    ours = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    theirs = run_lmeval(str(checkpoint), tasks[scoring], include_path=str(tasks_dir), device="cpu")
    acc, n = _micro_acc(theirs["results"], theirs["n"], tasks[scoring])
    print(f"{scoring}: tokfilter eval mcq accuracy {ours['accuracy']} (n={ours['n']}); "
          f"lm-eval acc {acc:.6f} (n={n})")
    assert ours["n"] == n == len(questions)
    assert ours["accuracy"] == pytest.approx(acc, abs=1e-6)
    for subject in SUBJECTS:
        task = f"local_mmlu_{subject}{TEMPLATE_DIRS[scoring][1]}"
        assert ours["per_subject"][subject]["accuracy"] == pytest.approx(theirs["results"][task]["acc,none"])
    if scoring == "cloze":  # lm-eval's acc_norm is tokfilter's accuracy_per_char
        norm = sum(theirs["results"][t]["acc_norm,none"] * theirs["n"][t]["effective"] for t in tasks[scoring]) / n
        assert ours["accuracy_per_char"] == pytest.approx(norm, abs=1e-6)


def test_per_option_loglikelihoods_agree(checkpoint, mmlu_subset, offline_hf):
    """Every request lm-eval builds equals tokfilter's prompt, and both score it alike, question by question."""
    from lm_eval.tasks import TaskManager

    from tokfilter.evaluate.lmeval import TokfilterLM

    _, tasks_dir, tasks, questions = mmlu_subset
    lm = TokfilterLM(pretrained=str(checkpoint), device="cpu")
    out = lm_eval.simple_evaluate(model=lm, tasks=tasks["cloze"] + tasks["letter"], log_samples=True,
                                  task_manager=TaskManager(include_path=str(tasks_dir), include_defaults=False))
    by_subject = {s: [q for q in questions if q.subject == s] for s in SUBJECTS}
    worst = 0.0
    for scoring, (_, suffix) in TEMPLATE_DIRS.items():
        for subject in SUBJECTS:
            samples = sorted(out["samples"][f"local_mmlu_{subject}{suffix}"], key=lambda s: s["doc_id"])
            assert len(samples) == PER_SUBJECT
            for q, sample in zip(by_subject[subject], samples, strict=True):
                context, continuations = build_prompt(q, "mmlu", scoring)
                assert [tuple(a) for a in sample["arguments"]] == [(context, c) for c in continuations]
                ctx = [lm.tok.eot_id] + list(lm.tok.encode_ids(context))
                assert len(ctx) + 8 < lm.model.config.seq_len  # no truncation anywhere
                ours = [lp for lp, _ in lm.scorer.loglikelihoods([(ctx, lm.tok.encode_ids(c))
                                                                  for c in continuations])]
                theirs = [float(r[0]) for r in sample["filtered_resps"]]
                worst = max(worst, max(abs(a - b) for a, b in zip(ours, theirs, strict=True)))
                assert max(range(4), key=ours.__getitem__) == max(range(4), key=theirs.__getitem__)
    print(f"max |per-option log-likelihood difference| = {worst:.2e}")
    assert worst < 1e-4
