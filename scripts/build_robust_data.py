"""Rebuild the small instruction/QA samples shipped in src/tokfilter/posthoc/data/ from ../shared/data.

    python scripts/build_robust_data.py [--shared ../shared/data] [--seed 0]

They let `tokfilter align refusal` and `tokfilter generate` run without ../shared (the full files are used when
given explicitly). Same inputs and seed give byte-identical files (gzip with mtime 0). Outputs:

    healthsearchqa.txt.gz        every HealthSearchQA question (one per line, file order)
    alpaca_sample.json.gz        800 Alpaca records {instruction, input, output}, chosen at random among those
                                 with a non-empty output whose three fields total <= 400 characters (they fit
                                 a 128-256-token context)
    medquad_qa_sample.jsonl.gz   240 MedQuAD {id, collection, question, answer} pairs (answer cut at a sentence
                                 end <= 700 characters), excluding the GHR collection, GARD's HPO symptom-table boilerplate and every question that
                                 appears in the embedded demo corpus, so they are held out from demo training
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "tokfilter" / "posthoc" / "data"
DEMO = ROOT / "src" / "tokfilter" / "corpus" / "demo_data" / "forget.jsonl.gz"


def write_gz(path: Path, text: str) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as fh:
        fh.write(text.encode("utf-8"))
    path.write_bytes(buf.getvalue())


def cut(answer: str, limit: int = 700) -> str:
    answer = " ".join(answer.split())
    if len(answer) <= limit:
        return answer
    head = answer[:limit]
    end = head.rfind(". ")
    return head[: end + 1] if end > 200 else head.rsplit(" ", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shared = Path(args.shared)
    rng = random.Random(args.seed)
    OUT.mkdir(parents=True, exist_ok=True)

    questions = (shared / "instructions" / "healthsearchqa.txt").read_text(encoding="utf-8")
    write_gz(OUT / "healthsearchqa.txt.gz", "".join(q.strip() + "\n" for q in questions.splitlines() if q.strip()))

    alpaca = json.loads((shared / "instructions" / "alpaca_5000.json").read_text(encoding="utf-8"))
    short = [r for r in alpaca if r["output"].strip() and len(r["instruction"]) + len(r["input"]) + len(r["output"]) <= 400]
    sample = rng.sample(short, 800)
    write_gz(OUT / "alpaca_sample.json.gz", json.dumps(sample, ensure_ascii=False, indent=0) + "\n")

    with gzip.open(DEMO, "rt", encoding="utf-8") as fh:
        demo_questions = {json.loads(line)["text"].split("\n", 1)[0].strip() for line in fh}
    pairs = []
    with gzip.open(shared / "corpora" / "medquad_answers.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if "\n" not in record["text"] or record.get("collection", "").startswith("3_GHR"):
                continue
            question, answer = record["text"].split("\n", 1)
            question = question.strip()
            if question in demo_questions or len(answer) < 200 or "Human Phenotype Ontology provides" in answer:
                continue
            pairs.append({"id": record["id"], "collection": record.get("collection", ""), "question": question,
                          "answer": cut(answer)})
    rng.shuffle(pairs)
    seen, chosen = set(), []
    for pair in pairs:
        if pair["question"] not in seen:
            seen.add(pair["question"])
            chosen.append(pair)
        if len(chosen) == 240:
            break
    write_gz(OUT / "medquad_qa_sample.jsonl.gz",
             "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in chosen))
    for name in ("healthsearchqa.txt.gz", "alpaca_sample.json.gz", "medquad_qa_sample.jsonl.gz"):
        print(name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
