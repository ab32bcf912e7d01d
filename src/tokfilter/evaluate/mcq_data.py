"""Streaming readers for multiple-choice question (MCQ) files in their standard, unmodified formats.

Formats (`--format`):

    mmlu       the official MMLU CSV files: headerless rows `question,A,B,C,D,answer` (answer a letter A-D); the
               subject comes from the file name `<subject>_<split>.csv`. The path may be one CSV file, a directory of
               CSV files, or a directory holding `dev/`, `val/`, `test/` subdirectories (the split is chosen with
               `split=`; by default `test`, else `val`, else `dev`).
    medagents  MedAgents-style JSONL (MedQA-USMLE, MedMCQA, MedExQA conversions): `{"question", "options":
               {"A": ..., "B": ...}, "answer_idx": "B"}`, 3 to 10 options. Letter scoring prompts these as lm-eval's
               `medqa_4options`, or `medmcqa` when the file name (or the row's `subject`) contains "medmcqa"
               (`prompts.template_for`).
    arc        the official ARC JSONL: `{"question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}`;
               labels may be A-E or 1-4. Extra fields (e.g. `para`) are ignored.
    jsonl      the generic format of this project, one question per line:
               `{"question": str, "choices": [str, ...], "answer": int | "B", "subject": str (optional),
               "id": str (optional)}`; an integer answer is a 0-based index into `choices`, a string answer a
               letter (A = first choice).

JSONL files may be gzip- or zstd-compressed (`.gz`, `.zst`). Rows that cannot be scored (invalid JSON, a missing
question, fewer than 2 options, a missing option, an answer outside the options) are skipped and counted by reason in
`MCQReader.skipped`; they never abort a run. The subject of a JSONL row is its `subject` field, else the file's stem.

`--limit N` takes a seeded sample spread evenly over subjects for the standard formats and the first N questions of
the project's own `jsonl` sets (`MCQReader`, `stratified_sample`).

The paper's subject groups are in `MMLU_GROUPS` (medicine and biology as PAPER.md lists them) built on the standard
MMLU categorisation `MMLU_CATEGORIES` (Hendrycks et al. 2021, `categories.py`: STEM, humanities, social sciences,
other); `non_stem` is everything that is not STEM.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tokfilter.errors import UserError

FORMATS = ("mmlu", "medagents", "arc", "jsonl")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MMLU_SPLITS = ("test", "val", "dev")

# Standard MMLU categorisation: subject -> category (Hendrycks et al., github.com/hendrycks/test categories.py).
_CATEGORY_OF_SUBCATEGORY = {
    "physics": "stem", "chemistry": "stem", "biology": "stem", "computer science": "stem", "math": "stem",
    "engineering": "stem",
    "history": "humanities", "philosophy": "humanities", "law": "humanities",
    "politics": "social_sciences", "culture": "social_sciences", "economics": "social_sciences",
    "geography": "social_sciences", "psychology": "social_sciences",
    "other": "other", "business": "other", "health": "other",
}
MMLU_SUBCATEGORIES = {
    "abstract_algebra": "math", "anatomy": "health", "astronomy": "physics", "business_ethics": "business",
    "clinical_knowledge": "health", "college_biology": "biology", "college_chemistry": "chemistry",
    "college_computer_science": "computer science", "college_mathematics": "math", "college_medicine": "health",
    "college_physics": "physics", "computer_security": "computer science", "conceptual_physics": "physics",
    "econometrics": "economics", "electrical_engineering": "engineering", "elementary_mathematics": "math",
    "formal_logic": "philosophy", "global_facts": "other", "high_school_biology": "biology",
    "high_school_chemistry": "chemistry", "high_school_computer_science": "computer science",
    "high_school_european_history": "history", "high_school_geography": "geography",
    "high_school_government_and_politics": "politics", "high_school_macroeconomics": "economics",
    "high_school_mathematics": "math", "high_school_microeconomics": "economics", "high_school_physics": "physics",
    "high_school_psychology": "psychology", "high_school_statistics": "math", "high_school_us_history": "history",
    "high_school_world_history": "history", "human_aging": "health", "human_sexuality": "culture",
    "international_law": "law", "jurisprudence": "law", "logical_fallacies": "philosophy",
    "machine_learning": "computer science", "management": "business", "marketing": "business",
    "medical_genetics": "health", "miscellaneous": "other", "moral_disputes": "philosophy",
    "moral_scenarios": "philosophy", "nutrition": "health", "philosophy": "philosophy", "prehistory": "history",
    "professional_accounting": "other", "professional_law": "law", "professional_medicine": "health",
    "professional_psychology": "psychology", "public_relations": "politics", "security_studies": "politics",
    "sociology": "culture", "us_foreign_policy": "politics", "virology": "health", "world_religions": "philosophy",
}
MMLU_CATEGORIES = {subject: _CATEGORY_OF_SUBCATEGORY[sub] for subject, sub in MMLU_SUBCATEGORIES.items()}

# The paper's groups (PAPER.md, "Multiple choice") plus the standard categories. Group accuracy is the micro average
# over the group's questions.
MMLU_MEDICINE = ("college_medicine", "professional_medicine", "medical_genetics", "clinical_knowledge", "anatomy",
                 "virology")
MMLU_BIOLOGY = ("college_biology", "high_school_biology")
MMLU_GROUPS: dict[str, tuple[str, ...]] = {
    "mmlu_medicine": MMLU_MEDICINE,
    "mmlu_biology": MMLU_BIOLOGY,
    "mmlu_stem": tuple(s for s, c in MMLU_CATEGORIES.items() if c == "stem"),
    "mmlu_non_stem": tuple(s for s, c in MMLU_CATEGORIES.items() if c != "stem"),
    "mmlu_humanities": tuple(s for s, c in MMLU_CATEGORIES.items() if c == "humanities"),
    "mmlu_social_sciences": tuple(s for s, c in MMLU_CATEGORIES.items() if c == "social_sciences"),
    "mmlu_other": tuple(s for s, c in MMLU_CATEGORIES.items() if c == "other"),
    # everything except the medicine and biology subjects: "general ability" in the paper's sense
    "mmlu_general": tuple(s for s in MMLU_CATEGORIES if s not in MMLU_MEDICINE + MMLU_BIOLOGY),
}


@dataclass
class MCQ:
    """One question: `choices[answer]` is the correct option."""

    question: str
    choices: list[str]
    answer: int
    subject: str
    id: str = ""

    @property
    def letters(self) -> list[str]:
        return list(LETTERS[: len(self.choices)])


def stratified_sample(subjects: Sequence[str], limit: int, seed: int = 0) -> list[int]:
    """Indices of `limit` items (of all, if fewer), spread evenly over subjects; `subjects[i]` is item i's subject.

    Round-robin over the subjects in a seeded order (the sorted subject names shuffled with `seed`), taking from each
    subject its items in a seeded order (shuffled with `f"{seed}:{subject}"`, so a subject's order does not depend on
    which other subjects are present); a subject that runs out drops from the rotation. Returned in selection order;
    the same subjects and seed always give the same indices (string seeds are hashed with SHA-512 by `random`)."""
    by_subject: dict[str, list[int]] = defaultdict(list)
    for i, subject in enumerate(subjects):
        by_subject[subject].append(i)
    order = sorted(by_subject)
    random.Random(seed).shuffle(order)
    queues = []
    for subject in order:
        items = list(by_subject[subject])
        random.Random(f"{seed}:{subject}").shuffle(items)
        queues.append(items)
    chosen: list[int] = []
    limit = max(0, int(limit))
    for depth in range(max((len(q) for q in queues), default=0)):
        for items in queues:
            if len(chosen) >= limit:
                return chosen
            if depth < len(items):
                chosen.append(items[depth])
    return chosen


@dataclass
class MCQReader:
    """Iterate over the questions of `path` in `fmt`; `skipped` counts unusable rows by reason (filled while reading).

    Without `limit`, every valid question in file order (files sorted by name), streamed. With `limit`:

      - `mmlu`, `medagents`, `arc`: a stratified sample of `limit` valid questions (`stratified_sample` with `seed`:
        evenly over subjects, seeded order within each), yielded in file order. The files are read twice (the first
        pass notes each question's subject only), so memory stays small.
      - `jsonl` (the project's own sets, e.g. the ontology probes, which `tokfilter eval probes build` already writes in
        a seeded random order): the first `limit` valid questions in file order, whatever `seed`, as before
        stratification existed, so probe numbers stay comparable.
    """

    path: Path
    fmt: str
    split: str | None = None
    limit: int | None = None
    seed: int = 0
    skipped: Counter = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.fmt not in FORMATS:
            raise UserError(f"unknown MCQ format {self.fmt!r}; choose one of {', '.join(FORMATS)}")
        if not self.path.exists():
            raise UserError(f"{self.path}: no such file or directory")
        self.files = mmlu_files(self.path, self.split) if self.fmt == "mmlu" else jsonl_files(self.path)

    def _read(self, skipped: Counter) -> Iterator[MCQ]:
        for path in self.files:
            yield from (read_mmlu_csv(path, skipped) if self.fmt == "mmlu" else read_jsonl_mcq(path, self.fmt, skipped))

    def __iter__(self) -> Iterator[MCQ]:
        if self.limit is None:
            yield from self._read(self.skipped)
        elif self.fmt == "jsonl":
            yield from itertools.islice(self._read(self.skipped), max(0, self.limit))
        else:
            chosen = set(stratified_sample([q.subject for q in self._read(self.skipped)], self.limit, self.seed))
            for i, q in enumerate(self._read(Counter())):  # second pass: skips were counted in the first
                if i in chosen:
                    yield q

    def skipped_report(self) -> dict:
        return {"total": sum(self.skipped.values()), "reasons": dict(sorted(self.skipped.items()))}


def detect_format(path: str | Path) -> str:
    """Guess the format: `.csv` files (here or in split subdirectories) -> mmlu; otherwise from the keys of the first
    record of the (first) JSONL file."""
    path = Path(path)
    if path.suffix == ".csv" or (path.is_dir() and (any(path.glob("*.csv")) or any(path.glob("*/*.csv")))):
        return "mmlu"
    if path.is_dir():
        path = jsonl_files(path)[0]
    if not path.is_file():
        raise UserError(f"{path}: no such file or directory")
    with _open_text(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise UserError(f"{path}:1: not JSON Lines; pass --format") from None
            if not isinstance(record, dict):
                break
            if isinstance(record.get("question"), dict) and "answerKey" in record:
                return "arc"
            if "options" in record and "answer_idx" in record:
                return "medagents"
            if "choices" in record and "answer" in record:
                return "jsonl"
            break
    raise UserError(f"{path}: cannot tell the MCQ format from its first record; pass --format "
                    f"({', '.join(FORMATS)})")


def mmlu_files(path: Path, split: str | None = None) -> list[Path]:
    """The CSV files of an MMLU file/directory (see module docstring), sorted by name."""
    if path.is_file():
        return [path]
    if split is not None:
        if not (path / split).is_dir():
            raise UserError(f"{path}: no '{split}' subdirectory")
        path = path / split
    csvs = sorted(path.glob("*.csv"))
    if not csvs and split is None:
        for name in MMLU_SPLITS:
            if (path / name).is_dir() and any((path / name).glob("*.csv")):
                csvs = sorted((path / name).glob("*.csv"))
                break
    if not csvs:
        raise UserError(f"{path}: no MMLU .csv files (expected <subject>_<split>.csv here or in test/, val/, dev/)")
    return csvs


def jsonl_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and any(
        p.name.endswith(ext) for ext in (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json")))
    if not files:
        raise UserError(f"{path}: no .jsonl files in this directory")
    return files


def mmlu_subject(path: Path) -> str:
    """`college_medicine_test.csv` -> `college_medicine`."""
    stem = path.stem
    for split in MMLU_SPLITS:
        if stem.endswith("_" + split):
            return stem[: -len(split) - 1]
    return stem


def read_mmlu_csv(path: Path, skipped: Counter) -> Iterator[MCQ]:
    subject = mmlu_subject(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for row_number, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < 6:
                skipped["missing options"] += 1
                continue
            question, choices, answer = row[0], row[1:-1], row[-1].strip().upper()
            if len(answer) != 1 or answer not in LETTERS[: len(choices)]:
                skipped["answer outside options"] += 1
                continue
            yield MCQ(question, choices, LETTERS.index(answer), subject, f"{path.name}:{row_number}")


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    if path.name.endswith(".zst"):
        import zstandard

        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")), encoding="utf-8")
    return open(path, encoding="utf-8")


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".gz", ".zst", ".jsonl", ".json"):
        name = name.removesuffix(ext)
    return name


def read_jsonl_mcq(path: Path, fmt: str, skipped: Counter) -> Iterator[MCQ]:
    parse = {"medagents": _parse_medagents, "arc": _parse_arc, "jsonl": parse_generic}[fmt]
    default_subject = _stem(path)
    try:
        with _open_text(path) as fh:
            for line_number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    skipped["invalid JSON"] += 1
                    continue
                if not isinstance(record, dict):
                    skipped["not a JSON object"] += 1
                    continue
                result = parse(record)
                if isinstance(result, str):
                    skipped[result] += 1
                    continue
                question, choices, answer, subject = result
                qid = str(record.get("id", record.get("realidx", f"{path.name}:{line_number}")))
                yield MCQ(question, choices, answer, subject or default_subject, qid)
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise UserError(f"{path}: unreadable ({err})") from None


def _as_text(value):
    """Option text; numeric options (e.g. `{"A": 5}`) become strings, anything else stays as is (and is rejected)."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _valid_choices(choices: list) -> bool:
    return len(choices) >= 2 and all(isinstance(c, str) and c.strip() for c in choices)


def _parse_medagents(record: dict):
    question, options = record.get("question"), record.get("options")
    if not isinstance(question, str) or not question.strip():
        return "missing question"
    if not isinstance(options, dict) or len(options) < 2:
        return "missing options"
    keys = sorted(options)
    if keys != list(LETTERS[: len(keys)]):  # options must be A, B, C, ... without gaps
        return "missing options"
    choices = [_as_text(options[k]) for k in keys]
    if not _valid_choices(choices):
        return "missing options"
    answer = record.get("answer_idx")
    if not isinstance(answer, str) or answer.strip().upper() not in keys:
        return "answer outside options"
    return question, choices, keys.index(answer.strip().upper()), record.get("subject")


def _parse_arc(record: dict):
    q = record.get("question")
    if not isinstance(q, dict) or not isinstance(q.get("stem"), str) or not q["stem"].strip():
        return "missing question"
    raw = q.get("choices")
    if not isinstance(raw, list) or len(raw) < 2 or not all(isinstance(c, dict) for c in raw):
        return "missing options"
    labels = [str(c.get("label", "")).strip() for c in raw]
    choices = [_as_text(c.get("text")) for c in raw]
    if not _valid_choices(choices) or not all(labels) or len(set(labels)) != len(labels):
        return "missing options"
    answer = str(record.get("answerKey", "")).strip()
    if answer not in labels:
        return "answer outside options"
    return q["stem"], choices, labels.index(answer), None


def parse_generic(record: dict):
    """(question, choices, answer index, subject or None) of a generic MCQ record, or why it is invalid (a str)."""
    question, choices = record.get("question"), record.get("choices")
    if not isinstance(question, str) or not question.strip():
        return "missing question"
    if not isinstance(choices, list):
        return "missing options"
    choices = [_as_text(c) for c in choices]
    if not _valid_choices(choices):
        return "missing options"
    answer = record.get("answer")
    if isinstance(answer, bool):
        return "answer outside options"
    if isinstance(answer, int):
        index = answer
    elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in LETTERS:
        index = LETTERS.index(answer.strip().upper())
    else:
        return "answer outside options"
    if not 0 <= index < len(choices):
        return "answer outside options"
    subject = record.get("subject")
    return question, choices, index, subject if isinstance(subject, str) and subject else None
