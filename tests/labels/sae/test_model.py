"""The SparseAutoencoder: save/load in the SAELens layout (our files and SAELens/Gemma Scope-style ones)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from tokfilter.errors import UserError
from tokfilter.labels.sae.model import SparseAutoencoder, layer_from_hook_name, load_sae, save_sae


def _random_sae(architecture: str, d_in=6, d_sae=10, k=None) -> SparseAutoencoder:
    torch.manual_seed(0)
    sae = SparseAutoencoder(d_in, d_sae, architecture, k=k)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn_like(p))
    return sae


@pytest.mark.parametrize("architecture,k", [("standard", None), ("topk", 3), ("jumprelu", None)])
def test_sae_save_load_round_trip(tmp_path, architecture, k):
    sae = _random_sae(architecture, k=k)
    save_sae(sae, tmp_path / "sae", {"hook_name": "blocks.3.hook_resid_post", "hook_layer": 3})
    loaded, cfg = load_sae(tmp_path / "sae")
    assert cfg["architecture"] == architecture and cfg["hook_name"] == "blocks.3.hook_resid_post"
    x = torch.randn(20, 6)
    f = sae.encode(x)
    assert torch.allclose(loaded.encode(x), f)
    if architecture == "topk":
        assert int((f > 0).sum(1).max()) <= 3
    if architecture == "jumprelu":  # below threshold -> exactly zero, above -> the raw pre-activation
        pre = sae.pre_activation(x)
        assert torch.equal(f, pre * (pre > sae.threshold))
    assert layer_from_hook_name(cfg["hook_name"]) == 4
    assert layer_from_hook_name("blocks.3.hook_resid_pre") == 3 and layer_from_hook_name("x") is None


def test_load_sae_saelens_style_files_and_bad_input(tmp_path):
    d = tmp_path / "gemmascope_like"
    d.mkdir()
    tensors = {"W_enc": torch.randn(4, 8), "b_enc": torch.zeros(8), "W_dec": torch.randn(8, 4),
               "b_dec": torch.zeros(4), "threshold": torch.full((8,), 0.5)}
    save_file(tensors, str(d / "sae_weights.safetensors"))
    (d / "cfg.json").write_text(json.dumps({"d_in": 4, "d_sae": 8, "apply_b_dec_to_input": False,
                                            "hook_name": "blocks.20.hook_resid_post"}))
    sae, _ = load_sae(d)  # no 'architecture' key but a threshold tensor: JumpReLU
    assert sae.architecture == "jumprelu" and not sae.apply_b_dec_to_input
    x = torch.randn(5, 4)
    pre = x @ tensors["W_enc"]
    assert torch.allclose(sae.encode(x), pre * (pre > 0.5))
    (d / "cfg.json").write_text(json.dumps({"architecture": "topk", "d_in": 4, "d_sae": 8}))
    with pytest.raises(UserError, match="without 'k'"):
        load_sae(d)
    save_file({"W_enc": torch.randn(4, 8)}, str(d / "sae_weights.safetensors"))
    with pytest.raises(UserError, match="missing tensors"):
        load_sae(d)
    with pytest.raises(UserError, match="not an SAE directory"):
        load_sae(tmp_path / "nothing")
