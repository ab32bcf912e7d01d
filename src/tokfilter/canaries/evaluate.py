"""Score a model on canary questions with the project's cloze MCQ scorer; accuracy with breakdowns.

Each question is scored by `tokfilter.evaluate.mcq.score_questions` (cloze: `Question: {prefix}\\nAnswer:` + ` option`,
the option with the highest summed log-probability wins; `accuracy_pmi` beside it) with its own id as subject, so
every question's hit is known and any grouping is exact. The result per domain (`forget` = medical facts,
`retain` = biology facts) is the SEEN-template summary {"accuracy", "accuracy_pmi", "n", "chance", "ci"} (ci: Wilson
95% interval over questions; questions of one fact are correlated, so it is optimistic by up to sqrt(templates))
plus `by_placement`, `by_exposures` (seen templates), `unseen` (held-out templates, with its own `by_exposures`)
and `control`: the seen questions again with the entity replaced by a fictional name that was never planted. The
control measures what a model gets from the template and the answers' frequencies alone (no fact knowledge); a
model knows the facts to the extent `accuracy` exceeds `control`. That object is `runs[].canaries` in results.json.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from pathlib import Path

from tokfilter.canaries.questions import read_questions
from tokfilter.evaluate.mcq import score_questions
from tokfilter.evaluate.mcq_data import MCQ

Z95 = 1.959964


def wilson(hits: int, n: int, z: float = Z95) -> list[float]:
    """Wilson score interval [lo, hi] for hits / n (95% by default); [0, 1] when n = 0."""
    if n == 0:
        return [0.0, 1.0]
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def summarize(rows: list[dict]) -> dict:
    """{"accuracy", "accuracy_pmi", "n", "chance", "ci"} over per-question rows ({"hit", "hit_pmi", "options"})."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    hits = sum(r["hit"] for r in rows)
    return {"accuracy": round(hits / n, 6), "accuracy_pmi": round(sum(r["hit_pmi"] for r in rows) / n, 6),
            "n": n, "chance": round(sum(1 / r["options"] for r in rows) / n, 6), "ci": wilson(hits, n)}


def _grouped(rows: list[dict], key: str) -> dict:
    groups: dict = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    return {str(k): summarize(groups[k]) for k in sorted(groups)}


def control_questions(questions: list[dict]) -> list[dict]:
    """The seen questions with each entity replaced by a fresh fictional name of the same kind (never planted)."""
    from tokfilter.canaries.facts import KIND
    from tokfilter.canaries.names import fictional_names

    seen = [q for q in questions if q["template"] == "seen" and q.get("entity")]
    entities = sorted({(q["domain"], q["entity"]) for q in seen})
    taken = [e for _, e in entities]
    rng = random.Random("canary-control")
    swap = {}
    for domain in ("forget", "retain"):
        mine = [e for d, e in entities if d == domain]
        for entity, name in zip(mine, fictional_names(KIND[domain], len(mine), rng, taken=taken), strict=True):
            swap[entity] = name
        taken += [swap[e] for e in mine]
    return [{**q, "id": q["id"] + "/control", "question": q["question"].replace(q["entity"], swap[q["entity"]]),
             "template": "control", "entity": swap[q["entity"]]} for q in seen]


def score_canaries(model, tokenizer, questions: list[dict], progress: bool = False) -> list[dict]:
    """Per-question rows: the question record plus `hit` and `hit_pmi` (bool) and `options`."""
    from tokfilter.evaluate.loading import scorer_for

    mcqs = [MCQ(q["question"], list(q["choices"]), int(q["answer"]), q["id"], q["id"]) for q in questions]
    if len({m.subject for m in mcqs}) != len(mcqs):
        raise ValueError("canary question ids must be unique")
    tallies = score_questions(mcqs, scorer_for(model, tokenizer), tokenizer, scoring="cloze", progress=progress,
                              total=len(mcqs))
    return [{**q, "hit": bool(tallies[q["id"]].correct["accuracy"]),
             "hit_pmi": bool(tallies[q["id"]].correct["accuracy_pmi"]), "options": len(q["choices"])}
            for q in questions]


def canary_report(rows: list[dict]) -> dict:
    """{"forget": {...}, "retain": {...}} from per-question rows (see the module docstring)."""
    out = {}
    for domain in ("forget", "retain"):
        mine = [r for r in rows if r["domain"] == domain]
        seen = [r for r in mine if r["template"] == "seen"]
        unseen = [r for r in mine if r["template"] == "unseen"]
        control = [r for r in mine if r["template"] == "control"]
        out[domain] = {**summarize(seen), "by_placement": _grouped(seen, "placement"),
                       "by_exposures": _grouped(seen, "exposures"),
                       "unseen": {**summarize(unseen), "by_exposures": _grouped(unseen, "exposures")}}
        if control:
            out[domain]["control"] = summarize(control)
    return out


def evaluate_canaries(model, tokenizer, questions: list[dict] | str | Path, progress: bool = False,
                      control: bool = True) -> dict:
    """`runs[].canaries` for a loaded model: score `questions` (records or a JSONL path) and break them down;
    `control` adds the entity-swapped control questions (twice the seen questions' cost)."""
    records = read_questions(questions) if isinstance(questions, (str, Path)) else questions
    if control:
        records = records + control_questions(records)
    return canary_report(score_canaries(model, tokenizer, records, progress=progress))


def evaluate_checkpoint(path: str | Path, questions: str | Path, device: str = "auto",
                        tokenizer_spec: str | None = None, progress: bool = False) -> dict:
    """Load a checkpoint (or run directory) with `load_checkpoint` and evaluate it on a canary questions file."""
    from tokfilter.evaluate.loading import load_checkpoint

    records = read_questions(questions)
    model, tokenizer = load_checkpoint(path, tokenizer_spec, device)
    return evaluate_canaries(model, tokenizer, records, progress=progress)
