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
    "tokfilter.labels.cli",
    "tokfilter.train.cli",
    "tokfilter.evaluate.cli",
    "tokfilter.demo",
    "tokfilter.report.html",
    "tokfilter.annotate.cli",
    "tokfilter.report.view",
    "tokfilter.classify.cli",
    "tokfilter.robust_cli",
]


# Command -> module, so `tokfilter tokenize` imports only what tokenizing needs (not torch): start-up in a fraction
# of a second. Commands missing here still work; they just load every module above.
COMMAND_INDEX = {
    "corpus": "tokfilter.corpus.cli",
    "tokenizer": "tokfilter.tokenizer.cli",
    "tokenize": "tokfilter.shards.cli",
    "shards": "tokfilter.shards.cli",
    "report": "tokfilter.report.html",
    "eval": "tokfilter.evaluate.cli",
    "slowdown": "tokfilter.evaluate.cli",
    "demo": "tokfilter.demo",
    "run": "tokfilter.demo",
    "label": "tokfilter.labels.cli",
    "labels": "tokfilter.labels.cli",
    "train": "tokfilter.train.cli",
    "annotate": "tokfilter.annotate.cli",
    "export": "tokfilter.annotate.cli",
    "view": "tokfilter.report.view",
    "attack": "tokfilter.robust_cli",
    "unlearn": "tokfilter.robust_cli",
    "align": "tokfilter.robust_cli",
}


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit 2), like every other bad input; subparsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `command` given and indexed, only that command's module is imported."""
    parser = _Parser(
        prog="tokfilter",
        description="Capability shaping by token-level pretraining-data filtering.",
    )
    parser.add_argument("--version", action="version", version=f"tokfilter {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    modules = [COMMAND_INDEX[command]] if command in COMMAND_INDEX else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command)
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
