"""`tokfilter classifier train|eval`: train a token classifier on labelled text, or measure a saved one.

    tokfilter classifier train --data BENCH_DIR --tokenizer SPEC --out DIR [--kind bilm] [--budget quick]
    tokfilter classifier train --data CORPUS --labels WEAK.jsonl --valid-data BENCH_DIR --tokenizer SPEC --out DIR
    tokfilter classifier eval --classifier DIR --data BENCH_DIR [--split test] [--labels LABELS.jsonl]
                              [--group-by FIELD]

--data is an exact-span benchmark directory (`tokfilter labels benchmark`; its train / valid / test splits are used)
or a corpus spec with --labels (a weak label file: lexicon, document, SAE). Validation (threshold choice) comes from
--valid-data (a benchmark directory: its valid split with exact spans) or the benchmark's valid split; with a plain
corpus and no --valid-data, 5% of its documents are held out. Both commands print one JSON object on stdout; `eval`
also writes a precision-recall curve PNG (--pr-curve, default DIR/pr_curve_eval.png). `eval` adds the same metrics
per value of a document field under "groups" (--group-by FIELD: `domain` or any field of the JSONL records; by default
`group` when every document has one, as the natural-text dev set's do), so a set that mixes kinds of text shows where
the classifier fails, not only its average.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tokfilter.atomic import check_writable, check_writable_dir, emit_json
from tokfilter.classify.data import is_benchmark_dir, load_labeled
from tokfilter.classify.settings import budget_settings
from tokfilter.classify.train import evaluate_classifier, train_classifier
from tokfilter.config import parse_override
from tokfilter.corpus.normalize import unit_hash
from tokfilter.errors import UserError
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec

SUMMARY_KEYS = ("kind", "precision", "recall", "f1", "auroc", "threshold", "params", "flops_per_token")


def register(subparsers) -> None:
    parser = subparsers.add_parser("classifier", help="train / evaluate token classifiers (biLM and baselines)",
                                   description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="classifier_command", metavar="{train,eval}")
    sub.required = True

    train = sub.add_parser("train", help="train a token classifier", description=__doc__)
    train.add_argument("--data", required=True, help="benchmark directory, or corpus spec (with --labels)")
    train.add_argument("--labels", help="label file (JSONL char spans) for --data; overrides a benchmark's spans")
    train.add_argument("--valid-data", help="benchmark directory whose valid split (exact spans) picks the threshold")
    train.add_argument("--tokenizer", default=None, metavar="SPEC",
                       help="tokenizer spec (default: the packaged 4096 BPE)")
    train.add_argument("--out", required=True, metavar="DIR", help="classifier directory to write")
    train.add_argument("--kind", default="bilm", choices=["bilm", "forward", "windowed", "encoder", "document", "bilm-frozen", "forward-frozen"],
                       help="classifier kind; *-frozen = logistic probe on frozen LM features (layer sweep) instead "
                            "of end-to-end fine-tuning")
    train.add_argument("--budget", default="quick", choices=["quick", "full"])
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a budget setting, e.g. --set finetune_steps=300 (repeatable)")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=run_train)

    ev = sub.add_parser("eval", help="measure a classifier on labelled data", description=__doc__)
    ev.add_argument("--classifier", required=True, metavar="DIR")
    ev.add_argument("--data", required=True, help="benchmark directory, or corpus spec (with --labels)")
    ev.add_argument("--labels", help="label file for --data (required for a plain corpus)")
    ev.add_argument("--split", default="test", choices=["train", "valid", "test"], help="benchmark split")
    ev.add_argument("--threshold", type=float, default=None, help="default: the classifier's saved threshold")
    ev.add_argument("--pr-curve", default=None, metavar="PNG")
    ev.add_argument("--group-by", default=None, metavar="FIELD",
                    help="metrics per value of this document field as well (domain, or a JSONL field; default: "
                         "`group` when every document has one; `none` = overall only)")
    ev.set_defaults(func=run_eval)


def _parse_sets(pairs: list[str]) -> dict:
    """`--set KEY=VALUE` pairs (TOML values) as a dict; checked against ClassifierSettings by budget_settings."""
    return dict(parse_override(pair) for pair in pairs)


def _holdout(items: list, fraction: float = 0.05) -> tuple[list, list]:
    valid = [it for it in items if unit_hash(it[0].id) < fraction]
    train = [it for it in items if unit_hash(it[0].id) >= fraction]
    if not valid or not train:
        raise UserError("too few documents to hold out a validation set; pass --valid-data")
    return train, valid


def run_train(args: argparse.Namespace) -> int:
    overrides = _parse_sets(args.set)
    budget_settings(args.budget, overrides)  # a typo in --set fails now, not after the data is read
    check_writable_dir(args.out)  # and an unusable --out, not after training
    tokenizer = load_tokenizer(args.tokenizer or default_tokenizer_spec())
    test = None
    if is_benchmark_dir(args.data):
        train = load_labeled(args.data, args.labels, "train")
        valid = load_labeled(args.data, None, "valid")
        test = load_labeled(args.data, None, "test")
    else:
        train = load_labeled(args.data, args.labels, "train")
        valid = None
    if args.valid_data:
        if not is_benchmark_dir(args.valid_data):
            raise UserError(f"--valid-data {args.valid_data}: not a benchmark directory (manifest.json missing)")
        valid = load_labeled(args.valid_data, None, "valid")
        test = load_labeled(args.valid_data, None, "test")
    if valid is None:
        train, valid = _holdout(train)
    metrics = train_classifier(args.kind, train, valid, tokenizer, args.out, args.budget, test_items=test,
                               seed=args.seed, overrides=overrides)
    summary = {k: metrics[k] for k in SUMMARY_KEYS}
    summary.update({"split": metrics["split"], "out": str(args.out), "seconds": metrics["seconds"]})
    return emit_json(summary)


def run_eval(args: argparse.Namespace) -> int:
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], not {args.threshold}")
    items = load_labeled(args.data, args.labels, args.split)
    pr_curve = args.pr_curve or str(Path(args.classifier) / "pr_curve_eval.png")
    check_writable(pr_curve)  # before the scoring, not after it
    groups = document_groups(items, args.group_by)
    metrics = evaluate_classifier(args.classifier, items, threshold=args.threshold, pr_curve=pr_curve, groups=groups)
    if groups:
        metrics["group_by"] = args.group_by or "group"
    return emit_json(metrics)


def document_groups(items: list, field: str | None) -> dict[str, list[str]] | None:
    """{value: document ids} of `field` over the (document, spans) items, in order of first appearance; None when
    `field` is "none", or when it is not given and some document has no `group` field."""
    if field == "none":
        return None
    name = field or "group"
    values = [doc.domain if name == "domain" else doc.meta.get(name) for doc, _ in items]
    missing = [doc.id for (doc, _), value in zip(items, values) if value in (None, "")]
    if missing:
        if field is None:
            return None
        raise UserError(f"--group-by {field}: {len(missing):,} of {len(items):,} documents have no {field!r} field "
                        f"(first: {missing[0]!r})")
    groups: dict[str, list[str]] = {}
    for (doc, _), value in zip(items, values):
        groups.setdefault(str(value), []).append(doc.id)
    return groups
