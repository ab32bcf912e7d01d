"""`tokfilter train --config FILE.toml [--set section.key=value ...] [--out DIR]`.

Prints the run summary as one JSON object on stdout; progress goes to stderr. The same entry point runs under
`torchrun --nproc_per_node N -m tokfilter.train ...` for data-parallel training (only rank 0 prints).
"""

from __future__ import annotations

import argparse
import json
import os

from tokfilter.atomic import check_writable_dir
from tokfilter.train.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=False, help="training config (TOML); defaults are used when omitted")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value, e.g. --set filter.mode=remove (repeatable)")
    parser.add_argument("--out", help="run directory (checkpoint/, log.jsonl, summary.json); overrides run.out")


def run_train(args: argparse.Namespace) -> int:
    from tokfilter.train.loop import train

    config = load_config(args.config, args.overrides)
    if args.out or config.run.out:  # (neither: train() says so)
        check_writable_dir(args.out or config.run.out)
    summary = train(config, args.out)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="pretrain a GPT with none/document/mask/remove filtering",
        description="Pretrain a GPT on token shards with document filtering, token loss-masking or token removal "
                    "applied at load time from a score sidecar. Resumes from OUT/checkpoint when present.")
    add_arguments(parser)
    parser.set_defaults(func=run_train)
