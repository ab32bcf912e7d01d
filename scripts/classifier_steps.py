"""Measure the natural-text classifier recipe one step at a time (docs/classifiers.md, "What each step does").

Trains the biLM on the label part of a finished full demo's benchmark (the same documents the demo's classifier
learns from, out of fold), with each step's settings on top of the `full` budget, and measures it on the benchmark's
test split and on the natural-text dev set, per group, at the validation threshold. One JSON line per step on stdout
and all of them in --json.

    python scripts/classifier_steps.py --run OUT_OF_TOKFILTER_DEMO [--steps NAME ...] [--seeds 0 1] [--json FILE]
    python scripts/classifier_steps.py --run OUT --steps probes --bleed --json FILE   # the variants of PROBES
    python scripts/classifier_steps.py --run OUT --steps natural --bleed --json FILE  # the natural training set
    python scripts/classifier_steps.py --run OUT --steps teacher --bleed --json FILE  # the teacher-labelled set
    python scripts/classifier_steps.py --run OUT --steps NAME --train-labels FILE ...  # label part relabelled
        # (scripts/teacher_relabel.py writes FILE: the teacher's labels on the host text)
    python scripts/classifier_steps.py --run OUT --steps NAME --set init=DIR ...  # a setting changed in every row
        # (e.g. LMs from `scripts/build_bilm_init.py --steps 4800 --out DIR`)

With --bleed each row also gets scripts/context_bleed.py's measurements of the trained classifier (how far its
verdict spreads from a document's context into a sentence of the other side; the canary documents' flagged share).
About 1-3 minutes per step and seed on 2 cores (+ 1 minute with --bleed).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import context_bleed  # scripts/context_bleed.py (this script's folder is on sys.path)

from tokfilter.atomic import write_json
from tokfilter.classify.devset import evaluate_on_devset
from tokfilter.classify.settings import budget_settings
from tokfilter.classify.train import train_classifier
from tokfilter.config import parse_override
from tokfilter.errors import UserError
from tokfilter.labels.benchmark import load_benchmark
from tokfilter.labels.spans import load_labels
from tokfilter.pipeline.experiment import ClassifierSection
from tokfilter.pipeline.folds import demo_label_part
from tokfilter.tokenizer import load_tokenizer

STEPS = {
    "full budget (before)": {},
    "+ LM pretraining 300 steps on the label part": {"pretrain_steps": 300},
    "+ packaged broad-text LMs": {"init": "packaged"},
    "+ packaged LMs, no adaptation": {"init": "packaged", "pretrain_steps": 0},
    "+ packaged LMs, 400 fine-tuning steps": {"init": "packaged", "finetune_steps": 400},
    "+ packaged LMs, 400 steps, mixes 0.5": {"init": "packaged", "finetune_steps": 400, "mix_fraction": 0.5},
    "+ packaged LMs, 400 steps, mixes 1.0": {"init": "packaged", "finetune_steps": 400, "mix_fraction": 1.0},
    "+ packaged LMs, 500 steps, mixes 2.0 (the demo's recipe)": {"init": "packaged", "finetune_steps": 500,
                                                                 "mix_fraction": 2.0},
    "+ packaged LMs, 600 steps, mixes 3.0": {"init": "packaged", "finetune_steps": 600, "mix_fraction": 3.0},
}

# variants around the recipe, measured for the canary problem (docs/classifiers.md, "The canary problem")
RECIPE = STEPS["+ packaged LMs, 500 steps, mixes 2.0 (the demo's recipe)"]
PROBES = {
    "previous recipe (full budget)": {},
    "recipe": RECIPE,
    "recipe, no LM adaptation": {**RECIPE, "pretrain_steps": 0},
    "recipe, 300 LM adaptation steps": {**RECIPE, "pretrain_steps": 300},
    "recipe, no adaptation, 200 fine-tuning steps": {**RECIPE, "pretrain_steps": 0, "finetune_steps": 200},
    "recipe, no adaptation, fine-tuning lr 5e-4": {**RECIPE, "pretrain_steps": 0, "finetune_lr": 5e-4},
    "recipe, no adaptation, LM loss kept (0.5)": {**RECIPE, "pretrain_steps": 0, "lm_weight": 0.5},
    "recipe, no adaptation, head on layers 0-1": {**RECIPE, "pretrain_steps": 0, "layers": [0, 1]},
    "previous recipe + mixes 2.0, 500 steps": {"mix_fraction": 2.0, "finetune_steps": 500},
}

# the hand-labelled natural training documents (classify/natural.py) on top of the full demo's previous recipe and the
# natural-text recipe, both scored with sentence-min (the same rows without them: docs/results/scoring.json)
SENTENCE_MIN = {"scoring": "sentence-min"}
NATURAL = {
    "previous recipe, sentence-min + natural x2": {**SENTENCE_MIN, "natural_copies": 2},
    "previous recipe, sentence-min + natural x5": {**SENTENCE_MIN, "natural_copies": 5},
    "recipe, sentence-min + natural x3": {**RECIPE, **SENTENCE_MIN, "natural_copies": 3},
    "recipe, sentence-min + natural x6 (both demos)": {**RECIPE, **SENTENCE_MIN, "natural_copies": 6},
    "recipe, sentence-min + natural x12": {**RECIPE, **SENTENCE_MIN, "natural_copies": 12},
}

# the teacher-labelled broad documents (scripts/build_teacher_labels.py) on top of the recipe with natural x6
BOTH = NATURAL["recipe, sentence-min + natural x6 (both demos)"]
TEACHER = {
    "recipe, sentence-min, natural x6 + teacher x1": {**BOTH, "teacher_copies": 1},
    "recipe, sentence-min, natural x6 + teacher x2": {**BOTH, "teacher_copies": 2},
    "recipe, sentence-min, natural x6 + teacher x4": {**BOTH, "teacher_copies": 4},
    "recipe, sentence-min, natural x6 + teacher x2, 1000 fine-tuning steps": {**BOTH, "teacher_copies": 2,
                                                                              "finetune_steps": 1000},
    "recipe, window scoring, natural x6": {**BOTH, "scoring": "window"},
    "recipe, window scoring, natural x6 + teacher x4": {**BOTH, "scoring": "window", "teacher_copies": 4},
}


def load_items(run: Path) -> dict:
    """The label part (training items), valid and test items of a finished demo's benchmark, and its tokenizer."""
    items = {"train": demo_label_part(run / "benchmark"),
             **{name: load_benchmark(run / "benchmark", name) for name in ("valid", "test")}}
    return {name: [(b.document, b.spans) for b in part] for name, part in items.items()} | {
        "tokenizer": load_tokenizer(str(run / "tokenizer.json"))}


def relabel(data: dict, path: Path) -> dict:
    """`data` with the label part's spans replaced by those of the labels file `path` (every document must have a
    record)."""
    labels = load_labels(path)
    missing = [doc.id for doc, _ in data["train"] if doc.id not in labels]
    if missing:
        raise SystemExit(f"{path}: no labels for {len(missing):,} label-part documents (first: {missing[0]})")
    return data | {"train": [(doc, labels[doc.id]) for doc, _ in data["train"]]}


def measure(data: dict, settings: dict, seed: int, bleed: dict | None = None) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train_classifier("bilm", data["train"], data["valid"], data["tokenizer"], Path(tmp) / "bilm", "full",
                                   test_items=data["test"], seed=seed, overrides=settings, log=lambda message: None)
        seconds = round(time.perf_counter() - start)
        natural = evaluate_on_devset(Path(tmp) / "bilm")
        bleed_rows = context_bleed.measure(bleed, str(Path(tmp) / "bilm"))["rows"] if bleed else None
    row = {"seed": seed, "test_f1": metrics["f1"], "seconds": seconds,
           "natural": {group: {k: round(v[k], 4) for k in ("precision", "recall", "f1", "keep_flagged")}
                       for group, v in natural.items()}}
    return row | ({"bleed": bleed_rows} if bleed_rows else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="output folder of a full `tokfilter demo`")
    parser.add_argument("--steps", nargs="*", default=list(STEPS),
                        help="step names of STEPS, PROBES, NATURAL or TEACHER, or `probes` / `natural` / `teacher` "
                             "for all of one group (default: all STEPS)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--bleed", action="store_true", help="add scripts/context_bleed.py's measurements per row")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="a classifier setting (TOML value) applied on top of every step's, e.g. init=DIR")
    parser.add_argument("--train-labels", type=Path, default=None,
                        help="labels JSONL replacing the label part's spans (scripts/teacher_relabel.py)")
    args = parser.parse_args()
    known = STEPS | PROBES | NATURAL | TEACHER
    groups = {"probes": PROBES, "natural": NATURAL, "teacher": TEACHER}
    names = [n for name in args.steps for n in (groups.get(name) or [name])]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r} (known: probes, natural, teacher, {', '.join(known)})")
    try:  # an unknown key or a bad value fails now, not after the data is read
        extra = dict(parse_override(pair) for pair in args.sets)
        budget_settings("full", extra)
    except UserError as err:
        parser.error(str(err))
    data, rows = load_items(args.run), []
    if args.train_labels:
        data = relabel(data, args.train_labels)
    bleed = context_bleed.inputs(data["test"]) if args.bleed else None  # once, from the test items already read
    for name in names:
        for seed in args.seeds:
            settings = {**known[name], **extra}
            row = {"step": name + "".join(f", {k} = {v}" for k, v in extra.items()), "settings": settings,
                   **measure(data, settings, seed, bleed)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.json:
        write_json(args.json, {"benchmark": str(args.run / "benchmark"), "label_fraction": ClassifierSection().label_fraction, "budget": "full",
                               "train_labels": str(args.train_labels) if args.train_labels else None, "rows": rows})


if __name__ == "__main__":
    main()
