"""RMU (Representation Misdirection for Unlearning; Li et al. 2024, the WMDP paper): the post-hoc unlearning baseline
that filtering is compared with under the finetuning attack (PAPER.md, "Robustness").

At layer l (0-based block index; the activation is the residual stream *after* block l), with a fixed random unit
vector u (uniform in [0, 1)^d then normalised, seeded, as in the WMDP code) and a frozen copy of the model:

    loss = MSE(h_l(forget batch), c * u)  +  alpha * MSE(h_l(retain batch), frozen h_l(retain batch))

and only the MLP weights (up and down projections) of blocks l-2, l-1, l (those that exist) are updated, with AdamW at
a constant learning rate. The forget term scrambles what later layers read on forget text; the retain term keeps
the representation of retain text where it was. The paper uses c = 20, alpha = 100 and 1000 steps at 1.8B; the
WMDP code uses c = 6.5, alpha = 1200 for Zephyr-7B. The right c depends on the scale of the model's activations, so
c is swept, by default as multiples of the mean residual norm at layer l on forget text (`c_scale="norm"`); pass
`c_scale="absolute"` to use the numbers as given. The default grid is small (settings.RobustnessSettings: c in
{4, 8} x norm, alpha in {10, 30}, 60 steps at lr 0.01, 16 windows per step; an earlier grid of 200 steps at lr 3e-3
on the 4-layer demo models showed alpha = 1 wrecking retain loss and alpha = 100 leaving forget loss unchanged);
every setting trains from the same starting point. Note: `hidden_states()` output the residual stream; the
MLP weights hold no biases, so nothing else moves.

Selection: the setting with the largest rise in held-out forget loss among those whose held-out retain loss rises by
at most `max_retain_increase` nats (default 0.1); if none qualifies, the one with the smallest retain rise. The
result records every setting's before/after losses, so the choice can be audited.
"""

from __future__ import annotations

import copy
import itertools
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from tokfilter.atomic import write_json
from tokfilter.errors import UserError
from tokfilter.evaluate.loading import load_checkpoint
from tokfilter.posthoc.heldout import HeldOutLoss
from tokfilter.posthoc.provenance import pretraining_tokens
from tokfilter.posthoc.settings import (
    EVAL_MAX_TOKENS,
    RMU_C_SCALE,
    RMU_MAX_RETAIN_INCREASE,
    ROBUSTNESS_DEFAULTS,
)
from tokfilter.posthoc.texts import TokenStreamSampler, as_texts, token_stream
from tokfilter.train.checkpoint import read_checkpoint_config, save_checkpoint
from tokfilter.train.optim import BETAS


def check_layer(model, layer: int) -> int:
    n = model.config.n_layer
    if not isinstance(layer, (int, np.integer)) or not 0 <= layer < n:
        raise UserError(f"RMU layer {layer} is out of range: the model has blocks 0..{n - 1}")
    return int(layer)


def default_layer(model) -> int:
    """The middle block (WMDP uses layer 7 of 32 for Zephyr; the paper 'the middle layer')."""
    return model.config.n_layer // 2


def updated_params(model, layer: int) -> list[torch.nn.Parameter]:
    """MLP weights of blocks layer-2 .. layer."""
    return [p for i in range(max(layer - 2, 0), layer + 1) for p in model.blocks[i].mlp.parameters()]


def activations(model, x: torch.Tensor, layer: int) -> torch.Tensor:
    """Residual stream after block `layer`, (B, T, d)."""
    return model.hidden_states(x)[layer + 1]


def control_vector(d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(d, generator=gen)
    return u / u.norm()


def mean_norm(model, sampler: TokenStreamSampler, layer: int, batches: int = 4) -> float:
    with torch.no_grad():
        device = next(model.parameters()).device
        norms = [activations(model, sampler.next_batch()[0].to(device), layer).norm(dim=-1).mean()
                 for _ in range(batches)]
    return float(torch.stack(norms).mean())


def rmu_train(model, frozen, forget: TokenStreamSampler, retain: TokenStreamSampler, layer: int, coeff: float, alpha: float,
              steps: int, lr: float, seed: int = 0, progress: bool = False) -> list[dict]:
    """Run RMU in place on `model` (frozen: an untouched copy); returns a per-step log (every 10 steps)."""
    device = next(model.parameters()).device
    params = updated_params(model, layer)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    target = coeff * control_vector(model.config.d_model, seed).to(device)
    optimizer = torch.optim.AdamW(params, lr=lr, betas=BETAS, weight_decay=0.0)
    log = []
    model.train()
    bar = tqdm(range(steps), desc=f"rmu c={coeff:.3g} a={alpha:g}", unit="step", file=sys.stderr,
               disable=not progress, leave=False)
    for step in bar:
        xf, _ = forget.next_batch()
        xr, _ = retain.next_batch()
        xf, xr = xf.to(device), xr.to(device)
        h_forget = activations(model, xf, layer)
        forget_loss = F.mse_loss(h_forget, target.expand_as(h_forget))
        h_retain = activations(model, xr, layer)
        with torch.no_grad():
            h_frozen = activations(frozen, xr, layer)
        retain_loss = F.mse_loss(h_retain, h_frozen)
        loss = forget_loss + alpha * retain_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            log.append({"step": step, "forget_mse": float(forget_loss.detach()),
                        "retain_mse": float(retain_loss.detach())})
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return log


def _split(texts: list[str], frac: float = 0.1) -> tuple[list[str], list[str]]:
    """(train, eval): every 1/frac-th text is held out for evaluation."""
    k = max(int(round(1 / frac)), 2)
    train = [t for i, t in enumerate(texts) if i % k != k - 1]
    held = [t for i, t in enumerate(texts) if i % k == k - 1]
    return (train or texts), (held or texts)


def rmu_unlearn(model_dir: str | Path, forget_docs, retain_docs, out_dir: str | Path,
                layer: int | None = None, coeffs: tuple[float, ...] = tuple(ROBUSTNESS_DEFAULTS.rmu_coeffs),
                alphas: tuple[float, ...] = tuple(ROBUSTNESS_DEFAULTS.rmu_alphas), c_scale: str = RMU_C_SCALE,
                steps: int = ROBUSTNESS_DEFAULTS.rmu_steps, lr: float = ROBUSTNESS_DEFAULTS.rmu_lr,
                batch_size: int = ROBUSTNESS_DEFAULTS.rmu_batch_size, seed: int = 0, forget_eval_docs=None,
                retain_eval_docs=None, max_retain_increase: float = RMU_MAX_RETAIN_INCREASE,
                eval_max_tokens: int = EVAL_MAX_TOKENS, device: str = "auto", progress: bool = True) -> dict:
    """Unlearn the forget domain from `model_dir` with RMU, sweeping (coeff, alpha); save the chosen model to
    `out_dir` (a checkpoint with provenance.json) and return the report (see the module docstring).

    Without eval docs, every 10th forget / retain document is held out for the before/after losses.
    """
    if c_scale not in ("norm", "absolute"):
        raise UserError(f"RMU: c_scale must be 'norm' or 'absolute' (got {c_scale!r})")
    if steps <= 0 or lr <= 0:
        raise UserError(f"RMU: steps and lr must be positive (got steps={steps}, lr={lr})")
    if not coeffs or not alphas:
        raise UserError("RMU: empty hyperparameter grid")
    forget_texts = as_texts(forget_docs, "RMU forget data")
    retain_texts = as_texts(retain_docs, "RMU retain data")
    if forget_eval_docs is None:
        forget_texts, forget_eval = _split(forget_texts)
    else:
        forget_eval = as_texts(forget_eval_docs, "RMU forget held-out data")
    if retain_eval_docs is None:
        retain_texts, retain_eval = _split(retain_texts)
    else:
        retain_eval = as_texts(retain_eval_docs, "RMU retain held-out data")

    base, tokenizer = load_checkpoint(model_dir, device=device)
    layer = default_layer(base) if layer is None else check_layer(base, layer)
    seq_len = base.config.seq_len
    forget_stream, retain_stream = token_stream(tokenizer, forget_texts), token_stream(tokenizer, retain_texts)
    eval_forget = HeldOutLoss(tokenizer, forget_eval, seq_len, eval_max_tokens)
    eval_retain = HeldOutLoss(tokenizer, retain_eval, seq_len, eval_max_tokens)
    before = {"forget": eval_forget.loss(base), "retain": eval_retain.loss(base)}
    norm = mean_norm(base, TokenStreamSampler(forget_stream, seq_len, batch_size, seed + 1), layer)
    scale = norm if c_scale == "norm" else 1.0
    for p in base.parameters():
        p.requires_grad_(False)

    sweep, best_model, best = [], None, None
    for coeff, alpha in itertools.product(coeffs, alphas):
        model = copy.deepcopy(base)
        torch.manual_seed(seed)
        log = rmu_train(model, base, TokenStreamSampler(forget_stream, seq_len, batch_size, seed),
                        TokenStreamSampler(retain_stream, seq_len, batch_size, seed + 7), layer, coeff * scale, alpha,
                        steps, lr, seed, progress)
        after = {"forget": eval_forget.loss(model), "retain": eval_retain.loss(model)}
        entry = {"coeff": coeff, "steering_coeff": coeff * scale, "alpha": alpha, "after": after,
                 "forget_increase": after["forget"] - before["forget"],
                 "retain_increase": after["retain"] - before["retain"], "first": log[0], "final": log[-1]}
        sweep.append(entry)
        if _better(entry, best, max_retain_increase):
            best, best_model = entry, model
    cfg = read_checkpoint_config(model_dir)
    save_checkpoint(out_dir, best_model, train_config=cfg.get("train"), tokenizer=tokenizer)
    report = {"method": "rmu", "base_model": str(model_dir), "out": str(out_dir), "layer": layer,
              "updated_blocks": list(range(max(layer - 2, 0), layer + 1)), "c_scale": c_scale,
              "activation_norm": norm, "steps": steps, "lr": lr, "batch_size": batch_size, "seed": seed,
              "max_retain_increase": max_retain_increase, "before": before, "after": best["after"],
              "chosen": {k: best[k] for k in ("coeff", "steering_coeff", "alpha")}, "sweep": sweep,
              "pretraining_tokens": pretraining_tokens(model_dir)}
    write_json(Path(out_dir) / "provenance.json", report)
    return report


def _better(entry: dict, best: dict | None, max_retain_increase: float) -> bool:
    if best is None:
        return True
    ok, best_ok = (entry["retain_increase"] <= max_retain_increase,
                   best["retain_increase"] <= max_retain_increase)
    if ok != best_ok:
        return ok
    if ok:
        return entry["forget_increase"] > best["forget_increase"]
    return entry["retain_increase"] < best["retain_increase"]
