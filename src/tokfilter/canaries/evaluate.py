"""Score a model on canary questions with the project's log-likelihood scorer; accuracy with breakdowns.

Every option is scored as a cloze continuation ` {option}` by the project's `LogLikelihoodScorer`
(`evaluate.loading.scorer_for`), with the question text itself as the prompt: the sentence prefix the fact was
written with ("Patients with Movruitis are usually treated with" + " warfarin"), as lm-eval's cloze tasks do.

- `accuracy` (headline): the option with the highest summed log-probability wins. A question's options are one
  option group (`facts.make_facts`): answers exactly as frequent in the canary text, so the template alone gives
  chance and only the entity tells them apart.
- `control`: the same questions with each entity swapped for a fictional name that was never planted; its accuracy
  checks that claim (near chance = no prior leak; with distractors of other exposure counts it was not: the
  most-mentioned answer won every question of its relation).
- `accuracy_calibrated`: argmax of log p(option | question) - log p(option | control question): what the entity
  adds over the prior, a diagnostic.
- `accuracy_mcq_prompt`: `tokfilter eval mcq`'s cloze prompt `Question: {q}\nAnswer:` (a test checks it equals
  `evaluate.mcq.score_questions` question by question). At demo scale this wrapper hides what the model knows: a
  0.4M model that completes 1024-mention facts perfectly as sentences is at chance behind it.

The result per domain (`forget` = medical facts, `retain` = biology facts) is the SEEN-template summary
{"accuracy", "accuracy_calibrated", "accuracy_mcq_prompt", "n", "chance", "ci"} (ci: Wilson 95% of `accuracy` over
questions; the questions of one fact share its options and are correlated, so the interval is optimistic by up to
sqrt(templates)) plus `by_placement`, `by_exposures` (seen templates), `unseen` (held-out templates, with its own
`by_exposures`) and `control`. That object is `runs[].canaries` in results.json.
"""

from __future__ import annotations

import math
import random
import sys
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from tokfilter.canaries.facts import KIND
from tokfilter.canaries.names import fictional_names
from tokfilter.canaries.questions import read_questions
from tokfilter.evaluate.mcq import cloze_prompt
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
    """{"accuracy", "n", "chance", "ci"} over per-question rows ({"hit", "options"}), plus "accuracy_calibrated" and
    "accuracy_mcq_prompt" when the rows have `hit_calibrated` / `hit_mcq`."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    hits = sum(r["hit"] for r in rows)
    out = {"accuracy": round(hits / n, 6), "n": n, "chance": round(sum(1 / r["options"] for r in rows) / n, 6),
           "ci": wilson(hits, n)}
    if all("hit_calibrated" in r for r in rows):
        out["accuracy_calibrated"] = round(sum(r["hit_calibrated"] for r in rows) / n, 6)
    if all("hit_mcq" in r for r in rows):
        out["accuracy_mcq_prompt"] = round(sum(r["hit_mcq"] for r in rows) / n, 6)
    return out


def _grouped(rows: list[dict], key: str) -> dict:
    groups: dict = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    return {str(k): summarize(groups[k]) for k in sorted(groups)}


def control_questions(questions: list[dict]) -> list[dict]:
    """Every question with its entity replaced by a fresh fictional name of the same kind (never planted); ids get
    a `/control` suffix and `template` becomes `control-seen` / `control-unseen`."""

    entities = sorted({(q["domain"], q["entity"]) for q in questions})
    taken = [e for _, e in entities]
    rng = random.Random("canary-control")
    swap = {}
    for domain in ("forget", "retain"):
        mine = [e for d, e in entities if d == domain]
        for entity, name in zip(mine, fictional_names(KIND[domain], len(mine), rng, taken=taken), strict=True):
            swap[entity] = name
        taken += [swap[e] for e in mine]
    return [{**q, "id": q["id"] + "/control", "question": q["question"].replace(q["entity"], swap[q["entity"]]),
             "template": "control-" + q["template"], "entity": swap[q["entity"]]} for q in questions]


PROMPTS = ("sentence", "mcq")


def option_loglikelihoods(model, tokenizer, questions: list[dict], prompt: str = "sentence", chunk_size: int = 64,
                          progress: bool = False) -> list[list[float]]:
    """Summed log-probability of ` {option}` after the prompt, per question: `sentence` = the question text as is,
    `mcq` = `tokfilter eval mcq`'s cloze prompt."""
    if prompt not in PROMPTS:
        raise ValueError(f"prompt must be one of {PROMPTS}, not {prompt!r}")
    from tokfilter.evaluate.loading import scorer_for

    scorer = scorer_for(model, tokenizer)
    out: list[list[float]] = []
    bar = tqdm(total=len(questions), desc="canaries", unit="q", file=sys.stderr, disable=not progress)
    for start in range(0, len(questions), chunk_size):
        chunk = questions[start: start + chunk_size]
        requests, sizes = [], []
        for q in chunk:
            context, continuations = cloze_prompt(MCQ(q["question"], list(q["choices"]), int(q["answer"]), "", ""))
            if prompt == "sentence":
                context = q["question"].strip()
            ctx_ids = [tokenizer.eot_id] + list(tokenizer.encode_ids(context))
            requests += [(ctx_ids, ids) for ids in tokenizer.encode_batch_ids(continuations)]
            sizes.append(len(continuations))
        lls = [lp for lp, _ in scorer.loglikelihoods(requests)]
        for k in sizes:
            out.append(lls[:k])
            lls = lls[k:]
        bar.update(len(chunk))
    bar.close()
    return out


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def score_canaries(model, tokenizer, questions: list[dict], progress: bool = False) -> list[dict]:
    """Per-question rows for the questions and their controls: the record plus `hit` (plain) and `options`;
    question rows also `hit_calibrated` (minus the control's log-likelihoods) and `hit_mcq` (`eval mcq` prompt)."""
    if len({q["id"] for q in questions}) != len(questions):
        raise ValueError("canary question ids must be unique")
    control = control_questions(questions)
    lls = option_loglikelihoods(model, tokenizer, questions + control, progress=progress)
    mcq = option_loglikelihoods(model, tokenizer, questions, prompt="mcq", progress=progress)
    rows = []
    for i, q in enumerate(questions + control):
        row = {**q, "hit": _argmax(lls[i]) == q["answer"], "options": len(q["choices"])}
        if i < len(questions):
            base = lls[len(questions) + i]
            row["hit_calibrated"] = _argmax([a - b for a, b in zip(lls[i], base, strict=True)]) == q["answer"]
            row["hit_mcq"] = _argmax(mcq[i]) == q["answer"]
        rows.append(row)
    return rows


def canary_report(rows: list[dict]) -> dict:
    """{"forget": {...}, "retain": {...}} from per-question rows (see the module docstring)."""
    out = {}
    for domain in ("forget", "retain"):
        mine = [r for r in rows if r["domain"] == domain]
        seen = [r for r in mine if r["template"] == "seen"]
        unseen = [r for r in mine if r["template"] == "unseen"]
        control = [r for r in mine if r["template"] == "control-seen"]
        out[domain] = {**summarize(seen), "by_placement": _grouped(seen, "placement"),
                       "by_exposures": _grouped(seen, "exposures"),
                       "unseen": {**summarize(unseen), "by_exposures": _grouped(unseen, "exposures")}}
        if control:
            out[domain]["control"] = summarize(control)
    return out


def evaluate_canaries(model, tokenizer, questions: list[dict] | str | Path, progress: bool = False) -> dict:
    """`runs[].canaries` for a loaded model: score `questions` (records or a JSONL path) and their controls, and
    break them down (see the module docstring)."""
    records = read_questions(questions) if isinstance(questions, (str, Path)) else questions
    return canary_report(score_canaries(model, tokenizer, records, progress=progress))


def evaluate_checkpoint(path: str | Path, questions: str | Path, device: str = "auto",
                        tokenizer_spec: str | None = None, progress: bool = False) -> dict:
    """Load a checkpoint (or run directory) with `load_checkpoint` and evaluate it on a canary questions file."""
    from tokfilter.evaluate.loading import load_checkpoint

    records = read_questions(questions)
    model, tokenizer = load_checkpoint(path, tokenizer_spec, device)
    return evaluate_canaries(model, tokenizer, records, progress=progress)
