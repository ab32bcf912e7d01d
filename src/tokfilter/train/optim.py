"""Optimisation shared by every trainer: pretraining, the classifier, the finetuning attack, RMU and refusal SFT.

The recipe is the paper's (PAPER.md "Pretraining"): AdamW (0.9, 0.95) with muP learning-rate multipliers per
parameter group (`model.param_groups`), linear warmup then cosine decay to `min_lr_frac`, gradient clipping at 1.0.
Post-hoc finetuning (attack, refusal) uses the same optimizer at a constant learning rate.
"""

from __future__ import annotations

import math

import torch

from tokfilter.runtime import autocast_dtype

BETAS = (0.9, 0.95)


def lr_factor(progress: float, warmup_frac: float, min_lr_frac: float) -> float:
    """Learning-rate multiplier at `progress` in [0, 1]: linear warmup, then cosine from 1 down to min_lr_frac."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup_frac:
        return progress / warmup_frac
    decay = (progress - warmup_frac) / max(1.0 - warmup_frac, 1e-12)
    return min_lr_frac + (1.0 - min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * decay))


def make_optimizer(model, lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW (0.9, 0.95) over all parameters with the model's muP learning-rate multipliers, constant LR."""
    groups = model.param_groups(weight_decay)
    for group in groups:
        group["lr"] = lr * group["lr_mult"]
    return torch.optim.AdamW(groups, lr=lr, betas=BETAS)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to `lr` times its muP multiplier (1 when the group has none)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


def clip_and_step(model, optimizer: torch.optim.Optimizer, grad_clip: float = 1.0) -> None:
    """Clip the gradient norm (0 disables), step, and clear the gradients."""
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def finetune_step(model, optimizer, x: torch.Tensor, y: torch.Tensor, grad_clip: float = 1.0) -> float:
    """One step of next-token finetuning on (x, y) (bf16 autocast on CUDA); returns the step's mean loss."""
    device = next(model.parameters()).device
    autocast = autocast_dtype(device)
    model.train()
    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
        loss = model(x.to(device), y.to(device))
    loss.backward()
    clip_and_step(model, optimizer, grad_clip)
    return float(loss.detach())
