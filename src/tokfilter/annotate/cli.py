"""`tokfilter annotate` (score shards once) and `tokfilter export` (scores -> data other trainers read)."""

from __future__ import annotations

import argparse
import json

from tokfilter.errors import UserError


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one threshold")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "annotate", help="score every token of a shard directory with a token classifier",
        description="Write NNNNN.scores.NAME.npy (float16 p(forget) per token) beside each shard. Resumable: "
                    "finished shards (NNNNN.scores.NAME.done.json) are skipped on a rerun. Prints a JSON summary.")
    p.add_argument("--classifier", required=True, metavar="DIR", help="classifier directory")
    p.add_argument("--shards", required=True, metavar="SHARDS", help="shard directory (tokfilter tokenize)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local processes or Ray tasks (default: local)")
    p.add_argument("--workers", type=int, default=1, help="parallel workers (default: 1)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per worker (default: 1; keep it fixed to get identical bytes across runs)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where each worker scores (default auto: a GPU when the worker sees one)")
    p.add_argument("--name", default="forget", help="score name (default: forget)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join an existing Ray cluster (HOST:PORT, ray://HOST:PORT or auto); default: start one")
    p.add_argument("--thresholds", type=_thresholds, default=(0.3, 0.5, 0.7), metavar="T,T,...",
                   help="report the fraction of tokens at or above these scores (default: 0.3,0.5,0.7)")
    p.add_argument("--batch-tokens", type=int, default=None, help="tokens per inference batch (default: 32768)")
    p.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                   help="no progress bar on stderr (--quiet is an alias)")
    p.add_argument("--loader", default=None, help=argparse.SUPPRESS)  # module:function, for tests and plugins
    p.set_defaults(func=run_annotate)

    e = subparsers.add_parser(
        "export", help="export scored shards at a threshold for other trainers (HF datasets, datatrove, dolma)",
        description="Turn stored scores into training data at one threshold and filtering mode. See docs/exports.md.")
    e.add_argument("format", choices=("hf", "datatrove", "dolma"), help="output format")
    e.add_argument("--shards", required=True, metavar="SHARDS", help="scored shard directory")
    e.add_argument("--name", default="forget", help="score name (default: forget)")
    e.add_argument("--threshold", type=float, default=None,
                   help="a token is forget when score >= this (default: the threshold recommended by the classifier "
                        "that wrote the scores, else 0.5)")
    e.add_argument("--mode", choices=("mask", "remove", "document"), default="mask",
                   help="mask: no loss on forget targets; remove: also hide them in the input; "
                        "document: drop whole documents (default: mask)")
    e.add_argument("--doc-threshold", type=float, default=0.5,
                   help="document mode: drop documents whose aggregate >= this (default 0.5)")
    e.add_argument("--doc-aggregate", choices=("mean", "frac"), default="mean",
                   help="document mode: mean token score, or fraction of tokens >= --threshold (default mean)")
    e.add_argument("--out", required=True, metavar="PATH", help="output directory (hf, datatrove) or .jsonl[.gz] (dolma)")
    e.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                   help="no progress bar on stderr (--quiet is an alias)")
    e.set_defaults(func=run_export)


def run_annotate(args: argparse.Namespace) -> int:
    from tokfilter.annotate.pipeline import annotate
    from tokfilter.annotate.score import BATCH_TOKENS, DEFAULT_LOADER

    if args.batch_tokens is not None and args.batch_tokens < 1:
        raise UserError(f"--batch-tokens {args.batch_tokens} must be positive")
    summary = annotate(args.classifier, args.shards, name=args.name, executor=args.executor, workers=args.workers,
                       thresholds=args.thresholds, ray_address=args.ray_address, threads=args.threads,
                       batch_tokens=args.batch_tokens or BATCH_TOKENS, loader=args.loader or DEFAULT_LOADER,
                       progress=not args.no_progress, device=args.device)
    print(json.dumps(summary))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from tokfilter.annotate import export
    from tokfilter.annotate.score import default_threshold

    for flag, value in (("--threshold", args.threshold), ("--doc-threshold", args.doc_threshold)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise UserError(f"{flag} must be in [0, 1], got {value}")
    threshold = args.threshold if args.threshold is not None else default_threshold(args.shards, args.name)
    summary = export.export(args.format, args.shards, args.out, name=args.name, threshold=threshold,
                            mode=args.mode, doc_threshold=args.doc_threshold, doc_aggregate=args.doc_aggregate,
                            progress=not args.no_progress)
    print(json.dumps(summary))
    return 0
