"""biLM vs every baseline on the exact-span benchmark's test split: token F1, AUROC, params, FLOPs per token.

    python benchmarks/classifier_f1.py [--budget quick|full] [--kinds bilm,forward,windowed,document,encoder]
                                       [--bench DIR] [--out DIR] [--threads 2]

Builds the demo exact-span benchmark (seed 0) unless --bench is given, trains every kind with one shared LM
pretraining (`tokfilter.classify.train_classifiers`), prints one line per classifier and, last, one JSON object with
"ratio" = biLM test F1 / best baseline test F1 (> 1 means the biLM beats every baseline).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from tokfilter.classify import train_classifiers
from tokfilter.labels.benchmark import build_benchmark, load_benchmark
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="quick")
    parser.add_argument("--kinds", default="bilm,forward,windowed,document")
    parser.add_argument("--bench", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.out or tempfile.mkdtemp(prefix="tokfilter-clf-"))
    bench = Path(args.bench) if args.bench else work / "bench"
    if not args.bench:
        build_benchmark(bench, seed=0)
    splits = {s: load_benchmark(bench, s) for s in ("train", "valid", "test")}
    t0 = time.perf_counter()
    results = train_classifiers(args.kinds.split(","), splits["train"], splits["valid"],
                                load_tokenizer(default_tokenizer_spec()), work / "classifiers", args.budget,
                                test_items=splits["test"])
    for kind, m in results.items():
        print(f"{kind:9s} F1 {m['f1']:.4f}  AUROC {m['auroc']:.4f}  P {m['precision']:.3f}  R {m['recall']:.3f}  "
              f"params {m['params']:,}  FLOPs/token {m['flops_per_token']:,.0f}  {m['seconds']:.1f} s")
    baselines = {k: m["f1"] for k, m in results.items() if k != "bilm"}
    best = max(baselines.values()) if baselines else float("nan")
    print(json.dumps({"ratio": round(results["bilm"]["f1"] / best, 4) if "bilm" in results else None,
                      "bilm_f1": results.get("bilm", {}).get("f1"), "best_baseline_f1": best,
                      "f1": {k: m["f1"] for k, m in results.items()},
                      "auroc": {k: m["auroc"] for k, m in results.items()},
                      "seconds": round(time.perf_counter() - t0, 1), "budget": args.budget}))


if __name__ == "__main__":
    main()
