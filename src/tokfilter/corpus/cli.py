"""CLI: `tokfilter corpus stats SPEC...` — documents, words and tokens per domain."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from tokfilter.corpus.readers import ReadStats, read_corpus
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("corpus", help="inspect corpora")
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION")
    sub.required = True
    stats = sub.add_parser("stats", help="documents, words and tokens per domain",
                           description="SPEC: files, globs, DOMAIN=PATH, demo (the embedded corpus), "
                           "demo:DOMAIN[:SPLIT] (e.g. demo:forget:train), hf:NAME.")
    stats.add_argument("corpus", nargs="+", metavar="SPEC")
    stats.add_argument("--tokenizer", metavar="SPEC", help="tokenizer for the token counts "
                       "(default: the packaged demo BPE tokenizer)")
    stats.add_argument("--text-field", default="text")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=run_stats)


def corpus_stats(specs: list[str], tokenizer_spec: str | None = None, text_field: str = "text") -> dict:
    tokenizer = load_tokenizer(tokenizer_spec or default_tokenizer_spec())
    per_domain: dict[str, dict[str, int]] = defaultdict(lambda: {"documents": 0, "words": 0, "tokens": 0,
                                                                 "chars": 0})
    read = ReadStats()
    batch: list = []

    def flush() -> None:
        for doc, ids in zip(batch, tokenizer.encode_batch_ids([d.text for d in batch])):
            row = per_domain[doc.domain or "unknown"]
            row["documents"] += 1
            row["words"] += len(doc.text.split())
            row["tokens"] += len(ids)
            row["chars"] += len(doc.text)
        batch.clear()

    for document in read_corpus(specs, text_field=text_field, stats=read):
        batch.append(document)
        if len(batch) >= 256:
            flush()
    flush()
    total = {key: sum(row[key] for row in per_domain.values()) for key in ("documents", "words", "tokens", "chars")}
    return {"tokenizer": tokenizer.spec, "domains": dict(sorted(per_domain.items())), "total": total,
            "empty_documents_skipped": read.empty_skipped}


def run_stats(args: argparse.Namespace) -> int:
    result = corpus_stats(args.corpus, args.tokenizer, args.text_field)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'domain':<12}{'documents':>12}{'words':>14}{'tokens':>14}")
    for domain, row in [*result["domains"].items(), ("total", result["total"])]:
        print(f"{domain:<12}{row['documents']:>12,}{row['words']:>14,}{row['tokens']:>14,}")
    if result["empty_documents_skipped"]:
        print(f"empty documents skipped: {result['empty_documents_skipped']}")
    print(f"tokenizer: {result['tokenizer']}")
    return 0
