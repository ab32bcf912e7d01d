"""The `tokfilter` command line.

Each capability lives in its own module that exposes `register(subparsers)`; this file only wires them together and
turns `UserError` (bad input the user can fix) into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tokfilter import __version__
from tokfilter.errors import UserError

# Modules that add subcommands. Each defines `register(subparsers)` and sets `func` on its parsers.
COMMAND_MODULES = [
    "tokfilter.corpus.cli",
    "tokfilter.tokenizer.cli",
    "tokfilter.shards.cli",
    "tokfilter.train.cli",
    "tokfilter.evaluate.cli",
    "tokfilter.demo",
    "tokfilter.report.html",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokfilter",
        description="Capability shaping by token-level pretraining-data filtering.",
    )
    parser.add_argument("--version", action="version", version=f"tokfilter {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except UserError as err:
        message = " ".join(str(err).split()) or err.__class__.__name__
        print(f"tokfilter: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tokfilter: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
