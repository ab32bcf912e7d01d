"""Multiple-choice evaluation: cloze and letter scoring over the standard MCQ files (`mcq_data`).

Scoring (PAPER.md, "Multiple choice"); the prompt strings are in `prompts` and, for the standard formats (mmlu,
medagents, arc), reproduce lm-evaluation-harness 0.4.13's tasks exactly (zero-shot), so that the `accuracy` of a
checkpoint here is the `acc` lm-eval reports on the same questions (`mmlu_continuation` / `arc_easy` for cloze,
`mmlu` / `medqa_4options` / `medmcqa` for letter; see `prompts` for the table):

    cloze   for base models. The context ends in `Answer:` (MMLU: `mmlu_<subject>_continuation`, with its subject
            header; ARC: `arc_easy`; MedQA/MedMCQA and the project's own jsonl sets: `Question: {question}\nAnswer:`)
            and the continuation is ` {option}` for every option; the option with the highest summed log-probability
            wins (`accuracy`, lm-eval's `acc`). Length-normalised variants are reported alongside from the same
            log-probs: per character of the option (`accuracy_per_char`, lm-eval's `acc_norm`) and per option token
            (`accuracy_per_token`); they favour long options less. `accuracy_pmi` ranks options by
            log p(option | question) - log p(option | "Answer:"), the domain-conditional pointwise mutual information
            of option and question (Holtzman et al. 2021, "surface form competition"; lm-eval's `acc_mutual_info` is
            the same idea with an empty unconditional context, so the two differ): it discounts options that are
            likely whatever the question, and is the most sensitive of the four for small models (on the ontology
            probes a 0.26M-parameter model trained on 1M demo tokens scores ~0.35-0.45 with it, ~0.25-0.3 without).
            It costs one extra, short forward row per option.
    letter  for instruction-tuned models. The context lists the options `A. ...` and ends in `Answer:` (MMLU: `mmlu`
            with its subject header; MedQA: `medqa_4options`; MedMCQA: `medmcqa`); the continuations are ` A`,
            ` B`, ...; the letter with the highest log-probability wins.

Context and continuation are tokenized separately and the context is preceded by end-of-text, exactly as the lm-eval
adapter (`lmeval.TokfilterLM`) does, so both paths score identical token sequences. `--limit N` samples N questions
evenly over subjects with `--seed` (`mcq_data.MCQReader`; the project's jsonl sets keep their first N).

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
from tokfilter.evaluate.probes import probe_path
from tokfilter.evaluate.prompts import build_prompt, jsonl_cloze, jsonl_letter, template_for
from tokfilter.evaluate.scoring import LogLikelihoodScorer
from tokfilter.tokenizer import Tokenizer

SCORINGS = ("cloze", "letter")
# PMI baseline context: Holtzman et al.'s domain premise (lm-eval's acc_mutual_info uses an empty context instead).
UNCONDITIONAL_CONTEXT = "Answer:"


def cloze_prompt(q: MCQ) -> tuple[str, list[str]]:
    """The generic jsonl cloze prompt (`prompts.jsonl_cloze`); other formats: `prompts.build_prompt`."""
    return jsonl_cloze(q)


def letter_prompt(q: MCQ) -> tuple[str, list[str]]:
    """The generic jsonl letter prompt (`prompts.jsonl_letter`); other formats: `prompts.build_prompt`."""
    return jsonl_letter(q)


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
                    total: int | None = None, fmt: str = "jsonl") -> dict[str, _Tally]:
    """Score every question (prompted as `fmt` prescribes, see `prompts`); returns a tally per subject."""
    if scoring not in SCORINGS:
        raise UserError(f"unknown --scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    bar = tqdm(total=total, desc="mcq", unit="q", file=sys.stderr, disable=not progress)
    unconditional = [tokenizer.eot_id] + list(tokenizer.encode_ids(UNCONDITIONAL_CONTEXT))
    for chunk in _chunks(questions, chunk_size):
        requests, spans, option_info = [], [], []
        for q in chunk:
            context, continuations = build_prompt(q, fmt, scoring)
            ctx_ids = [tokenizer.eot_id] + list(tokenizer.encode_ids(context))
            cont_ids = tokenizer.encode_batch_ids(continuations)
            spans.append((len(requests), len(continuations)))
            # characters of the option itself (the continuation less its leading delimiter), as lm-eval's acc_norm
            option_info.append([(len(text) - 1, len(ids)) for text, ids in zip(continuations, cont_ids, strict=True)])
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
                 limit: int | None = None, split: str | None = None, progress: bool = True, seed: int = 0) -> dict:
    """Read `data` in format `fmt`, score it, and return the JSON-ready result (see `tokfilter eval mcq`).

    `limit` questions are sampled evenly over subjects with `seed` (the generic jsonl format: its first `limit`)."""
    started = time.time()
    reader = MCQReader(data, fmt, split=split, limit=limit, seed=seed)
    tallies = score_questions(reader, scorer, tokenizer, scoring=scoring, progress=progress, total=limit, fmt=fmt)
    summary = summarize(tallies)
    if summary["n"] == 0:
        detail = ", ".join(f"{k}: {v}" for k, v in reader.skipped.items()) or "empty"
        raise UserError(f"{data}: no usable {fmt} questions ({detail}); is --format right?")
    return {"format": fmt, "data": str(data), "scoring": scoring, "prompt": _prompt_names(fmt, scoring, tallies),
            **({"limit": limit, "seed": seed} if limit is not None else {}), "n": summary.pop("n"),
            "accuracy": summary.pop("accuracy"), "chance": summary.pop("chance"), **summary,
            "skipped": reader.skipped_report(), "files": len(reader.files),
            "seconds": round(time.time() - started, 2)}


def _prompt_names(fmt: str, scoring: str, tallies: dict[str, _Tally]) -> str:
    """The template name(s) used, e.g. `mmlu_continuation` (several, comma-separated, if subjects differed)."""
    return ",".join(sorted({template_for(fmt, scoring, subject) for subject in tallies} or
                           {template_for(fmt, scoring)}))


def evaluate_sets(model, tokenizer: Tokenizer, sets: dict[str, tuple[str, str]] | list[str],
                  limit: int | None = None, scoring: str = "cloze", progress: bool = False, seed: int = 0) -> dict:
    """Accuracy of a loaded model on several MCQ sets: the `runs[].mcq` entry of results.json.

    `sets` maps a set name to (path, format); a list of names may use `probes_forget` / `probes_retain` (the
    shipped ontology probes) or `probes` (both). Each entry is {"n", "accuracy", "chance", "accuracy_stderr",
    ...} as `tokfilter eval mcq` reports it, without the per-subject breakdown. `limit` is applied per set as
    `tokfilter eval mcq --limit` does (stratified over subjects with `seed`; the probe sets: their first `limit`)."""
    from tokfilter.evaluate.loading import scorer_for

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
        result = evaluate_mcq(path, fmt, scorer, tokenizer, scoring=scoring, limit=limit, progress=progress,
                              seed=seed)
        out[name] = {k: v for k, v in result.items() if k not in ("per_subject", "data", "files", "format")}
    return out
