"""The GPT: shapes, causality, masked loss, hidden states, presets, muP groups, parameter and FLOP counts."""

from __future__ import annotations

import math

import pytest
import torch

from tokfilter.model import GPT, PRESETS, GPTConfig


def small(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=97, n_layer=2, n_head=2, d_model=32, seq_len=16, mup_base_width=32, **kw))


def test_logits_shape_and_causality():
    model = small()
    x = torch.randint(0, 97, (2, 16))
    logits = model(x)
    assert logits.shape == (2, 16, 97)
    x2 = x.clone()
    x2[:, 10] = (x2[:, 10] + 1) % 97  # changing token 10 must not change predictions before it
    logits2 = model(x2)
    assert torch.allclose(logits[:, :10], logits2[:, :10], atol=1e-6)
    assert not torch.allclose(logits[:, 10:], logits2[:, 10:])


def test_loss_is_mean_over_unmasked_targets():
    model = small()
    x = torch.randint(0, 97, (2, 16))
    y = torch.randint(0, 97, (2, 16))
    y[0, :5] = -100
    per_pos = model(x, y, reduction="none")
    assert (per_pos[0, :5] == 0).all()
    expected = per_pos.sum() / (y != -100).sum()
    assert torch.allclose(model(x, y), expected)
    assert torch.allclose(model(x, y, reduction="sum"), per_pos.sum())
    full = torch.nn.functional.cross_entropy(model(x).view(-1, 97), y.view(-1), ignore_index=-100)
    assert torch.allclose(model(x, y), full, atol=1e-6)
    assert math.isclose(model(x, torch.randint(0, 97, (2, 16))).item(), math.log(97), rel_tol=0.1)


def test_hidden_states_include_every_layer_and_final_norm():
    model = small()
    x = torch.randint(0, 97, (3, 16))
    hidden = model.hidden_states(x)
    assert len(hidden) == model.config.n_layer + 2
    assert all(h.shape == (3, 16, 32) for h in hidden)
    out, hidden2 = model(x, return_hidden=True)
    assert torch.allclose(out, model.logits(hidden[-1]))
    assert torch.allclose(hidden[-1].pow(2).mean(-1), torch.ones(3, 16), atol=1e-2)  # final RMSNorm (gain 1)


def test_architecture_has_no_biases_and_tied_embeddings():
    model = small()
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    assert model.num_params() == 97 * 32 + 2 * (12 * 32 * 32 + 2 * 32) + 32  # embedding counted once


@pytest.mark.parametrize("name,expected_m", [("61m", 61.8), ("113m", 113.4), ("224m", 224.8), ("1.8b", 1816.3)])
def test_paper_presets_have_paper_sizes(name, expected_m):
    n_layer, d_model, _ = PRESETS[name]
    assert d_model == 64 * n_layer  # width / depth = 64
    cfg = GPTConfig.preset(name, vocab_size=100352, seq_len=2048)
    n = cfg.vocab_size * cfg.d_model + cfg.n_layer * (12 * cfg.d_model**2 + 2 * cfg.d_model) + cfg.d_model
    assert abs(n / 1e6 - expected_m) < 0.1


def test_tiny_preset_size_and_flops():
    model = GPT(GPTConfig.preset("tiny-1m", vocab_size=4096, seq_len=128))
    assert 1.0e6 < model.num_params() < 1.2e6
    assert model.flops_per_token() == 6 * model.num_params() + 6 * 3 * 128 * 128


def test_mup_groups_scale_hidden_learning_rate_and_init():
    base = GPT(GPTConfig(vocab_size=97, n_layer=1, n_head=2, d_model=64, seq_len=8, mup_base_width=64))
    wide = GPT(GPTConfig(vocab_size=97, n_layer=1, n_head=8, d_model=256, seq_len=8, mup_base_width=64))
    groups = {g["name"]: g for g in wide.param_groups(0.1)}
    assert groups["hidden"]["lr_mult"] == 0.25 and groups["embedding"]["lr_mult"] == 1.0
    assert groups["norm"]["weight_decay"] == 0.0 and groups["hidden"]["weight_decay"] == 0.1
    covered = sum(p.numel() for g in groups.values() for p in g["params"])
    assert covered == wide.num_params()
    ratio = base.blocks[0].mlp.up.weight.std() / wide.blocks[0].mlp.up.weight.std()
    assert abs(ratio - 2.0) < 0.1  # init std scales with 1/sqrt(width multiplier)


def test_sequence_longer_than_config_is_refused():
    with pytest.raises(ValueError):
        small()(torch.zeros(1, 17, dtype=torch.long))


def test_fused_cpu_loss_matches_plain_cross_entropy_and_gradients():
    from tokfilter.model import LinearCrossEntropy

    torch.manual_seed(0)
    h = torch.randn(300, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 50, (300,))
    t[::7] = -100
    fused = LinearCrossEntropy.apply(h, w, t, 64) * 0.37
    plain = torch.nn.functional.cross_entropy(h @ w.t(), t, ignore_index=-100, reduction="sum") * 0.37
    assert torch.allclose(fused, plain)
    for a, b in zip(torch.autograd.grad(fused, (h, w)), torch.autograd.grad(plain, (h, w)), strict=True):
        assert torch.allclose(a, b, atol=1e-12)
    model = small()
    x, y = torch.randint(0, 97, (3, 16)), torch.randint(0, 97, (3, 16))
    y[0] = -100
    model(x, y).backward()  # fused path (CPU, grad enabled)
    fused_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    full = torch.nn.functional.cross_entropy(model(x).view(-1, 97), y.view(-1), ignore_index=-100)
    full.backward()
    for a, b in zip(fused_grads, [p.grad for p in model.parameters()], strict=True):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("preset", ["tiny-0.1m", "tiny-0.4m", "tiny-3m", "13m"])
def test_config_counts_parameters_without_building_the_model(preset):
    cfg = GPTConfig.preset(preset, 4096, 128)
    assert cfg.num_params() == GPT(cfg).num_params() > 0
