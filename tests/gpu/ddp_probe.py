"""DDP through a real process group, run under torchrun: `torchrun --nproc_per_node 1 tests/gpu/ddp_probe.py`.

`tokfilter.train` starts a process group only when WORLD_SIZE > 1, so `torchrun --nproc_per_node 1 -m
tokfilter.train` on a one-GPU machine runs the plain loop, without NCCL or the DDP wrapper. This probe starts the
group itself (NCCL on CUDA, `--backend gloo --device cpu` for the CPU suite), checks an all-reduce, and runs the loop's
`train_step` on the same fixed batches twice from the same weights: once on the bare model and once through
`DistributedDataParallel` (gradient buckets all-reduced by the backend). Prints one JSON object:
{"backend", "world_size", "all_reduce", "plain": [losses], "ddp": [losses]}. Not collected by pytest (no test_
prefix); tests/gpu/test_cuda_path.py and test_checks_cpu.py run it.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.distributed as dist

from tokfilter.model import GPT, GPTConfig
from tokfilter.train.loop import train_step
from tokfilter.train.optim import BETAS, set_lr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="nccl")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}" if args.device == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(args.backend)
    world = dist.get_world_size()
    t = torch.ones(4, device=device)
    dist.all_reduce(t)
    cfg = GPTConfig(vocab_size=512, n_layer=2, n_head=2, d_model=64, seq_len=64, mup_base_width=64)
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(args.steps):
        x = torch.randint(0, cfg.vocab_size, (8, cfg.seq_len), generator=g)
        batches.append((x, torch.roll(x, -1, dims=1)))
    autocast = torch.bfloat16 if device.type == "cuda" else None

    def run(wrap: bool) -> list[float]:
        torch.manual_seed(0)
        model = GPT(cfg).to(device)
        optimizer = torch.optim.AdamW(model.param_groups(0.1), lr=3e-3, betas=BETAS, fused=device.type == "cuda")
        set_lr(optimizer, 3e-3)
        fwd = model
        if wrap:
            fwd = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        losses = []
        for x, y in batches:
            n = float(y.numel())  # this rank's targets; every rank holds the same rows here
            ranks = world if wrap else 1  # DDP averages gradients over ranks; train_step scales for it
            total = train_step(model, fwd, optimizer, x.to(device), y.to(device), n * ranks, ranks,
                               autocast_dtype=autocast)
            losses.append(total / n)
        return losses

    result = {"backend": dist.get_backend(), "world_size": world, "device": str(device),
              "all_reduce": float(t[0]), "plain": run(False), "ddp": run(True)}
    dist.barrier()
    dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
