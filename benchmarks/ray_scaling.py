"""Ray scaling: `annotate` with the Ray executor, 2 workers vs 1, on the same real shards, in one run.

A local Ray instance with 2 CPUs; each worker uses 1 torch thread. Shards: real documents from the demo corpus
(three domains interleaved) in `--shards` small shards. Classifier: `--classifier DIR` (a trained tokfilter
classifier), or by default a freshly initialised biLM of the default size (2 x d=96, 2 layers, seq 128: weights do
not change the cost), saved to a directory and loaded in the workers by `load_bench_classifier` below.
After a warm-up pass (Ray worker processes started, classifier loaded in each), passes alternate 1 worker / 2
workers on fresh copies of the shards; "ratio" = best 1-worker scoring time / best 2-worker scoring time (target >=
1.7 on 2 idle cores). Both runs' score files are checked byte-identical. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = str(Path(__file__).resolve().parent)
BENCH_LOADER = "ray_scaling:load_bench_classifier"


class BenchBiLM:
    """The classifier interface over `tokfilter.classify.bilm` (used until a trained classifier is given)."""

    def __init__(self, directory: str | Path):
        from safetensors.torch import load_file

        from tokfilter.classify.bilm import BiLM, BiLMConfig

        config = json.loads((Path(directory) / "config.json").read_text())
        self.model = BiLM(BiLMConfig.from_dict(config["bilm"])).eval()
        self.model.load_state_dict(load_file(str(Path(directory) / "model.safetensors")))
        self.kind, self.tokenizer_hash = "bilm", config["tokenizer_hash"]
        self.params, self.flops_per_token = self.model.num_params(), self.model.flops_per_token()

    def score_batch(self, docs: list[np.ndarray]) -> list[np.ndarray]:
        from tokfilter.classify.bilm import score_docs

        return score_docs(self.model, docs)

    def score_tokens(self, ids: np.ndarray) -> np.ndarray:
        return self.score_batch([ids])[0]


def load_bench_classifier(directory: str | Path) -> BenchBiLM:
    return BenchBiLM(directory)


def make_bench_classifier(directory: Path, tokenizer) -> Path:
    import torch
    from safetensors.torch import save_file

    from tokfilter.classify.bilm import BiLM, BiLMConfig

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = BiLMConfig(vocab_size=tokenizer.vocab_size)
    model = BiLM(cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"bilm": cfg.to_dict(), "tokenizer_hash": tokenizer.hash}))
    return directory


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

    sys.path.insert(0, HERE)  # Ray workers import this module by name for the default classifier
    os.environ["PYTHONPATH"] = os.pathsep.join([HERE, *filter(None, [os.environ.get("PYTHONPATH")])])
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
            classifier, loader = make_bench_classifier(work / "classifier", tokenizer), BENCH_LOADER
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
        summary = {}
        for r in range(args.repeats):
            for workers in (1, 2):
                summary = run(workers, f"w{workers}")
                times[workers].append(summary["scoring_seconds"])
                print(f"pass {r}: {workers} worker(s) {summary['scoring_seconds']:.2f} s", file=sys.stderr)
        ray.shutdown()
        one, two = work / "w1", work / "w2"
        identical = all((one / p.name).read_bytes() == p.read_bytes() for p in two.glob("*.scores.forget.npy"))
        tokens = summary["tokens"]
        t1, t2 = min(times[1]), min(times[2])
        from tokfilter.annotate.score import load_classifier

        model = load_classifier(classifier, loader)
        print(f"{summary['num_shards']} shards, {tokens:,} tokens; cores {os.cpu_count()}; "
              f"1 worker {t1:.2f} s ({tokens / t1:,.0f} tok/s), 2 workers {t2:.2f} s ({tokens / t2:,.0f} tok/s)")
        print(json.dumps({"benchmark": "ray_scaling", "shards": summary["num_shards"], "tokens": tokens,
                          "classifier_params": int(model.params), "flops_per_token": float(model.flops_per_token),
                          "seconds_1_worker": round(t1, 3), "seconds_2_workers": round(t2, 3),
                          "tokens_per_s_1_worker": round(tokens / t1), "tokens_per_s_2_workers": round(tokens / t2),
                          "identical_bytes": identical, "ratio": round(t1 / t2, 3)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
