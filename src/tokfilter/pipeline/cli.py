"""CLI: `tokfilter demo` (the shipped demo experiment on the embedded corpus) and `tokfilter run EXPERIMENT.toml`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokfilter.atomic import check_writable_dir
from tokfilter.pipeline.experiment import load_experiment, shipped_experiment
from tokfilter.pipeline.plan import format_plan, make_plan


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the whole pipeline on the embedded real demo corpus",
        description="Label, classify, score, pretrain (none/document/mask/remove), evaluate and report on the "
                    "embedded demo corpus. Stages are cached: a rerun with nothing changed takes seconds.")
    demo.add_argument("--out", default="tokfilter-demo", metavar="DIR", help="output directory (default %(default)s)")
    demo.add_argument("--quick", action="store_true", help="smallest settings: about 5 minutes on 2 CPU cores")
    demo.add_argument("--force", action="store_true", help="recompute every stage")
    demo.add_argument("--plan", action="store_true", help="print the plan (data per split, runs, time estimate); "
                                                          "train nothing")
    demo.set_defaults(func=run_demo)
    run = subparsers.add_parser("run", help="run an experiment file end to end",
                                description="Run every stage of EXPERIMENT.toml (see experiments/).")
    run.add_argument("experiment", metavar="EXPERIMENT.toml")
    run.add_argument("--out", metavar="DIR", help="output directory (default: runs/<experiment name>)")
    run.add_argument("--force", action="store_true", help="recompute every stage")
    run.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override one experiment setting (repeatable; the value is read as TOML), e.g. "
                          "--set classifier.labels='\"sentence\"' --set seeds=[0,1]")
    run.add_argument("--plan", "--dry-run", dest="plan", action="store_true",
                     help="print the plan: documents and tokens per domain and split, the runs with their budgets, "
                          "stages that will be skipped and why, data problems, and a wall-time estimate measured on "
                          "this machine; exits without training (exit 2 when the data cannot support the plan)")
    run.set_defaults(func=run_experiment)


def _execute(experiment_path: Path, out: Path, force: bool, plan_only: bool = False, sets: list[str] = ()) -> int:
    from tokfilter.pipeline.results import print_summary
    from tokfilter.pipeline.run import run_pipeline  # torch

    exp = load_experiment(experiment_path, sets=sets)
    if plan_only:
        plan = make_plan(exp, measure=True)
        print(format_plan(plan))
        plan.check()
        return 0
    check_writable_dir(out)  # a file there, or a place no folder can be made: one line, before any stage
    results = run_pipeline(exp, out, force=force)
    print_summary(results)
    print(json.dumps({"out": str(out), "results": str(out / "results.json"), "report": str(out / "report.html"),
                      "wall_seconds": results["wall_seconds"]}))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    return _execute(shipped_experiment("demo-quick" if args.quick else "demo"), Path(args.out), args.force,
                    args.plan)


def run_experiment(args: argparse.Namespace) -> int:
    path = Path(args.experiment)
    out = Path(args.out) if args.out else Path("runs") / path.stem
    return _execute(path, out, args.force, args.plan, args.sets)
