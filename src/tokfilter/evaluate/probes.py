"""Definition -> term probe questions from real ontologies: extra forget / retain probes that tiny models can move on.

Standard MCQ sets (MMLU, MedQA) sit at chance for models of a few million parameters, so they cannot show what
filtering removed at demo scale. These probes ask for the term that matches a real ontology definition, with three
distractor terms from the same ontology (and, for GO, the same namespace: process / function / component). Of 60
random same-group candidates, those within 0.75-1.33x the answer's length (so that neither summed log-likelihood nor
a length prior can pick the answer: with unmatched lengths an untrained model scored 0.32 on 300 questions) and then
the three sharing the most content words with the definition are kept, so the answer is not the only option that
echoes the definition's wording:

    forget probe   Human Phenotype Ontology definitions (medicine), `probes_forget.jsonl`, subject `medicine_hpo`
    retain probe   Gene Ontology definitions (biology),               `probes_retain.jsonl`, subject `biology_go`

Source: ../shared/data/corpora/{hpo,go}_definitions.jsonl.gz, whose `text` is "Term name. Definition". A question is
kept only when the definition has 6-40 words, the name has at most 8 words, and neither the answer nor any distractor
appears verbatim in the definition (no copy-the-word shortcut). Sampling is seeded, so a build is reproducible.
Files are the project's generic MCQ JSONL (`tokfilter eval mcq --format jsonl`); each question also records
`demo_split`, the split of the embedded demo corpus whose documents contain its definition (null when none do).
`--demo seen` keeps definitions of the demo's train split: facts a demo model could have learned from its data, which
is what filtering should take away (models of a few million parameters do not generalise to unseen definitions);
`--demo unseen` keeps those in no demo split. The copy shipped in `probe_data/` (300 `seen` questions each, seed 0)
lets the demo run without ../shared; `probe_path(kind)` returns it.

Score probes with `accuracy_pmi` (see `mcq`): it cancels each option's prior likelihood, which otherwise dominates for
tiny models. Measured on the shipped copy (PMI accuracy forget / retain, 300 questions each, stderr ~0.026):
untrained 2-layer d=32 GPT 0.27 / 0.26; a 0.26M-parameter model trained on 1M demo tokens 0.30 / 0.38; 0.85M
parameters on 0.4M tokens: unfiltered 0.27 / 0.27, token masking 0.23 / 0.33, token removal 0.24 / 0.27. At that
scale the forget probe barely moves, the retain probe a little: expect a usable signal from a few million parameters
trained on the full demo corpus, not from the quick demo's models.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import defaultdict
from pathlib import Path

from tokfilter.atomic import write_json, write_text
from tokfilter.corpus.demo import load_demo
from tokfilter.errors import UserError
from tokfilter.jsonl import json_lines

PROBE_DATA = Path(__file__).parent / "probe_data"
PROBES = {  # kind -> (source file, file written, subject)
    "forget": ("hpo_definitions.jsonl.gz", "probes_forget.jsonl", "medicine_hpo"),
    "retain": ("go_definitions.jsonl.gz", "probes_retain.jsonl", "biology_go"),
}
PROMPT = "Which term is defined as follows? {definition}"
DISTRACTOR_CANDIDATES = 60


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3}


def probe_path(kind: str, directory: str | Path | None = None) -> Path:
    """Path of the forget/retain probe file in `directory` (default: the copy shipped with the package)."""
    if kind not in PROBES:
        raise UserError(f"unknown probe {kind!r}; choose forget or retain")
    return Path(directory or PROBE_DATA) / PROBES[kind][1]


def read_definitions(path: Path) -> list[tuple[str, str, str, str]]:
    """(id, name, definition, group) for every usable ontology entry of a definitions file."""
    entries = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for _, record in json_lines(fh, path):
            name, sep, definition = record["text"].partition(". ")
            if not sep:
                continue
            group = record.get("source", "").rsplit(" ", 1)[-1]  # GO: "(BP)" / "(MF)" / "(CC)"
            entries.append((record["id"], name.strip(), definition.strip(), group))
    return entries


def demo_splits(kind: str) -> dict[str, str]:
    """Lower-cased "Name. Definition" text -> the embedded demo corpus split ('train'/'valid'/'test') whose documents hold its definition."""

    source = {"forget": "hpo", "retain": "go"}[kind]
    found = {}
    for doc in load_demo(domains=kind):
        if doc.meta.get("source") != source:
            continue
        for paragraph in doc.text.split("\n\n"):
            found[paragraph.strip().lower()] = doc.meta["split"]
    return found


def build_questions(entries: list[tuple[str, str, str, str]], n: int, seed: int, subject: str,
                    splits: dict[str, str] | None = None, demo: str = "any") -> list[dict]:
    """`n` definition -> term questions with three same-group distractors each.

    `splits` maps lower-cased "Name. Definition" texts to the demo split holding them; `demo` keeps only questions whose
    definition is in the demo's train split ("seen"), in no demo split at all ("unseen"), or either ("any")."""
    splits = splits or {}
    rng = random.Random(seed)
    by_group: dict[str, list[str]] = defaultdict(list)
    for _, name, _, group in entries:
        by_group[group].append(name)
    candidates = [e for e in entries if 6 <= len(e[2].split()) <= 40 and len(e[1].split()) <= 8
                  and e[1].lower() not in e[2].lower()]
    rng.shuffle(candidates)
    questions = []
    for term_id, name, definition, group in candidates:
        if len(questions) == n:
            break
        split = splits.get(f"{name}. {definition}".lower())
        if (demo == "seen" and split != "train") or (demo == "unseen" and split is not None):
            continue
        pool = by_group[group]
        words = _content_words(definition)
        seen = {name.lower()}
        options = []
        for pick in (rng.choice(pool) for _ in range(DISTRACTOR_CANDIDATES)):
            if pick.lower() in seen or pick.lower() in definition.lower():
                continue
            seen.add(pick.lower())
            options.append((len(words & _content_words(pick)), rng.random(), pick))
        similar = [o for o in options if 0.75 <= len(o[2]) / len(name) <= 1.33]  # no length shortcut
        if len(similar) < 3:
            continue
        distractors = [pick for _, _, pick in sorted(similar, reverse=True)[:3]]
        answer = rng.randrange(4)
        choices = distractors[:answer] + [name] + distractors[answer:]
        questions.append({"id": term_id, "question": PROMPT.format(definition=definition), "choices": choices,
                          "answer": answer, "subject": subject, "demo_split": split})
    if len(questions) < n:
        raise UserError(f"only {len(questions)} usable {subject} definitions ({demo}) for {n} probe questions")
    return questions


def build_probes(shared_data: str | Path, out: str | Path, n: int = 1000, seed: int = 0, demo: str = "any") -> dict:
    """Write probes_forget.jsonl and probes_retain.jsonl (+ manifest.json) into `out`; returns the manifest."""
    if demo not in ("any", "seen", "unseen"):
        raise UserError(f"--demo {demo!r}: choose any, seen or unseen")
    corpora = Path(shared_data) / "corpora"
    manifest: dict = {"seed": seed, "prompt": PROMPT, "format": "jsonl", "demo": demo, "files": {}}
    for kind, (source, filename, subject) in PROBES.items():
        path = corpora / source
        if not path.is_file():
            raise UserError(f"{path}: ontology definitions not found (pass --shared-data DIR)")
        questions = build_questions(read_definitions(path), n, seed, subject, demo_splits(kind), demo)
        write_text(Path(out) / filename, "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))
        manifest["files"][kind] = {"file": filename, "subject": subject, "n": len(questions), "source": source}
    write_json(Path(out) / "manifest.json", manifest)
    return manifest
