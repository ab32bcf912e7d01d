"""Train a small sparse autoencoder on cached residual activations (CPU-friendly, seeded).

Used by the SAE labeler when no pretrained SAE is given (`tokfilter label sae --train-sae`; the labeler's
settings are `SAETrainOptions`). Two recipes:
- "topk" (default): keep the k largest pre-activations per token (Gao et al. 2024); no sparsity coefficient to tune,
  so a short CPU run gives a usable dictionary.
- "standard": ReLU with an L1 penalty weighted by decoder row norms (Anthropic's April 2024 update), l1_coeff ~5.

Activations are rescaled so the mean token norm is sqrt(d_in) during training (one scalar, so the same l1_coeff
works for any model), and the scale is folded back into W_enc / W_dec / b_dec before returning, so the saved SAE
reads raw activations like any SAELens SAE. Tokens with extreme norms (attention-sink-like outliers above 10x the
median norm) are left out of training. Decoder rows start as random unit vectors with W_enc = W_dec.T and b_dec at
the data mean; decoder rows are renormalised to unit norm after each step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tokfilter.errors import UserError
from tokfilter.labels.sae.model import SparseAutoencoder


@dataclass
class SAETrainOptions:
    """How to train an SAE when none is given (see `train_sae`)."""

    d_sae: int = 2048
    architecture: str = "topk"
    k: int = 32
    l1_coeff: float = 5.0
    steps: int = 1000
    batch_size: int = 512
    lr: float = 1e-3
    seed: int = 0


def train_sae(acts: np.ndarray, d_sae: int = 2048, architecture: str = "topk", k: int = 32, l1_coeff: float = 5.0,
              steps: int = 1000, batch_size: int = 512, lr: float = 1e-3, seed: int = 0
              ) -> tuple[SparseAutoencoder, dict]:
    """Train on activations (n_tokens, d_in); returns (sae reading raw activations, info dict with final metrics)."""
    if architecture not in ("topk", "standard"):
        raise UserError(f"can only train 'topk' or 'standard' SAEs, not {architecture!r}")
    x = torch.as_tensor(np.asarray(acts, dtype=np.float32))
    if x.ndim != 2 or len(x) < 2:
        raise UserError(f"need at least 2 activation vectors to train an SAE, got shape {tuple(x.shape)}")
    norms = x.norm(dim=1)
    x = x[norms <= 10 * norms.median()]
    d_in = x.shape[1]
    scale = float(d_in ** 0.5 / x.norm(dim=1).mean().clamp_min(1e-8))
    x = x * scale
    gen = torch.Generator().manual_seed(seed)
    sae = SparseAutoencoder(d_in, d_sae, architecture, k if architecture == "topk" else None)
    with torch.no_grad():
        w = torch.randn(d_sae, d_in, generator=gen)
        sae.W_dec.copy_(w / w.norm(dim=1, keepdim=True))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_dec.copy_(x.mean(0))
    opt = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999))
    warmup = max(1, steps // 20)
    mse = l0 = torch.tensor(0.0)
    for step in range(steps):
        for group in opt.param_groups:  # linear warmup, then linear decay to 0.1x
            group["lr"] = lr * min((step + 1) / warmup, 1.0 - 0.9 * step / steps)
        idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen)
        batch = x[idx]
        f = sae.encode(batch)
        recon = sae.decode(f)
        mse = (recon - batch).pow(2).sum(1).mean()
        loss = mse
        if architecture == "standard":
            loss = loss + l1_coeff * (f * sae.W_dec.norm(dim=1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            sae.W_dec.div_(sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))
        l0 = (f > 0).float().sum(1).mean()
    mse, l0 = float(mse.detach()), float(l0)
    with torch.no_grad():
        f = sae.encode(x[: min(len(x), 4096)])
        fvu = float((sae.decode(f) - x[: len(f)]).pow(2).sum() / (x[: len(f)] - x.mean(0)).pow(2).sum())
        dead = int(((f > 0).sum(0) == 0).sum())
        # fold the scale into the weights: encode(s*x) with b_dec equals encode(x) with b_dec/s, W_enc*s
        sae.W_enc.mul_(scale)
        sae.b_dec.div_(scale)
        sae.W_dec.div_(scale)
    info = {"architecture": architecture, "d_sae": d_sae, "steps": steps, "tokens": len(x), "scale": round(scale, 6),
            "mse": round(float(mse), 4), "l0": round(float(l0), 2), "fvu": round(fvu, 4),
            "dead_latents_in_4096_tokens": dead, "seed": seed}
    return sae.eval(), info
