"""Ray scaling: `annotate` with the Ray executor, 2 workers vs 1, on the same real shards, in one run.

A local Ray instance with 2 CPUs; each worker uses 1 torch thread. Shards: real documents from the demo corpus
(three domains interleaved) in `--shards` small shards. Classifier: `--classifier DIR` (a trained tokfilter
classifier), or by default a freshly initialised `tokfilter.classify` biLM of the default size (2 x d=96, 2 layers,
seq 128: weights do not change the cost), saved as a classifier directory and loaded by every worker.
After a warm-up pass (Ray worker processes started, classifier loaded in each), passes alternate 1 worker / 2
workers on fresh copies of the shards; "ratio" = best 1-worker scoring time / best 2-worker scoring time (target >=
1.7 on 2 idle cores). Both runs' score files are checked byte-identical. Also reported, because wall-time
scaling on a shared machine measures the other jobs as much as us: the fraction of the run each worker spent
inside `score_shard` (1.0 = no scheduling gaps or start-up cost), the total CPU seconds (equal for 1 and 2 workers
when nothing is wasted), and the load average. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


def make_bench_classifier(directory: Path, tokenizer) -> tuple[Path, str]:
    """A biLM classifier directory of the default size with fresh weights, and the loader that reads it."""
    import torch

    import tokfilter.classify
    from tokfilter.annotate.score import DEFAULT_LOADER
    from tokfilter.classify.bilm import BiLM, BiLMConfig
    from tokfilter.classify.interface import save_classifier

    torch.manual_seed(0)
    cfg = BiLMConfig(vocab_size=tokenizer.vocab_size)
    save_classifier(directory, "bilm", tokenizer, BiLM(cfg).state_dict(), {"bilm": cfg.to_dict()}, 0.5)
    loader = DEFAULT_LOADER if hasattr(tokfilter.classify, "load_classifier") else \
        "tokfilter.classify.registry:load_classifier"
    return directory, loader


def make_shards(directory: Path, tokens: int, num_shards: int, tokenizer) -> None:
    from tokfilter.corpus.demo import load_demo
    from tokfilter.shards import write_shards, writer

    docs = {d: load_demo("train", d) for d in ("forget", "retain", "general")}
    chosen, words = [], 0
    for i in range(10_000):
        for domain in ("forget", "retain", "general"):
            if words < tokens * 0.75:
                chosen.append(docs[domain][i])
                words += len(docs[domain][i].text.split())
    # the writer closes a shard only at a batch boundary: small batches give the requested small shards
    saved = {k: getattr(writer, k) for k in dir(writer) if k.endswith("BATCH_DOCS")}
    for key in saved:
        setattr(writer, key, 2)
    try:
        write_shards(chosen, tokenizer, directory, shard_tokens=max(tokens // num_shards, 1), progress=False)
    finally:
        for key, value in saved.items():
            setattr(writer, key, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", default=None, help="a trained tokfilter classifier directory (optional)")
    parser.add_argument("--tokens", type=int, default=120_000, help="approximate tokens to score per pass")
    parser.add_argument("--shards", type=int, default=8, help="number of shards (default 8)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import ray

    from tokfilter.annotate import annotate
    from tokfilter.annotate.score import DEFAULT_LOADER
    from tokfilter.tokenizer import load_tokenizer
    from tokfilter.tokenizer.core import default_tokenizer_spec

    work = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    try:
        tokenizer = load_tokenizer(default_tokenizer_spec())
        if args.classifier:
            classifier, loader = Path(args.classifier), DEFAULT_LOADER
        else:
            classifier, loader = make_bench_classifier(work / "classifier", tokenizer)
        source = work / "source"
        make_shards(source, args.tokens, args.shards, tokenizer)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")

        def run(workers: int, tag: str) -> dict:
            target = work / tag
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
            return annotate(classifier, target, executor="ray", workers=workers, loader=loader, progress=False)

        run(2, "warmup")
        times: dict[int, list[float]] = {1: [], 2: []}
        busy: dict[int, list[float]] = {1: [], 2: []}
        cpu: dict[int, list[float]] = {1: [], 2: []}
        summary = {}
        for r in range(args.repeats):
            for workers in (1, 2):
                summary = run(workers, f"w{workers}")
                wall = summary["scoring_seconds"]
                times[workers].append(wall)
                # fraction of the run each worker spent inside score_shard (1.0 = never idle, no start-up cost)
                busy[workers].append(sum(s["seconds"] for s in summary["per_shard"]) / (workers * wall))
                cpu[workers].append(sum(s["cpu_seconds"] for s in summary["per_shard"]))
                print(f"pass {r}: {workers} worker(s) {wall:.2f} s, busy {busy[workers][-1]:.2f}, "
                      f"CPU {cpu[workers][-1]:.2f} s", file=sys.stderr)
        ray.shutdown()
        one, two = work / "w1", work / "w2"
        identical = all((one / p.name).read_bytes() == p.read_bytes() for p in two.glob("*.scores.forget.npy"))
        tokens = summary["tokens"]
        t1, t2 = min(times[1]), min(times[2])
        from tokfilter.annotate.score import cached_classifier

        model = cached_classifier(classifier, loader)
        print(f"{summary['num_shards']} shards, {tokens:,} tokens; cores {os.cpu_count()}; "
              f"1 worker {t1:.2f} s ({tokens / t1:,.0f} tok/s), 2 workers {t2:.2f} s ({tokens / t2:,.0f} tok/s)")
        print(json.dumps({"benchmark": "ray_scaling", "shards": summary["num_shards"], "tokens": tokens,
                          "classifier_params": int(model.params), "flops_per_token": float(model.flops_per_token),
                          "seconds_1_worker": round(t1, 3), "seconds_2_workers": round(t2, 3),
                          "tokens_per_s_1_worker": round(tokens / t1), "tokens_per_s_2_workers": round(tokens / t2),
                          "busy_fraction_1_worker": round(max(busy[1]), 3),
                          "busy_fraction_2_workers": round(max(busy[2]), 3),
                          "cpu_seconds_1_worker": round(min(cpu[1]), 3), "cpu_seconds_2_workers": round(min(cpu[2]), 3),
                          "load_average": round(os.getloadavg()[0], 2),
                          "identical_bytes": identical, "ratio": round(t1 / t2, 3)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
