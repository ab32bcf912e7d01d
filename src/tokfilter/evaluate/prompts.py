"""MCQ prompt templates: one place for every prompt string `tokfilter eval mcq` builds.

A template turns one question (`mcq_data.MCQ`) into `(context, continuations)`: the text the model reads and the
text of each option whose log-likelihood is scored (every continuation starts with lm-eval's target delimiter, one
space). The templates for the standard formats reproduce lm-evaluation-harness (lm-eval) 0.4.13 task configs exactly
(`lm_eval/tasks/<task>/*.yaml`), zero-shot, as `lm_eval --tasks <task>` runs them by default (no task below sets
`num_fewshot`; published MMLU numbers are often 5-shot, `--num_fewshot 5`, and are not comparable with these):

    name               lm-eval task (config version)          context                                       continuations
    mmlu               mmlu_<subject> (default, metadata 1.0)  MMLU header, question.strip(), "A. {choice}"   " A" .. " D"
                                                               lines, "Answer:"
    mmlu_continuation  mmlu_<subject>_continuation (1.0)       continuation header, "Question: " +            " {choice}"
                                                               question.strip(), "\\nAnswer:"
    medqa_4options     medqa_4options (no metadata version)    "Question: {q}\\n", "A. {option}\\n" lines,     " A" .. " D"
                                                               "Answer:"
    medmcqa            medmcqa (no metadata version)           "Question: {q}\\nChoices:\\n", option lines,     " A" .. " D"
                                                               "Answer:"
    arc                arc_easy / arc_challenge (1.0)          "Question: {q}\\nAnswer:"                       " {choice}"
    question_answer    none (cloze form of medqa / medmcqa)    "Question: {q}\\nAnswer:"                       " {choice}"
    jsonl_cloze        none: tokfilter's own (probe sets)      "Question: {q.strip()}\\nAnswer:"               " {choice.strip()}"
    jsonl_letter       none: tokfilter's own                   "Question: {q.strip()}\\n", option lines with   " A" ..
                                                               stripped text, "Answer:"

The MMLU headers are the tasks' `description` fields, with the subject's underscores as spaces:
`The following are multiple choice questions (with answers) about {subject}.\\n\\n` for `mmlu` and
`The following are questions (with answers) about {subject}.\\n\\n` for `mmlu_continuation` (lm-eval's continuation
variant drops "multiple choice"). lm-eval strips the question of the MMLU templates only, and never an option; the
MedQA/MedMCQA/ARC templates use the text as stored. lm-eval's `medqa_4options` reads GBaker/MedQA-USMLE-4-options-hf
(`sent1`, `ending0..3`) and `medmcqa` reads openlifescienceai/medmcqa (`question`, `opa..opd`); the MedAgents JSONL
files hold the same questions and options as `question` and `options`. Questions with more or fewer options than
four get one line and one letter per option.

Which template a run uses (`template_for`): mmlu files -> `mmlu` (letter) / `mmlu_continuation` (cloze); medagents
files -> `medqa_4options` (letter), or `medmcqa` when the subject (the file name or the row's `subject`) contains
"medmcqa", and `question_answer` (cloze: lm-eval has no cloze MedQA/MedMCQA task, this is the form of its ARC and
MMLU-continuation tasks); arc files -> `arc` (cloze) and, for letter scoring, which lm-eval has no log-likelihood task
for, the `medqa_4options` layout; generic jsonl -> `jsonl_cloze` / `jsonl_letter`, the project's original prompts,
unchanged so probe numbers stay comparable across versions.
"""

from __future__ import annotations

from collections.abc import Callable

from tokfilter.errors import UserError
from tokfilter.evaluate.mcq_data import MCQ

LM_EVAL_VERSION = "0.4.13"  # the lm-evaluation-harness release these templates were checked against
TARGET_DELIMITER = " "  # lm-eval's default target_delimiter, between the context and each continuation

Prompt = tuple[str, list[str]]


def mmlu_subject_text(subject: str) -> str:
    """`high_school_us_history` -> `high school us history`, as lm-eval's `_generate_configs.py` writes it."""
    return " ".join(subject.split("_"))


def mmlu_header(subject: str) -> str:
    """The `description` of lm-eval's `mmlu_<subject>` tasks."""
    return f"The following are multiple choice questions (with answers) about {mmlu_subject_text(subject)}.\n\n"


def mmlu_continuation_header(subject: str) -> str:
    """The `description` of lm-eval's `mmlu_<subject>_continuation` tasks."""
    return f"The following are questions (with answers) about {mmlu_subject_text(subject)}.\n\n"


def _option_lines(q: MCQ) -> str:
    return "".join(f"{letter}. {choice}\n" for letter, choice in zip(q.letters, q.choices, strict=True))


def _letters(q: MCQ) -> list[str]:
    return [TARGET_DELIMITER + letter for letter in q.letters]


def _texts(q: MCQ) -> list[str]:
    return [TARGET_DELIMITER + choice for choice in q.choices]


def mmlu(q: MCQ) -> Prompt:
    """lm-eval `mmlu_<subject>`: `{{question.strip()}}\\nA. {{choices[0]}}\\n...D. {{choices[3]}}\\nAnswer:`."""
    return mmlu_header(q.subject) + q.question.strip() + "\n" + _option_lines(q) + "Answer:", _letters(q)


def mmlu_continuation(q: MCQ) -> Prompt:
    """lm-eval `mmlu_<subject>_continuation`: `Question: {{question.strip()}}\\nAnswer:`, choices `{{choices}}`."""
    return mmlu_continuation_header(q.subject) + f"Question: {q.question.strip()}\nAnswer:", _texts(q)


def medqa_4options(q: MCQ) -> Prompt:
    """lm-eval `medqa_4options` (`preprocess_medqa.doc_to_text`): `Question: {sent1}\\nA. {ending0}\\n...Answer:`."""
    return f"Question: {q.question}\n" + _option_lines(q) + "Answer:", _letters(q)


def medmcqa(q: MCQ) -> Prompt:
    """lm-eval `medmcqa` (`utils_medmcqa.doc_to_text`): `Question: {question}\\nChoices:\\nA. {opa}\\n...Answer:`."""
    return f"Question: {q.question}\nChoices:\n" + _option_lines(q) + "Answer:", _letters(q)


def question_answer(q: MCQ) -> Prompt:
    """lm-eval `arc_easy` / `arc_challenge`: `Question: {{question}}\\nAnswer:`, choices `{{choices.text}}`."""
    return f"Question: {q.question}\nAnswer:", _texts(q)


def jsonl_cloze(q: MCQ) -> Prompt:
    """tokfilter's own cloze prompt (generic JSONL, e.g. the ontology probes): stripped question and options."""
    return f"Question: {q.question.strip()}\nAnswer:", [" " + c.strip() for c in q.choices]


def jsonl_letter(q: MCQ) -> Prompt:
    """tokfilter's own letter prompt (generic JSONL): stripped question and option texts."""
    lines = [f"Question: {q.question.strip()}"]
    lines += [f"{letter}. {choice.strip()}" for letter, choice in zip(q.letters, q.choices, strict=True)]
    return "\n".join(lines) + "\nAnswer:", [" " + letter for letter in q.letters]


TEMPLATES: dict[str, Callable[[MCQ], Prompt]] = {
    "mmlu": mmlu,
    "mmlu_continuation": mmlu_continuation,
    "medqa_4options": medqa_4options,
    "medmcqa": medmcqa,
    "arc": question_answer,
    "question_answer": question_answer,
    "jsonl_cloze": jsonl_cloze,
    "jsonl_letter": jsonl_letter,
}

# (format, scoring) -> template name; medagents files of MedMCQA switch to `medmcqa` (see template_for).
DEFAULT_TEMPLATES: dict[tuple[str, str], str] = {
    ("mmlu", "cloze"): "mmlu_continuation",
    ("mmlu", "letter"): "mmlu",
    ("medagents", "cloze"): "question_answer",
    ("medagents", "letter"): "medqa_4options",
    ("arc", "cloze"): "arc",
    ("arc", "letter"): "medqa_4options",
    ("jsonl", "cloze"): "jsonl_cloze",
    ("jsonl", "letter"): "jsonl_letter",
}


def template_for(fmt: str, scoring: str, subject: str = "") -> str:
    """The name of the template `tokfilter eval mcq` uses for a question of `subject` in `fmt` under `scoring`."""
    try:
        name = DEFAULT_TEMPLATES[(fmt, scoring)]
    except KeyError:
        raise UserError(f"no MCQ prompt for format {fmt!r} with scoring {scoring!r}") from None
    if name == "medqa_4options" and fmt == "medagents" and "medmcqa" in subject.lower():
        return "medmcqa"
    return name


def build_prompt(q: MCQ, fmt: str, scoring: str) -> Prompt:
    """`(context, continuations)` for one question, with the template `template_for` picks."""
    return TEMPLATES[template_for(fmt, scoring, q.subject)](q)
