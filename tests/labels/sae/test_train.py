"""SAE training on synthetic sparse data: reconstruction quality, raw-activation reading, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokfilter.labels.sae.train import train_sae


@pytest.mark.parametrize("architecture", ["topk", "standard"])
def test_train_sae_reconstructs_sparse_data(architecture):
    """Data made of sparse combinations of 16 directions: a trained SAE reconstructs it far better than the mean."""
    rng = np.random.default_rng(0)
    dictionary = rng.normal(size=(16, 12)).astype(np.float32)
    codes = rng.exponential(size=(4000, 16)).astype(np.float32) * (rng.random((4000, 16)) < 0.15)
    acts = 40.0 * codes @ dictionary + 3.0  # large norms and an offset: the trainer rescales and folds back
    sae, info = train_sae(acts, d_sae=32, architecture=architecture, k=4, l1_coeff=0.3, steps=400, seed=0)
    assert info["fvu"] < 0.35, info
    with torch.no_grad():  # the returned SAE reads raw (unscaled) activations
        x = torch.from_numpy(acts[:500])
        fvu = float((sae(x) - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    assert fvu < 0.35
    again, _ = train_sae(acts, d_sae=32, architecture=architecture, k=4, l1_coeff=0.3, steps=50, seed=0)
    again2, _ = train_sae(acts, d_sae=32, architecture=architecture, k=4, l1_coeff=0.3, steps=50, seed=0)
    assert torch.equal(again.W_enc, again2.W_enc)  # seeded
