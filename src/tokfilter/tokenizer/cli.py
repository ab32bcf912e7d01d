"""CLI: `tokfilter tokenizer train CORPUS... --vocab-size N --out tokenizer.json`."""

from __future__ import annotations

import argparse
import json

from tokfilter.corpus.readers import read_corpus
from tokfilter.tokenizer.train import train_tokenizer


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenizer", help="train tokenizers")
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    sub.required = True
    train = sub.add_parser("train", help="train a byte-level BPE tokenizer on a corpus",
                           description="Byte-level BPE with <|endoftext|> and <|hidden|> special tokens.")
    train.add_argument("corpus", nargs="+", metavar="CORPUS")
    train.add_argument("--vocab-size", type=int, default=4096)
    train.add_argument("--min-frequency", type=int, default=2)
    train.add_argument("--text-field", default="text")
    train.add_argument("--out", required=True, metavar="tokenizer.json")
    train.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    texts = (doc.text for doc in read_corpus(args.corpus, text_field=args.text_field))
    tokenizer = train_tokenizer(texts, args.vocab_size, args.out, min_frequency=args.min_frequency)
    print(json.dumps({"out": args.out, "vocab_size": tokenizer.vocab_size, "hash": tokenizer.hash}))
    return 0
