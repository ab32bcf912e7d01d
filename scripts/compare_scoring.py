"""The same trained biLM scored two ways: in its document's windows ("window") and as the lower of that and its
sentence read alone ("sentence-min"); docs/classifiers.md, "Sentence-local scoring".

For each classifier folder and each scoring: a copy of the folder with `scoring` set in config.json, its threshold
chosen again on the demo benchmark's validation split (sentence-min scores are lower), then the spliced test F1 at
that threshold, the natural-text dev set per group (classify/devset) and scripts/context_bleed.py's rows. Nothing is
retrained: the weights are the folder's.

    python scripts/compare_scoring.py --run OUT_OF_TOKFILTER_DEMO --classifier DIR [--classifier DIR ...] \
        [--json FILE]

About a minute per classifier and scoring on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import context_bleed  # scripts/context_bleed.py (this script's folder is on sys.path)

from tokfilter.atomic import read_json, write_json
from tokfilter.classify.devset import evaluate_on_devset
from tokfilter.classify.settings import SCORINGS
from tokfilter.classify.train import evaluate_classifier
from tokfilter.labels.benchmark import load_benchmark


def measure(classifier: Path, scoring: str, valid: list, test: list, material: dict, samples: int) -> dict:
    """Every figure of one (classifier, scoring) row, on a copy of `classifier` set to score with `scoring`
    (`valid` / `test`: the benchmark's splits, read once by main)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "classifier"
        shutil.copytree(classifier, copy)
        config = read_json(copy / "config.json")
        config["scoring"] = scoring
        write_json(copy / "config.json", config)
        spliced = evaluate_classifier(copy, test, valid_items=valid)  # threshold chosen on valid, used on test
        config["threshold"] = spliced["threshold"]  # ... and by the dev set and the bleeding rows
        write_json(copy / "config.json", config)
        natural = evaluate_on_devset(copy)
        bleed = context_bleed.measure(material, str(copy), samples)
    return {"classifier": str(classifier), "scoring": scoring, "threshold": round(spliced["threshold"], 4),
            "test_f1": round(spliced["f1"], 4), "test_auroc": round(spliced["auroc"], 4),
            "flops_per_token": spliced["flops_per_token"],
            "natural": {group: {k: round(v[k], 4) for k in ("precision", "recall", "f1")} for group, v in natural.items()},
            "bleed": bleed["rows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="output folder of a finished demo (holds benchmark/)")
    parser.add_argument("--classifier", action="append", required=True, type=Path, help="biLM folder (repeatable)")
    parser.add_argument("--scoring", nargs="*", default=list(SCORINGS), choices=SCORINGS)
    parser.add_argument("--samples", type=int, default=80, help="insertions per bleeding row (default 80)")
    parser.add_argument("--json", type=Path, help="write every measurement here too")
    args = parser.parse_args()
    material, rows = context_bleed.load_inputs(args.run), []
    valid, test = (load_benchmark(args.run / "benchmark", split) for split in ("valid", "test"))
    for classifier in args.classifier:
        for scoring in args.scoring:
            row = measure(classifier, scoring, valid, test, material, args.samples)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.json:
        write_json(args.json, {"run": str(args.run), "samples": args.samples, "rows": rows})


if __name__ == "__main__":
    main()
