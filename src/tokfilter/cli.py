"""The `tokfilter` command line: one command table, lazy imports derived from it, one handler convention.

`COMMANDS` maps each top-level command to the module that defines it. Such a module exposes
`register(subparsers)`, which adds its commands' parsers and sets `func` on each to a handler
`run_<name>(args) -> int` (the exit code). Only the module of the command being run is imported, so
`tokfilter tokenize` or `tokfilter view` start without torch; `tokfilter --help` imports them all.
`UserError` (bad input the user can fix) becomes one line on stderr and exit code 2, and so does an `OSError`
(an output place that cannot be written: read-only, a file where a folder goes); a closed stdout ends quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tokfilter import __version__
from tokfilter.errors import UserError

COMMANDS: dict[str, str] = {
    "corpus": "tokfilter.corpus.cli",
    "tokenizer": "tokfilter.tokenizer.cli",
    "tokenize": "tokfilter.shards.cli",
    "shards": "tokfilter.shards.cli",
    "labels": "tokfilter.labels.cli",
    "label": "tokfilter.labels.cli",
    "classifier": "tokfilter.classify.cli",
    "annotate": "tokfilter.annotate.cli",
    "export": "tokfilter.annotate.cli",
    "train": "tokfilter.train.cli",
    "eval": "tokfilter.evaluate.cli",
    "slowdown": "tokfilter.evaluate.cli",
    "attack": "tokfilter.posthoc.cli",
    "unlearn": "tokfilter.posthoc.cli",
    "align": "tokfilter.posthoc.cli",
    "generate": "tokfilter.posthoc.cli",
    "demo": "tokfilter.pipeline.cli",
    "run": "tokfilter.pipeline.cli",
    "canaries": "tokfilter.canaries.cli",
    "report": "tokfilter.report.cli",
    "view": "tokfilter.report.cli",
}


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit 2), like every other bad input; subparsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with a known `command`, only the module that defines it is imported."""
    parser = _Parser(
        prog="tokfilter",
        description="Capability shaping by token-level pretraining-data filtering.",
    )
    parser.add_argument("--version", action="version", version=f"tokfilter {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
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
    except BrokenPipeError:  # stdout closed early (`tokfilter ... | head`): stop quietly, as other Unix tools do;
        # caught before OSError, of which it is a subclass
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:  # an output place that cannot be written (read-only, a file where a folder goes, ...)
        where = f"{err.filename}: " if err.filename else ""
        print(f"tokfilter: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
