"""CLI: `tokfilter eval {mcq,loss,probes,lmeval}` and `tokfilter slowdown`.

Each command prints one JSON object on stdout (and, with --out, writes it atomically); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tokfilter.atomic import check_writable, emit_json
from tokfilter.errors import UserError


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint directory (or a run directory holding checkpoint/)")
    p.add_argument("--tokenizer", help="tokenizer SPEC the checkpoint must have been trained with (checked)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run_mcq(args: argparse.Namespace) -> int:
    from tokfilter.evaluate.loading import load_checkpoint, scorer_for
    from tokfilter.evaluate.mcq import SCORINGS, evaluate_mcq
    from tokfilter.evaluate.mcq_data import FORMATS, detect_format

    if args.format not in (*FORMATS, "auto"):
        raise UserError(f"unknown --format {args.format!r}; choose one of {', '.join(FORMATS)} or auto")
    if args.scoring not in SCORINGS:
        raise UserError(f"unknown --scoring {args.scoring!r}; choose one of {', '.join(SCORINGS)}")
    if not Path(args.data).exists():
        raise UserError(f"{args.data}: no such file or directory")
    if args.batch_tokens < 1:
        raise UserError(f"--batch-tokens must be >= 1, not {args.batch_tokens}")
    fmt = detect_format(args.data) if args.format == "auto" else args.format
    model, tokenizer = load_checkpoint(args.model, args.tokenizer, args.device)
    scorer = scorer_for(model, tokenizer, max_batch_tokens=args.batch_tokens)
    result = evaluate_mcq(args.data, fmt, scorer, tokenizer, scoring=args.scoring, limit=args.limit,
                          split=args.split, progress=not args.no_progress, seed=args.seed)
    return emit_json({"model": str(args.model), **result}, args.out)


def run_loss(args: argparse.Namespace) -> int:
    from tokfilter.evaluate.loading import load_checkpoint
    from tokfilter.evaluate.loss import evaluate_loss

    if not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], not {args.threshold}")
    model, tokenizer = load_checkpoint(args.model, args.tokenizer, args.device)
    result = evaluate_loss(model, tokenizer, args.data, labels=args.labels, threshold=args.threshold,
                           forget_domain=args.forget_domain, max_tokens=args.max_tokens,
                           progress=not args.no_progress)
    return emit_json({"model": str(args.model), **result}, args.out)


def run_probes_build(args: argparse.Namespace) -> int:
    from tokfilter.evaluate.probes import build_probes

    if args.n < 1:
        raise UserError(f"-n must be >= 1, not {args.n}")
    return emit_json(build_probes(args.shared_data, args.out, n=args.n, seed=args.seed, demo=args.demo), None)


def run_lmeval(args: argparse.Namespace) -> int:
    from tokfilter.evaluate.lmeval import run_lmeval

    result = run_lmeval(args.model, args.tasks.split(","), include_path=args.include_path, limit=args.limit,
                        device=args.device, num_fewshot=args.num_fewshot)
    return emit_json(result, args.out)


def run_slowdown(args: argparse.Namespace) -> int:
    from tokfilter.evaluate.slowdown import compute_slowdowns, load_runs
    from tokfilter.report.figures import plot_slowdowns

    if args.samples < 1:
        raise UserError(f"--samples must be >= 1, not {args.samples}")
    figure = args.figure or (str(Path(args.out).with_suffix(".png")) if args.out else None)
    for path in (args.out, figure):  # before anything is written: a bad --out must not leave a figure behind
        if path:
            check_writable(path)
    runs = load_runs(args.runs, metric=args.metric)
    result = compute_slowdowns(runs, samples=args.samples, method=args.bootstrap, seed=args.seed,
                               forget_domain=args.forget_domain)
    result = {"metric": args.metric, **result}
    for warning in result.get("warnings", []):
        print(f"tokfilter slowdown: warning: {warning}", file=sys.stderr)
    if figure:
        plot_slowdowns(result, figure)
        result["figure"] = figure
    return emit_json(result, args.out)


def register(subparsers) -> None:
    ev = subparsers.add_parser("eval", help="evaluate checkpoints: MCQ accuracy, domain loss, probes, lm-eval",
                               description="Evaluate tokfilter checkpoints.")
    sub = ev.add_subparsers(dest="eval_command", metavar="WHAT")
    sub.required = True

    p = sub.add_parser("mcq", help="multiple-choice accuracy on MMLU / MedAgents / ARC / generic JSONL files",
                       description="Score a checkpoint on a multiple-choice file or directory; prints one JSON object "
                                   "{format, prompt, n, accuracy, chance, per_subject, groups, skipped}; the prompts of "
                                   "mmlu, medagents and arc files are lm-evaluation-harness's (zero-shot).")
    _add_model_args(p)
    p.add_argument("--data", required=True, help="MCQ file or directory (MMLU: a dir of <subject>_<split>.csv)")
    p.add_argument("--format", default="auto", help="mmlu, medagents, arc, jsonl, or auto (default: guess)")
    p.add_argument("--scoring", default="cloze",
                   help="cloze (base models; also reports length-normalised accuracy) or letter (default cloze)")
    p.add_argument("--limit", type=int,
                   help="score N questions sampled evenly across subjects with --seed (mmlu, medagents, arc); the "
                        "first N of a generic jsonl file")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    p.add_argument("--split", help="MMLU: which subdirectory (test, val, dev) when --data holds several")
    p.add_argument("--batch-tokens", type=int, default=8192, help="token budget per forward batch (default 8192)")
    p.set_defaults(func=run_mcq)

    p = sub.add_parser("loss", help="per-domain held-out loss (nats/token, bits/byte, own-domain tokens)",
                       description="Held-out loss of a checkpoint per domain, on shards or a corpus.")
    _add_model_args(p)
    p.add_argument("--data", required=True, nargs="+",
                   help="a shard directory, or corpus specs (files, globs, DOMAIN=PATH, demo)")
    p.add_argument("--labels", help="score sidecar name on the shards (e.g. truth, forget) for own-domain loss")
    p.add_argument("--threshold", type=float, default=0.5, help="score >= threshold is a forget token (0.5)")
    p.add_argument("--forget-domain", default="forget", help="domain whose own tokens are the forget tokens")
    p.add_argument("--max-tokens", type=int, default=65536, help="tokens evaluated per domain (default 65536)")
    p.set_defaults(func=run_loss)

    p = sub.add_parser("probes", help="definition -> term probe MCQ sets from HPO (forget) and GO (retain)",
                       description="Build the ontology probe sets.")
    psub = p.add_subparsers(dest="probes_command", metavar="ACTION")
    psub.required = True
    b = psub.add_parser("build", help="write probes_forget.jsonl and probes_retain.jsonl",
                        description="Build definition -> term MCQ probes (generic JSONL) from ../shared/data.")
    b.add_argument("--out", required=True, help="output directory")
    b.add_argument("--shared-data", default=str(Path.cwd().parent / "shared" / "data"),
                   help="the shared data directory (default ../shared/data)")
    b.add_argument("-n", "--n", type=int, default=1000, help="questions per probe (default 1000)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--demo", default="any",
                   help="any (default), seen (definition in the embedded demo corpus' train split) or unseen "
                        "(in no demo split); every question records its `demo_split`")
    b.set_defaults(func=run_probes_build)

    p = sub.add_parser("lmeval", help="run lm-evaluation-harness tasks on a checkpoint (needs the lmeval extra)",
                       description="Evaluate a checkpoint with lm-evaluation-harness through the `tokfilter` model.")
    _add_model_args(p)
    p.add_argument("--tasks", required=True, help="comma-separated task names")
    p.add_argument("--include-path", help="directory of extra task YAML files")
    p.add_argument("--limit", type=int, help="examples per task")
    p.add_argument("--num-fewshot", type=int, default=None)
    p.set_defaults(func=run_lmeval)

    p = subparsers.add_parser("slowdown", help="relative compute slowdown of filtered runs vs the unfiltered fit",
                              description="Fit ln L = a + b ln C over unfiltered runs per domain and report each "
                                          "filtered run's compute slowdown with bootstrap CIs.")
    p.add_argument("--runs", required=True, nargs="+",
                   help="run directories (summary.json) or results.json files / directories")
    p.add_argument("--out", help="write the JSON result here (and the figure next to it as .png)")
    p.add_argument("--figure", help="figure path (default: --out with .png)")
    p.add_argument("--metric", default="loss", help="summary key holding per-domain losses (loss or loss_own)")
    p.add_argument("--forget-domain", help="domain reported as the headline `fit` (default: forget if present)")
    p.add_argument("--samples", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument("--bootstrap", default="runs", choices=["runs", "residuals"], help="what to resample")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_slowdown)
