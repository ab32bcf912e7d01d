"""The measurements behind tests/gpu/test_cuda_path.py, written once and parametrised by device.

The CUDA tests call them with device="cuda"; tests/gpu/test_checks_cpu.py calls the same functions with
device="cpu" so that every line here runs in the CPU-only suite too. Each returns plain numbers; the tests hold the
tolerances. `record(name, payload)` adds a measurement to $TOKFILTER_GPU_OUT/gpu_tests.json when that variable is set
(scripts/gpu_check.sh sets it to the folder whose files come back from the GPU machine).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from tokfilter.atomic import write_json
from tokfilter.classify import bilm as B
from tokfilter.config import to_toml
from tokfilter.model import GPT, GPTConfig
from tokfilter.train.checkpoint import load_model, save_checkpoint
from tokfilter.train.config import TrainConfig, load_config
from tokfilter.train.loop import train_step
from tokfilter.train.optim import BETAS, set_lr

OUT_ENV = "TOKFILTER_GPU_OUT"


def record(name: str, payload: dict) -> Path | None:
    """Merge {name: payload} into $TOKFILTER_GPU_OUT/gpu_tests.json; None when the variable is unset."""
    out = os.environ.get(OUT_ENV)
    if not out:
        return None
    path = Path(out) / "gpu_tests.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[name] = payload
    write_json(path, data)
    return path


def autocast_for(device: str) -> torch.dtype | None:
    """The training dtype the loop uses by default: bf16 autocast on CUDA, fp32 on the CPU."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else None


# ----- (a) biLM scorer: the same random-weight classifier scored on two devices -----

BILM_SHAPES = {
    # the unit tests' tiny biLM (tests/classify/test_bilm.py)
    "tiny": dict(vocab_size=64, seq_len=32, n_layer=1, d_model=32, n_head=2, layers=[0, 1], head="conv",
                 conv_kernel=3, head_hidden=8),
    # the demo's quick-budget shape (classify/settings.py defaults) on the demo tokenizer's vocabulary
    "demo": dict(vocab_size=4096, seq_len=128, n_layer=2, d_model=96, n_head=4, layers=[1, 2], head="conv",
                 conv_kernel=7, head_hidden=32),
}


def bilm_classifier(shape: str, seed: int = 0) -> B.BiLMClassifier:
    torch.manual_seed(seed)
    return B.BiLMClassifier(B.BiLM(B.BiLMConfig(**BILM_SHAPES[shape])), tokenizer_hash="gpu-check")


def bilm_docs(shape: str, n_docs: int = 24, seed: int = 1) -> list[np.ndarray]:
    """Documents of lengths 1 .. 3 windows (short ones, exact windows and ones that span several)."""
    cfg = BILM_SHAPES[shape]
    rng = np.random.default_rng(seed)
    lengths = [1, cfg["seq_len"] - 1, cfg["seq_len"], cfg["seq_len"] + 1, 3 * cfg["seq_len"] + 5]
    lengths += list(rng.integers(2, 3 * cfg["seq_len"], size=max(n_docs - len(lengths), 0)))
    return [rng.integers(1, cfg["vocab_size"], size=int(n)) for n in lengths]


def bilm_scores(shape: str, device: str, docs: list[np.ndarray]) -> list[np.ndarray]:
    """p(forget) per token from `BiLMClassifier.score_batch` (what `tokfilter annotate` calls) on `device`."""
    return bilm_classifier(shape).to(device).score_batch(docs)


def score_differences(a: list[np.ndarray], b: list[np.ndarray], threshold: float = 0.5,
                      margin: float = 0.0) -> dict:
    """Max / mean absolute difference of two score lists, and the threshold decisions that differ among tokens
    farther than `margin` from the threshold."""
    x, y = np.concatenate(a).astype(np.float64), np.concatenate(b).astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"score lists differ in length: {x.shape} vs {y.shape}")
    clear = np.abs(x - threshold) > margin
    flips = int(((x >= threshold) != (y >= threshold))[clear].sum())
    diff = np.abs(x - y)
    return {"tokens": int(len(x)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "decision_flips_outside_margin": flips, "margin": margin}


# ----- (b) GPT train steps: bf16 autocast, eager and compiled -----

def small_gpt_config(vocab_size: int = 4096, seq_len: int = 128) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, n_layer=2, n_head=4, d_model=128, seq_len=seq_len, mup_base_width=128)


def fixed_batches(cfg: GPTConfig, steps: int, rows: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Random token batches with ~10% of targets masked (-100), generated on the CPU so every device sees the same."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        x = torch.randint(0, cfg.vocab_size, (rows, cfg.seq_len), generator=g)
        y = torch.roll(x, -1, dims=1)
        y[torch.rand(rows, cfg.seq_len, generator=g) < 0.1] = -100
        out.append((x, y))
    return out


def gpt_train_losses(device: str, steps: int = 5, compile: bool = False, autocast: torch.dtype | None = None,
                     seed: int = 0, lr: float = 3e-3, cfg: GPTConfig | None = None) -> list[float]:
    """Mean loss of each of `steps` calls of the loop's `train_step` (AdamW, muP groups, clipping) on fixed batches;
    the model is built on the CPU from `seed`, so every device and wrapper starts from the same weights."""
    cfg = cfg or small_gpt_config()
    torch.manual_seed(seed)
    model = GPT(cfg).to(device)
    fused = torch.device(device).type == "cuda"
    optimizer = torch.optim.AdamW(model.param_groups(0.1), lr=lr, betas=BETAS, fused=fused)
    set_lr(optimizer, lr)
    fwd_model = torch.compile(model) if compile else model
    model.train()
    losses = []
    for x, y in fixed_batches(cfg, steps, seed=seed):
        n = float((y != -100).sum())
        loss_sum = train_step(model, fwd_model, optimizer, x.to(device), y.to(device), n, autocast_dtype=autocast)
        losses.append(loss_sum / n)
    return losses


# ----- (c) checkpoint round trip -----

def checkpoint_roundtrip(device: str, directory: Path, compile: bool = False) -> dict:
    """Train two steps, save (through the compile wrapper when `compile`), load onto `device`: are the weights
    and the logits (fp32 and, on CUDA, bf16 autocast) bitwise identical?"""
    cfg = small_gpt_config(seq_len=64)
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    optimizer = torch.optim.AdamW(model.param_groups(0.1), lr=3e-3, betas=BETAS)
    set_lr(optimizer, 3e-3)
    for x, y in fixed_batches(cfg, 2):
        train_step(model, model, optimizer, x.to(device), y.to(device), float((y != -100).sum()),
                   autocast_dtype=autocast_for(device))
    saved = torch.compile(model) if compile else model
    save_checkpoint(directory, saved, {"note": "gpu round trip"}, optimizer, {"step": 2})
    loaded, _ = load_model(directory, device=device)
    model.eval()
    x = fixed_batches(cfg, 1, seed=5)[0][0].to(device)
    result = {"device": str(next(loaded.parameters()).device),
              "weights_equal": all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                     loaded.state_dict().values(), strict=True))}
    with torch.no_grad():
        result["fp32_logits_equal"] = torch.equal(model(x), loaded(x))
        dtype = autocast_for(device)
        if dtype is not None:
            with torch.autocast(torch.device(device).type, dtype=dtype):
                result["autocast_logits_equal"] = torch.equal(model(x), loaded(x))
    return result


# ----- (d, e) the training loop on tiny shards -----

def tiny_train_config(shards_dir: Path, device: str, steps: int, **sets) -> TrainConfig:
    """tests/train/test_loop.py's tiny model (2 x 64, seq 64, batch 8) with mask filtering on the `truth` sidecar,
    a budget of exactly `steps` optimizer steps (every token counted), on `device` in its default dtype."""
    overrides = [f"data.shards={str(shards_dir)!r}", "model.preset=''", "model.n_layer=2", "model.d_model=64",
                 "model.n_head=2", "model.seq_len=64", "model.mup_base_width=64", "data.batch_size=8",
                 "filter.mode='mask'", "filter.scores='truth'", "optim.lr=0.006", "run.progress=false",
                 "run.log_every=1", "budget.unit='train'", f"budget.tokens={steps * 8 * 64}",
                 f"run.device={device!r}", f"run.threads={max(1, min(8, os.cpu_count() or 1))}"]
    overrides += [f"{k.replace('__', '.')}={json.dumps(v) if isinstance(v, str) else v}" for k, v in sets.items()]
    return load_config(None, overrides)


def write_toml(cfg: TrainConfig, path: Path) -> Path:
    """A TrainConfig as a TOML file (for `python -m tokfilter.train --config`)."""
    path.write_text(to_toml(cfg))
    return path


def loss_curve(run_dir: Path) -> list[float]:
    """The per-step training losses of a run directory's log.jsonl."""
    lines = [json.loads(ln) for ln in (Path(run_dir) / "log.jsonl").read_text().splitlines() if ln.strip()]
    return [r["loss"] for r in lines if "loss" in r]


def tail_mean(curve: list[float], n: int = 20) -> float:
    tail = curve[-n:]
    if not tail or not all(math.isfinite(v) for v in tail):
        return math.nan
    return float(sum(tail) / len(tail))
