"""Filtering overhead: a full training step (batch assembly + forward/backward/update) with `remove` filtering vs
`none`, same model, same real shards, one run.

Shards: the demo corpus (train split, three domains) tokenized with the default 4096-token BPE into a temporary
directory, with a score sidecar giving 40% of tokens p(forget) >= 0.5 (in runs of a few dozen tokens, like spliced
passages), so `remove` masks targets and rewrites inputs on about that fraction. Each step is
`BatchSource.next_batch()` followed by `train_step()` (exactly what the trainer runs); the two modes alternate
step by step so machine load affects both alike; medians are compared. "ratio" = remove step time / none step time
(target <= 1.03). Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def build_shards(directory: Path):
    from tokfilter.atomic import save_npy
    from tokfilter.corpus.demo import load_demo
    from tokfilter.shards import ShardSet, write_shards
    from tokfilter.tokenizer import load_tokenizer
    from tokfilter.tokenizer.core import default_tokenizer_spec

    tokenizer = load_tokenizer(default_tokenizer_spec())
    write_shards(load_demo("train"), tokenizer, directory, progress=False)
    shards = ShardSet(directory)
    rng = np.random.default_rng(0)
    for i in range(shards.num_shards):
        n = len(shards.tokens(i))
        run_starts = rng.random(n // 32) < 0.4  # 40% of 32-token runs are forget
        scores = np.repeat(np.where(run_starts, 0.9, 0.1), 32)[:n]
        scores = np.concatenate([scores, np.full(n - len(scores), 0.1)]).astype(np.float16)
        save_npy(shards.score_path(i, "forget"), scores)
    return shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-1m")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from tokfilter.model import GPT, GPTConfig
    from tokfilter.train.data import IGNORE_INDEX, BatchSource
    from tokfilter.train.loop import train_step

    with tempfile.TemporaryDirectory() as tmp:
        shards = build_shards(Path(tmp) / "shards")
        torch.manual_seed(0)
        model = GPT(GPTConfig.preset(args.preset, shards.vocab_size, args.seq_len))
        optimizer = torch.optim.AdamW(model.param_groups(0.1), lr=1e-3, betas=(0.9, 0.95))
        sources = {mode: BatchSource(shards, args.seq_len, args.batch, mode=mode, score_name="forget", seed=0)
                   for mode in ("none", "remove")}
        times: dict[str, list[float]] = {mode: [] for mode in sources}
        masked = []
        for i in range(args.warmup + args.steps):
            for mode, source in sources.items():
                t = time.perf_counter()
                x, y = source.next_batch()
                n = float((y != IGNORE_INDEX).sum())
                train_step(model, model, optimizer, x, y, n)
                if i >= args.warmup:
                    times[mode].append(time.perf_counter() - t)
                if mode == "remove":
                    masked.append(1 - n / y.numel())
        med = {mode: statistics.median(ts) for mode, ts in times.items()}
        print(f"none {1000 * med['none']:.1f} ms/step, remove {1000 * med['remove']:.1f} ms/step, "
              f"targets masked {np.mean(masked):.1%}")
        print(json.dumps({"benchmark": "mask_overhead", "ratio": med["remove"] / med["none"],
                          "none_ms": 1000 * med["none"], "remove_ms": 1000 * med["remove"],
                          "masked_frac": float(np.mean(masked)), "preset": args.preset, "batch": args.batch,
                          "seq_len": args.seq_len, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
