"""CLI: `tokfilter tokenize` (corpus -> shards) and `tokfilter shards verify`."""

from __future__ import annotations

import argparse
import json
import os

from tokfilter.corpus.readers import ReadStats, read_corpus
from tokfilter.errors import UserError
from tokfilter.shards.verify import verify
from tokfilter.shards.writer import DEFAULT_SHARD_TOKENS, write_shards
from tokfilter.tokenizer import load_tokenizer


def register(subparsers: argparse._SubParsersAction) -> None:
    tok = subparsers.add_parser(
        "tokenize", help="tokenize a corpus into token shards",
        description="Tokenize CORPUS sources (files, globs, DOMAIN=PATH, demo, hf:NAME) into a shard directory.")
    tok.add_argument("corpus", nargs="+", metavar="CORPUS")
    tok.add_argument("--tokenizer", required=True, metavar="SPEC",
                     help="tokenizer.json path, a .tiktoken ranks file, or tiktoken:NAME")
    tok.add_argument("--out", required=True, metavar="DIR")
    tok.add_argument("--text-field", default="text")
    tok.add_argument("--id-field", default="id")
    tok.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                     help="tokenizer processes (default: all cores; 1 = in-process)")
    tok.add_argument("--shard-tokens", type=int, default=DEFAULT_SHARD_TOKENS,
                     help=f"tokens per shard before a new one starts (default {DEFAULT_SHARD_TOKENS})")
    tok.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                   help="no progress bar on stderr (--quiet is an alias)")
    tok.set_defaults(func=run_tokenize)

    shards = subparsers.add_parser("shards", help="inspect token shards")
    shards_sub = shards.add_subparsers(dest="shards_command", metavar="ACTION")
    shards_sub.required = True
    ver = shards_sub.add_parser("verify", help="check every invariant of a shard directory",
                                description="Exit 0 if every invariant holds, else exit 2 naming the first violation.")
    ver.add_argument("dir", metavar="SHARDS")
    ver.add_argument("--tokenizer", metavar="SPEC", help="also check that this tokenizer made the shards")
    ver.add_argument("--no-hashes", action="store_true", help="skip sha256 checks (faster)")
    ver.set_defaults(func=run_verify)


def run_tokenize(args: argparse.Namespace) -> int:

    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.shard_tokens < 1:
        raise UserError(f"--shard-tokens must be >= 1, got {args.shard_tokens}")
    tokenizer = load_tokenizer(args.tokenizer)
    stats = ReadStats()
    documents = read_corpus(args.corpus, text_field=args.text_field, id_field=args.id_field, stats=stats)
    manifest = write_shards(documents, tokenizer, args.out, sources=list(args.corpus), shard_tokens=args.shard_tokens,
                            workers=args.workers, text_field=args.text_field, read_stats=stats,
                            progress=not args.no_progress)
    summary = {key: manifest[key] for key in ("num_shards", "num_documents", "num_tokens",
                                              "empty_documents_skipped", "dtype")}
    print(json.dumps({"out": args.out, **summary}))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    summary = verify(args.dir, tokenizer_spec=args.tokenizer, check_hashes=not args.no_hashes)
    print(json.dumps({"ok": True, **summary}))
    return 0
