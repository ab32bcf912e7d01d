"""`tokfilter demo`: the whole pipeline on the embedded real demo corpus (see `tokfilter.pipeline`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokfilter.corpus.readers import ReadStats, read_corpus
from tokfilter.shards.writer import write_shards
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the pipeline on the embedded demo corpus",
                                   description="Run tokfilter end to end on the embedded real demo corpus.")
    parser.add_argument("--out", default="tokfilter-demo", metavar="DIR", help="output directory")
    parser.add_argument("--quick", action="store_true", help="smallest settings (a few minutes on 2 cores)")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    tokenizer = load_tokenizer(default_tokenizer_spec())
    stats = ReadStats()
    manifest = write_shards(read_corpus("demo", stats=stats), tokenizer, out / "shards", sources=["demo"],
                            shard_tokens=1 << 20, workers=1, read_stats=stats)
    print(json.dumps({key: manifest[key] for key in ("num_shards", "num_documents", "num_tokens")}))
    return 0
