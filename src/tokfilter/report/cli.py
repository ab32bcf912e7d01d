"""CLI: `tokfilter report DIR` (results.json -> report.html + figures) and `tokfilter view SHARDS_OR_RUN`."""

from __future__ import annotations

import argparse
import json

from tokfilter.report.view import write_view


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="results.json -> report.html + PNG figures",
                                   description="Regenerate DIR/report.html and DIR/figures/*.png from DIR/results.json.")
    parser.add_argument("dir", metavar="DIR")
    parser.set_defaults(func=run_report)

    p = subparsers.add_parser(
        "view", help="write a static HTML page highlighting scored tokens",
        description="Write one self-contained HTML page (no network) showing documents with tokens shaded by "
                    "score, a threshold slider and what mask / remove / document filtering would hide.")
    p.add_argument("path", metavar="SHARDS_OR_RUN", help="a shard directory, or a run/demo directory with shards/")
    p.add_argument("--out", default=None, metavar="PAGE.html",
                   help="output page (default: RUN/view.html for a run directory, ./view.html for shards)")
    p.add_argument("--name", default=None, help="score name (default: forget if present, else the first one)")
    p.add_argument("--docs", type=int, default=40, metavar="N", help="documents to show (default: 40)")
    p.set_defaults(func=run_view)


def run_report(args: argparse.Namespace) -> int:
    from tokfilter.report.html import make_report  # matplotlib: only when a report is made

    print(make_report(args.dir))
    return 0


def run_view(args: argparse.Namespace) -> int:
    print(json.dumps(write_view(args.path, args.out, args.name, args.docs)))
    return 0
