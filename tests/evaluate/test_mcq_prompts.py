"""MCQ prompt templates: exact strings for one real question of each format, and equality with the prompts that the
installed lm-evaluation-harness task configs build for the same documents (offline, local data files)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tokfilter.evaluate.mcq import cloze_prompt, letter_prompt
from tokfilter.evaluate.mcq_data import MCQ, MMLU_CATEGORIES, MCQReader
from tokfilter.evaluate.probes import probe_path
from tokfilter.evaluate.prompts import build_prompt, mmlu_continuation_header, mmlu_header, template_for

ABCD = [" A", " B", " C", " D"]


def _first(path: Path, fmt: str) -> MCQ:
    return next(iter(MCQReader(path, fmt)))


def test_mmlu_prompts_are_pinned(shared_data):
    q = _first(shared_data / "mcq" / "mmlu" / "val" / "anatomy_val.csv", "mmlu")
    assert build_prompt(q, "mmlu", "letter") == (
        "The following are multiple choice questions (with answers) about anatomy.\n\n"
        "Which of the following terms describes the body's ability to maintain its normal state?\n"
        "A. Anabolism\nB. Catabolism\nC. Tolerance\nD. Homeostasis\nAnswer:", ABCD)
    assert build_prompt(q, "mmlu", "cloze") == (
        "The following are questions (with answers) about anatomy.\n\n"
        "Question: Which of the following terms describes the body's ability to maintain its normal state?\n"
        "Answer:", [" Anabolism", " Catabolism", " Tolerance", " Homeostasis"])
    assert mmlu_header("high_school_us_history") == \
        "The following are multiple choice questions (with answers) about high school us history.\n\n"


def test_medagents_prompts_are_pinned(shared_data):
    q = _first(shared_data / "mcq" / "medexqa_test.jsonl", "medagents")
    question = "Question: What is the band of electromagnetic waves used in a thermographic camera?\n"
    assert build_prompt(q, "medagents", "letter") == (
        question + "A. X-ray\nB. Microwave\nC. Ultraviolet\nD. Infrared\nAnswer:", ABCD)  # medqa_4options
    assert build_prompt(dataclasses.replace(q, subject="medmcqa_dev"), "medagents", "letter") == (
        question + "Choices:\nA. X-ray\nB. Microwave\nC. Ultraviolet\nD. Infrared\nAnswer:", ABCD)  # medmcqa
    assert build_prompt(q, "medagents", "cloze") == (
        question + "Answer:", [" X-ray", " Microwave", " Ultraviolet", " Infrared"])


def test_arc_prompts_are_pinned(shared_data):
    q = _first(shared_data / "mcq" / "arc" / "arc_easy_test.jsonl", "arc")
    question = "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\n"
    options = ["Sunlight is the source of energy for nearly all ecosystems.",
               "Most ecosystems are found on land instead of in water.",
               "Carbon dioxide is more available than other gases.", "The producers in all ecosystems are plants."]
    assert build_prompt(q, "arc", "cloze") == (question + "Answer:", [" " + o for o in options])
    assert build_prompt(q, "arc", "letter") == (
        question + "".join(f"{letter}. {o}\n" for letter, o in zip("ABCD", options, strict=True)) + "Answer:", ABCD)


def test_jsonl_prompts_are_pinned_and_unchanged():
    q = _first(probe_path("forget"), "jsonl")
    question = ("Question: Which term is defined as follows? Abnormal splayed configuration (spreading out) of the "
                "superior cerebellar peduncle.\n")
    options = ["Abnormal proportion of naive T cells", "Cerebellar vermis hypoplasia",
               "Abnormal renal calyx morphology", "Splayed superior cerebellar peduncle"]
    assert build_prompt(q, "jsonl", "cloze") == (question + "Answer:", [" " + o for o in options])
    assert build_prompt(q, "jsonl", "letter") == (
        question + "".join(f"{letter}. {o}\n" for letter, o in zip("ABCD", options, strict=True)) + "Answer:", ABCD)
    # the generic format strips question and options (the prompts of earlier versions, kept for the probe numbers)
    padded = MCQ("  Which one?  ", [" a ", "b"], 0, "s")
    assert cloze_prompt(padded) == build_prompt(padded, "jsonl", "cloze") == ("Question: Which one?\nAnswer:",
                                                                               [" a", " b"])
    assert letter_prompt(padded) == build_prompt(padded, "jsonl", "letter") == (
        "Question: Which one?\nA. a\nB. b\nAnswer:", [" A", " B"])


def test_template_choice():
    assert template_for("mmlu", "cloze") == "mmlu_continuation"
    assert template_for("mmlu", "letter") == "mmlu"
    assert template_for("medagents", "letter", "medqa_test") == "medqa_4options"
    assert template_for("medagents", "letter", "MedMCQA_dev") == "medmcqa"
    assert template_for("medagents", "cloze", "medmcqa") == "question_answer"
    assert template_for("arc", "cloze") == "arc"
    assert template_for("jsonl", "cloze") == "jsonl_cloze"


# ---- equality with lm-eval's own rendering -------------------------------------------------------------------------


def _lm_eval_root() -> Path:
    lm_eval = pytest.importorskip("lm_eval", reason="lm-eval not installed (optional extra)")
    return Path(lm_eval.__file__).parent / "tasks"


@pytest.fixture()
def offline_hf(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def lm_eval_requests(config: Path, docs: list[dict], tmp_path: Path) -> list[tuple[str, list[str]]]:
    """(context, continuations) that lm-eval builds, zero-shot, with the installed task `config` over local `docs`."""
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    data = tmp_path / f"{config.stem}.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    cfg = load_yaml(config)
    for key in ("fewshot_split", "fewshot_config", "tag", "training_split", "validation_split"):
        cfg.pop(key, None)
    cfg.update(dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": {"test": str(data)}},
               test_split="test")
    task = ConfigurableTask(config=cfg)
    out = []
    for i, doc in enumerate(task.test_docs()):
        ctx = task.fewshot_context(doc, 0)
        requests = task.construct_requests(doc=doc, ctx=ctx, metadata=(config.stem, i, 1))
        assert {r.args[0] for r in requests} == {ctx}
        out.append((ctx, [r.args[1] for r in requests]))
    return out


def test_mmlu_headers_match_every_lm_eval_subject_config():
    import yaml

    root = _lm_eval_root() / "mmlu"
    for subject in MMLU_CATEGORIES:
        default = yaml.safe_load((root / "default" / f"mmlu_{subject}.yaml").read_text())
        continuation = yaml.safe_load((root / "continuation" / f"mmlu_{subject}.yaml").read_text())
        assert default["description"] == mmlu_header(subject)
        assert continuation["description"] == mmlu_continuation_header(subject)


def test_mmlu_prompts_equal_lm_eval(shared_data, tmp_path, offline_hf):
    root = _lm_eval_root() / "mmlu"
    val = shared_data / "mcq" / "mmlu" / "val"
    for subject in ("anatomy", "high_school_us_history", "college_mathematics"):
        questions = list(MCQReader(val / f"{subject}_val.csv", "mmlu", limit=5, seed=1))
        docs = [{"question": q.question, "subject": subject, "choices": q.choices, "answer": q.answer}
                for q in questions]
        for scoring, directory in (("letter", "default"), ("cloze", "continuation")):
            expected = lm_eval_requests(root / directory / f"mmlu_{subject}.yaml", docs, tmp_path)
            assert [build_prompt(q, "mmlu", scoring) for q in questions] == expected


def _medagents(shared_data) -> list[MCQ]:
    return list(MCQReader(shared_data / "mcq" / "medexqa_test.jsonl", "medagents", limit=8, seed=0))


def test_medqa_and_medmcqa_letter_prompts_equal_lm_eval(shared_data, tmp_path, offline_hf):
    root = _lm_eval_root()
    questions = _medagents(shared_data)
    medqa = [{"sent1": q.question, **{f"ending{i}": c for i, c in enumerate(q.choices)}, "label": q.answer}
             for q in questions]
    assert [build_prompt(q, "medagents", "letter") for q in questions] == \
        lm_eval_requests(root / "medqa" / "medqa.yaml", medqa, tmp_path)
    medmcqa = [{"question": q.question, **{f"op{k}": c for k, c in zip("abcd", q.choices, strict=True)},
                "cop": q.answer} for q in questions]
    as_medmcqa = [dataclasses.replace(q, subject="medmcqa") for q in questions]
    assert [build_prompt(q, "medagents", "letter") for q in as_medmcqa] == \
        lm_eval_requests(root / "medmcqa" / "medmcqa.yaml", medmcqa, tmp_path)


@pytest.mark.parametrize("name", ["arc_easy", "arc_challenge"])
def test_arc_cloze_prompts_equal_lm_eval(shared_data, tmp_path, offline_hf, name):
    root = _lm_eval_root() / "arc"
    path = shared_data / "mcq" / "arc" / f"{name}_test.jsonl"
    questions = list(MCQReader(path, "arc", limit=8, seed=0))
    ids = {q.id for q in questions}
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["id"] in ids:  # the official record, in the HF allenai/ai2_arc schema
            stem = record["question"]
            docs.append({"id": record["id"], "question": stem["stem"], "answerKey": record["answerKey"],
                         "choices": {"text": [c["text"] for c in stem["choices"]],
                                     "label": [c["label"] for c in stem["choices"]]}})
    assert [build_prompt(q, "arc", "cloze") for q in questions] == \
        lm_eval_requests(root / f"{name}.yaml", docs, tmp_path)
