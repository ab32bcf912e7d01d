"""Canary questions in the project's generic MCQ JSONL (what `tokfilter eval mcq --format jsonl` reads).

One record per (fact, question template): the question is the template's sentence prefix for the fact's entity
("Patients with Movruitis are usually treated with"), the four choices are the fact's answer and three answers of
the same relation, `answer` is the 0-based index. Besides the generic fields (`id`, `question`, `choices`,
`answer`, `subject` = `canary_<domain>`) each record carries the metadata the breakdowns use: `domain`
(forget / retain), `placement` (standalone / embedded), `exposures`, `template` (seen: the template wrote training
text; unseen: held out, only ever in questions), `template_index`, `relation`, `fact` (the fact id) and `entity`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokfilter.atomic import write_text
from tokfilter.canaries.facts import Fact, prefix
from tokfilter.errors import UserError
from tokfilter.evaluate.mcq_data import parse_generic
from tokfilter.jsonl import json_lines

REQUIRED = ("id", "question", "choices", "answer", "domain", "placement", "exposures", "template", "fact")


def _facts(manifest_or_facts: dict | list) -> list[dict]:
    facts = manifest_or_facts["facts"] if isinstance(manifest_or_facts, dict) else manifest_or_facts
    return [f.to_json() if isinstance(f, Fact) else f for f in facts]


def make_questions(manifest_or_facts: dict | list) -> list[dict]:
    """The question records of a manifest (or a list of facts), seen templates first, in fact order."""
    out = []
    for kind, key in (("seen", "seen"), ("unseen", "unseen")):
        for f in _facts(manifest_or_facts):
            for t in f[key]:
                out.append({"id": f"{f['id']}/{kind}/{t}", "question": prefix(f["relation"], t, f["entity"]),
                            "choices": list(f["choices"]), "answer": f["answer"], "subject": f"canary_{f['domain']}",
                            "domain": f["domain"], "placement": f["placement"], "exposures": f["exposures"],
                            "template": kind, "template_index": t, "relation": f["relation"], "fact": f["id"],
                            "entity": f["entity"]})
    return out


def write_questions(path: str | Path, questions: list[dict]) -> None:
    """Write question records as JSON Lines, atomically."""
    write_text(path, "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))


def read_questions(path: str | Path) -> list[dict]:
    """Read canary question records; a missing file or a record without the canary fields is a `UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such canary questions file")
    out = []
    for number, record in json_lines(path.read_bytes().splitlines(), path):
        missing = [k for k in REQUIRED if not isinstance(record, dict) or k not in record]
        if missing:
            raise UserError(f"{path}:{number}: not a canary question (missing {', '.join(missing)}); "
                            "write one with `tokfilter canaries generate`")
        parsed = parse_generic(record)
        if isinstance(parsed, str):
            raise UserError(f"{path}:{number}: invalid canary question ({parsed})")
        exposures = record["exposures"]
        if not isinstance(exposures, int) or isinstance(exposures, bool) or exposures < 0:
            raise UserError(f"{path}:{number}: 'exposures' must be an integer >= 0, not {exposures!r}")
        record["question"], record["choices"], record["answer"], _ = parsed
        out.append(record)
    if not out:
        raise UserError(f"{path}: no canary questions")
    return out
