"""Multiple-choice evaluation: cloze and letter scoring over the standard MCQ files (`mcq_data`).

Scoring (PAPER.md, "Multiple choice"):

    cloze   for base models. Prompt `Question: {question}\\nAnswer:`, continuation ` {option}` for every option; the
            option with the highest summed log-probability wins (`accuracy`). Length-normalised variants are reported
            alongside from the same log-probs: per character of the option (`accuracy_per_char`) and per option
            token (`accuracy_per_token`); they favour long options less. `accuracy_pmi` ranks options by
            log p(option | question) - log p(option | "Answer:"), the pointwise mutual information of option and
            question (Holtzman et al. 2021, "surface form competition"; lm-eval's `acc_mutual_info`): it discounts
            options that are likely whatever the question, and is the most sensitive of the four for small models
            (on the ontology probes a 0.26M-parameter model trained on 1M demo tokens scores ~0.35-0.45 with it,
            ~0.25-0.3 without). It costs one extra, short forward row per option.
    letter  for instruction-tuned models. Prompt lists the options `A. ...` and ends in `Answer:`; the continuations
            are ` A`, ` B`, ...; the letter with the highest log-probability wins.

`chance` is the mean of 1 / number-of-options over the scored questions (0.25 for four options). Results are
aggregated per subject and, for subjects of the MMLU groups (`mcq_data.MMLU_GROUPS`), per group (micro average over
the group's questions). `accuracy_stderr` is the binomial standard error sqrt(p (1 - p) / n), to tell "at chance"
from "above chance" on small sets. Questions stream from the file in chunks, so files of any size fit in memory.
"""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator

from tqdm import tqdm

from tokfilter.errors import UserError
from tokfilter.evaluate.mcq_data import MCQ, MMLU_GROUPS, MCQReader
from tokfilter.evaluate.scoring import LogLikelihoodScorer
from tokfilter.tokenizer import Tokenizer

SCORINGS = ("cloze", "letter")
UNCONDITIONAL_CONTEXT = "Answer:"  # PMI baseline context, as lm-evaluation-harness's acc_mutual_info


def cloze_prompt(q: MCQ) -> tuple[str, list[str]]:
    return f"Question: {q.question.strip()}\nAnswer:", [" " + c.strip() for c in q.choices]


def letter_prompt(q: MCQ) -> tuple[str, list[str]]:
    lines = [f"Question: {q.question.strip()}"]
    lines += [f"{letter}. {choice.strip()}" for letter, choice in zip(q.letters, q.choices, strict=True)]
    return "\n".join(lines) + "\nAnswer:", [" " + letter for letter in q.letters]


class _Tally:
    def __init__(self) -> None:
        self.n = 0
        self.correct = defaultdict(int)
        self.chance = 0.0

    def add(self, hits: dict[str, bool], n_options: int) -> None:
        self.n += 1
        self.chance += 1.0 / n_options
        for key, hit in hits.items():
            self.correct[key] += int(hit)

    def merge(self, other: _Tally) -> None:
        self.n += other.n
        self.chance += other.chance
        for key, value in other.correct.items():
            self.correct[key] += value

    def summary(self) -> dict:
        out: dict = {"n": self.n}
        if self.n == 0:
            return out
        for key, value in self.correct.items():
            out[key] = round(value / self.n, 6)
        p = out["accuracy"]
        out["accuracy_stderr"] = round(math.sqrt(p * (1 - p) / self.n), 6)
        out["chance"] = round(self.chance / self.n, 6)
        return out


def _chunks(items: Iterable[MCQ], size: int) -> Iterator[list[MCQ]]:
    chunk: list[MCQ] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def score_questions(questions: Iterable[MCQ], scorer: LogLikelihoodScorer, tokenizer: Tokenizer,
                    scoring: str = "cloze", chunk_size: int = 64, progress: bool = True,
                    total: int | None = None) -> dict[str, _Tally]:
    """Score every question; returns a tally per subject."""
    if scoring not in SCORINGS:
        raise UserError(f"unknown --scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")
    prompt = cloze_prompt if scoring == "cloze" else letter_prompt
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    bar = tqdm(total=total, desc="mcq", unit="q", file=sys.stderr, disable=not progress)
    unconditional = [tokenizer.eot_id] + list(tokenizer.encode_ids(UNCONDITIONAL_CONTEXT))
    for chunk in _chunks(questions, chunk_size):
        requests, spans, option_info = [], [], []
        for q in chunk:
            context, continuations = prompt(q)
            ctx_ids = [tokenizer.eot_id] + list(tokenizer.encode_ids(context))
            cont_ids = tokenizer.encode_batch_ids(continuations)
            spans.append((len(requests), len(continuations)))
            option_info.append([(len(text.strip()), len(ids)) for text, ids in zip(continuations, cont_ids,
                                                                                    strict=True)])
            requests += [(ctx_ids, ids) for ids in cont_ids]
            if scoring == "cloze":  # the same options without the question, for PMI scoring
                requests += [(unconditional, ids) for ids in cont_ids]
        lls = [lp for lp, _ in scorer.loglikelihoods(requests)]
        for q, (start, k), info in zip(chunk, spans, option_info, strict=True):
            ll = lls[start: start + k]
            hits = {"accuracy": _argmax(ll) == q.answer}
            if scoring == "cloze":
                hits["accuracy_per_char"] = _argmax([v / max(1, c) for v, (c, _) in zip(ll, info, strict=True)]) \
                    == q.answer
                hits["accuracy_per_token"] = _argmax([v / max(1, t) for v, (_, t) in zip(ll, info, strict=True)]) \
                    == q.answer
                prior = lls[start + k: start + 2 * k]
                hits["accuracy_pmi"] = _argmax([v - p for v, p in zip(ll, prior, strict=True)]) == q.answer
            tallies[q.subject].add(hits, len(q.choices))
        bar.update(len(chunk))
    bar.close()
    return tallies


def summarize(tallies: dict[str, _Tally]) -> dict:
    """Overall, per-subject and per-group results from subject tallies."""
    total = _Tally()
    for tally in tallies.values():
        total.merge(tally)
    out = total.summary()
    out["per_subject"] = {subject: tallies[subject].summary() for subject in sorted(tallies)}
    groups = {}
    for name, subjects in MMLU_GROUPS.items():
        present = [s for s in subjects if s in tallies]
        if not present:
            continue
        group = _Tally()
        for s in present:
            group.merge(tallies[s])
        groups[name] = {**group.summary(), "subjects": len(present)}
    out["groups"] = groups
    return out


def evaluate_mcq(data: str, fmt: str, scorer: LogLikelihoodScorer, tokenizer: Tokenizer, scoring: str = "cloze",
                 limit: int | None = None, split: str | None = None, progress: bool = True) -> dict:
    """Read `data` in format `fmt`, score it, and return the JSON-ready result (see `tokfilter eval mcq`)."""
    started = time.time()
    reader = MCQReader(data, fmt, split=split, limit=limit)
    tallies = score_questions(reader, scorer, tokenizer, scoring=scoring, progress=progress, total=limit)
    summary = summarize(tallies)
    if summary["n"] == 0:
        detail = ", ".join(f"{k}: {v}" for k, v in reader.skipped.items()) or "empty"
        raise UserError(f"{data}: no usable {fmt} questions ({detail}); is --format right?")
    return {"format": fmt, "data": str(data), "scoring": scoring, "n": summary.pop("n"),
            "accuracy": summary.pop("accuracy"), "chance": summary.pop("chance"), **summary,
            "skipped": reader.skipped_report(), "files": len(reader.files),
            "seconds": round(time.time() - started, 2)}


def evaluate_sets(model, tokenizer: Tokenizer, sets: dict[str, tuple[str, str]] | list[str],
                  limit: int | None = None, scoring: str = "cloze", progress: bool = False) -> dict:
    """Accuracy of a loaded model on several MCQ sets: the `runs[].mcq` entry of results.json.

    `sets` maps a set name to (path, format); a list of names may use `probes_forget` / `probes_retain` (the
    shipped ontology probes) or `probes` (both). Each entry is {"n", "accuracy", "chance", "accuracy_stderr",
    ...} as `tokfilter eval mcq` reports it, without the per-subject breakdown."""
    from tokfilter.evaluate.loading import scorer_for
    from tokfilter.evaluate.probes import probe_path

    if isinstance(sets, list):
        named: dict[str, tuple[str, str]] = {}
        for name in sets:
            kinds = ("forget", "retain") if name == "probes" else (name.removeprefix("probes_"),)
            for kind in kinds:
                named[f"probes_{kind}"] = (str(probe_path(kind)), "jsonl")
        sets = named
    scorer = scorer_for(model, tokenizer)
    out = {}
    for name, (path, fmt) in sets.items():
        result = evaluate_mcq(path, fmt, scorer, tokenizer, scoring=scoring, limit=limit, progress=progress)
        out[name] = {k: v for k, v in result.items() if k not in ("per_subject", "data", "files", "format")}
    return out
