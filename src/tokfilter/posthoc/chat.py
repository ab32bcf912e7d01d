"""A chat format for the pretrained GPT, and readers for instruction / question files.

The base model knows no special chat tokens, so the template is ordinary text plus the end-of-text token that already
separates documents in pretraining (special-token strings inside text are encoded as text, so a user message can
never forge one):

    <eot>User: {prompt}\\nAssistant: {response}<eot>

`prompt` is an instruction, followed by "\\n" and its input when it has one. The prompt part is
`[eot] + encode("User: " + prompt + "\\nAssistant:")`; the response part is `encode(" " + response) + [eot]`. SFT
takes the loss only on the response part (its final eot included, so the model learns to stop); generation feeds the
prompt part and samples until eot. Keeping the role tags as plain words lets any tokenizer (BPE trained on the corpus,
GPT-2's, cl100k) use the format unchanged.

Files (a missing field is a `UserError` naming the file and record):
    chat / instruction file   JSON list or JSON Lines (.gz allowed) of {"instruction", "input"?, "output"}
                              (Alpaca) or {"prompt", "response"}
    question file             plain text, one question per line (HealthSearchQA), or JSON Lines with "question"
    QA file                   JSON Lines of {"question", "answer"} (MedQuAD sample)
Defaults are the samples shipped in posthoc/data/ (see PROVENANCE.md there), so results do not depend on whether
../shared/data exists; pass the full files explicitly for more.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokfilter.errors import UserError
from tokfilter.filtering import IGNORE_INDEX
from tokfilter.jsonl import json_lines

DATA_DIR = Path(__file__).resolve().parent / "data"
USER_TAG = "User: "
ASSISTANT_TAG = "\nAssistant:"


@dataclass
class ChatExample:
    prompt: str
    response: str


def format_prompt(prompt: str) -> str:
    """The text of the prompt part (without the leading eot)."""
    return f"{USER_TAG}{prompt.strip()}{ASSISTANT_TAG}"


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids that start an assistant turn: eot, the role-tagged prompt, 'Assistant:'."""
    return [tokenizer.eot_id, *tokenizer.encode_ids(format_prompt(prompt))]


def response_ids(tokenizer, response: str) -> list[int]:
    """Token ids of a response, ending with eot."""
    return [*tokenizer.encode_ids(" " + response.strip()), tokenizer.eot_id]


def encode_example(tokenizer, example: ChatExample, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(input ids, targets) of one SFT example, at most seq_len long; targets are -100 on the prompt part.

    A too-long example keeps the end of its prompt and the start of its response: at least the last 3/4 of the
    window stays available to the response, so long prompts cannot crowd it out.
    """
    p = prompt_ids(tokenizer, example.prompt)
    r = response_ids(tokenizer, example.response)
    budget = seq_len + 1
    keep_p = min(len(p), max(budget - len(r), budget // 4))
    p = p[len(p) - keep_p:]
    r = r[: budget - len(p)]
    ids = np.asarray(p + r, dtype=np.int64)
    targets = ids[1:].copy()
    targets[: len(p) - 1] = IGNORE_INDEX
    return ids[:-1], targets


def alpaca_prompt(record: dict) -> str:
    instruction = record["instruction"].strip()
    extra = (record.get("input") or "").strip()
    return f"{instruction}\n{extra}" if extra else instruction


def _open_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None


def _records(path: Path) -> list[tuple[str, object]]:
    """(where, record) for a JSON list or JSON Lines file."""
    text = _open_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: invalid JSON ({err})") from None
        return [(f"{path}: record {i + 1}", r) for i, r in enumerate(data)]
    return [(f"{path}:{n}", record) for n, record in json_lines(text.splitlines(), path)]


def read_chat_file(path: str | Path) -> list[ChatExample]:
    """Chat examples from an Alpaca-style or prompt/response file (see the module docstring)."""
    path = Path(path)
    examples = []
    for where, record in _records(path):
        if not isinstance(record, dict):
            raise UserError(f"{where}: expected a JSON object with instruction/output or prompt/response")
        if isinstance(record.get("instruction"), str) and isinstance(record.get("output"), str):
            examples.append(ChatExample(alpaca_prompt(record), record["output"]))
        elif isinstance(record.get("prompt"), str) and isinstance(record.get("response"), str):
            examples.append(ChatExample(record["prompt"], record["response"]))
        else:
            raise UserError(f"{where}: record lacks the expected fields (instruction + output, or prompt + "
                            f"response); has {sorted(record)[:6]}")
    if not examples:
        raise UserError(f"{path}: no chat examples")
    return examples


def read_questions(path: str | Path) -> list[str]:
    """Questions from a text file (one per line) or JSON Lines with a "question" field."""
    path = Path(path)
    base = path.name.removesuffix(".gz")
    if base.endswith((".jsonl", ".json")):
        questions = []
        for where, record in _records(path):
            if not isinstance(record, dict) or not isinstance(record.get("question"), str):
                raise UserError(f"{where}: record lacks the expected 'question' field")
            questions.append(record["question"].strip())
    else:
        questions = [line.strip() for line in _open_text(path).splitlines() if line.strip()]
    if not questions:
        raise UserError(f"{path}: no questions")
    return questions


def read_qa_pairs(path: str | Path) -> list[tuple[str, str]]:
    """(question, reference answer) pairs from JSON Lines with "question" and "answer"."""
    path = Path(path)
    pairs = []
    for where, record in _records(path):
        if not (isinstance(record, dict) and isinstance(record.get("question"), str)
                and isinstance(record.get("answer"), str)):
            raise UserError(f"{where}: record lacks the expected 'question' and 'answer' fields")
        pairs.append((record["question"].strip(), record["answer"].strip()))
    if not pairs:
        raise UserError(f"{path}: no question/answer pairs")
    return pairs


def default_questions_path() -> Path:
    """Shipped HealthSearchQA (all 3,156 questions)."""
    return DATA_DIR / "healthsearchqa.txt.gz"


def default_general_path() -> Path:
    """Shipped Alpaca sample (800 short records); pass ../shared/data/instructions/alpaca_5000.json for more."""
    return DATA_DIR / "alpaca_sample.json.gz"


def default_qa_path() -> Path:
    return DATA_DIR / "medquad_qa_sample.jsonl.gz"


def split_half(items: list, seed: int) -> tuple[list, list]:
    """A seeded shuffle cut in two halves: (train, held out)."""
    items = list(items)
    random.Random(seed).shuffle(items)
    half = len(items) // 2
    return items[:half], items[half:]
