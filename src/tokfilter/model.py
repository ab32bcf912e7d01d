"""The GPT used for pretraining and for the biLM classifier: one file, readable top to bottom.

Architecture (PAPER.md, "Pretraining"): decoder-only transformer, rotary position embeddings (base 10000), ReLU^2 MLP
with 4x expansion, pre-RMSNorm in every block plus a final RMSNorm, no biases anywhere, input embedding tied to the
output head, attention logits scaled by 1/d_head (the muP choice, instead of 1/sqrt(d_head)), causal attention through
`F.scaled_dot_product_attention` (flash / memory-efficient kernels on CUDA).

muP (Tensor Programs V, Adam variant), relative to a base width `mup_base_width` (m = d_model / base):
  - hidden matrices (q, k, v, o, MLP): init std = init_std / sqrt(m), learning rate x 1/m;
  - embedding (tied): init std = init_std, learning rate x 1; the output logits are multiplied by 1/m;
  - RMSNorm gains: init 1, learning rate x 1, no weight decay.
So a learning rate tuned at the base width transfers to wider models. At m = 1 this is a plain GPT-2 style init
(output projections additionally scaled by 1/sqrt(2 n_layer)). `param_groups()` returns the optimizer groups with
their `lr_mult`; the training loop multiplies the scheduled learning rate by it.

Sizes: the paper's models keep width / depth = 64 with 64-dim heads (61M = 7 x 448, 1.8B = 32 x 2048, counted with
the cl100k vocabulary and tied embeddings); the `tiny-*` presets are for CPU tests and the demo.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from tokfilter.config import from_dict
from tokfilter.filtering import IGNORE_INDEX  # noqa: F401  (the one definition lives there; re-exported)

# name -> (n_layer, d_model, n_head). Paper sizes: width = 64 x depth, head dim 64. Parameter counts in the names
# assume the cl100k vocabulary (100,277 tokens padded to 100,352); tiny presets assume a 4,096-token BPE.
PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny-0.1m": (2, 24, 2),
    "tiny-0.2m": (2, 48, 2),
    "tiny-0.4m": (2, 80, 2),
    "tiny-0.7m": (3, 96, 3),
    "tiny-1m": (3, 128, 4),
    "tiny-3m": (5, 192, 6),
    "13m": (2, 128, 2),
    "61m": (7, 448, 7),
    "113m": (10, 640, 10),
    "224m": (14, 896, 14),
    "402m": (18, 1152, 18),
    "1b": (26, 1664, 26),
    "1.8b": (32, 2048, 32),
}


@dataclass
class GPTConfig:
    vocab_size: int = 4096
    n_layer: int = 3
    n_head: int = 4
    d_model: int = 128
    seq_len: int = 128
    rope_base: float = 10000.0
    mup_base_width: int = 128  # width at which the learning rate was tuned; m = d_model / mup_base_width
    init_std: float = 0.02
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if (self.d_model // self.n_head) % 2:
            raise ValueError(f"head dim {self.d_model // self.n_head} must be even for rotary embeddings")

    def num_params(self) -> int:
        """Parameters of a GPT with this config, by arithmetic (no tensors): the tied embedding once, per block two
        RMSNorm weights, qkv + output projection and the MLP, and the final RMSNorm. Equals GPT(cfg).num_params()."""
        d = self.d_model
        block = 2 * d + 4 * d * d + 2 * self.mlp_ratio * d * d
        return self.vocab_size * d + self.n_layer * block + d

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token: 6 N (forward + backward through every weight, the tied head included)
        plus the attention score/value products 6 * n_layer * seq_len * d_model (Kaplan et al. 2020, causal)."""
        T = seq_len or self.seq_len
        return 6.0 * self.num_params() + 6.0 * self.n_layer * T * self.d_model

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    @property
    def width_mult(self) -> float:
        return self.d_model / self.mup_base_width

    @classmethod
    def preset(cls, name: str, vocab_size: int, seq_len: int, **overrides) -> GPTConfig:
        if name not in PRESETS:
            raise KeyError(f"unknown model preset {name!r}; choose from {', '.join(PRESETS)}")
        n_layer, d_model, n_head = PRESETS[name]
        return cls(vocab_size=vocab_size, n_layer=n_layer, n_head=n_head, d_model=d_model, seq_len=seq_len,
                   **overrides)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "model config") -> GPTConfig:
        """From a checkpoint's or a config's dict; an unknown key or a wrong type is a UserError."""
        return from_dict(cls, d, where)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)


def rotary_tables(seq_len: int, d_head: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of shape (seq_len, d_head/2) for rotary embeddings."""
    inv_freq = 1.0 / (base ** (torch.arange(0, d_head, 2, dtype=torch.float64) / d_head))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the head dimension. x: (B, H, T, d_head)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.d_head).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / self.d_head)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False)
        self.down = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.relu(self.up(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.d_model), Attention(cfg)
        self.norm2, self.mlp = RMSNorm(cfg.d_model), MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class LinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of `h @ W.T` against targets (-100 ignored), computed in row chunks with the gradients
    formed in the same pass (softmax - onehot), so the (N, vocab) logits are never stored and are walked twice
    instead of ~8 times. Used for training on CPU, where the vocabulary-sized head dominates a small model's step
    (eager steps 1.1-1.25x HF Llama's at the tiny-1m shape instead of ~1.0x, see docs/benchmarks.md); the plain path
    (logits + F.cross_entropy) serves CUDA, autocast, reduction="none" and inference."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int = 256):
        valid = targets != IGNORE_INDEX
        safe = torch.where(valid, targets, torch.zeros_like(targets))
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros_like(weight)
        total = h.new_zeros((), dtype=torch.promote_types(h.dtype, torch.float32))
        for a in range(0, h.size(0), chunk):
            rows = slice(a, a + chunk)
            logits = h[rows] @ weight.t()
            logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
            lse = torch.logsumexp(logits, dim=-1)
            keep = valid[rows].to(logits.dtype)
            target_logit = logits.gather(1, safe[rows, None]).squeeze(1)
            total += ((lse - target_logit) * keep).sum()
            probs = logits.sub_(lse[:, None]).exp_()  # softmax, in place
            probs.scatter_add_(1, safe[rows, None], -torch.ones_like(lse)[:, None])
            probs = probs.mul_(keep[:, None].to(probs.dtype)).to(h.dtype)
            grad_h[rows] = probs @ weight
            grad_w.addmm_(probs.t(), h[rows])
        ctx.save_for_backward(grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_total, grad_w * grad_total, None, None


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm_f = RMSNorm(cfg.d_model)
        cos, sin = rotary_tables(cfg.seq_len, cfg.d_head, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        cfg = self.config
        hidden_std = cfg.init_std / math.sqrt(cfg.width_mult)
        nn.init.normal_(self.wte.weight, std=cfg.init_std)
        for block in self.blocks:
            nn.init.normal_(block.attn.qkv.weight, std=hidden_std)
            nn.init.normal_(block.mlp.up.weight, std=hidden_std)
            nn.init.normal_(block.attn.proj.weight, std=hidden_std / math.sqrt(2 * cfg.n_layer))
            nn.init.normal_(block.mlp.down.weight, std=hidden_std / math.sqrt(2 * cfg.n_layer))
        for module in self.modules():
            if isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)

    # ----- forward -----

    def _trunk(self, idx: torch.Tensor, collect: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        T = idx.size(1)
        if T > self.config.seq_len:
            raise ValueError(f"sequence of {T} tokens is longer than the model's seq_len {self.config.seq_len}")
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        x = self.wte(idx)
        hidden = [x] if collect else []
        for block in self.blocks:
            x = block(x, cos, sin)
            if collect:
                hidden.append(x)
        x = self.norm_f(x)
        if collect:
            hidden.append(x)
        return x, hidden

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Output head on final-normed hidden states: tied embedding, muP output multiplier 1/m (applied to the
        d-dim input rather than the vocab-dim output: same result, vocab/d times cheaper)."""
        m = self.config.width_mult
        return F.linear(h if m == 1 else h * (1.0 / m), self.wte.weight)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, return_hidden: bool = False,
                reduction: str = "mean"):
        """Logits (B, T, V) without targets; with targets (-100 = ignored) the cross-entropy over unmasked targets.

        reduction="mean" divides by the number of unmasked targets (at least 1, so an all-masked batch gives a loss
        of exactly 0 that still backpropagates zero gradients instead of NaN); "sum" returns the summed loss and
        "none" the per-position loss (B, T), 0 where masked. With return_hidden the result is (out, hidden_states).
        """
        h, hidden = self._trunk(idx, collect=return_hidden)
        if reduction not in ("none", "sum", "mean"):
            raise ValueError(f"unknown reduction {reduction!r}")
        if targets is None:
            out = self.logits(h)
        elif reduction != "none" and h.device.type == "cpu" and torch.is_grad_enabled() \
                and not torch.is_autocast_enabled("cpu"):
            m = self.config.width_mult
            h2 = (h if m == 1 else h * (1.0 / m)).reshape(-1, h.size(-1))
            out = LinearCrossEntropy.apply(h2, self.wte.weight, targets.reshape(-1))
        else:
            out = F.cross_entropy(self.logits(h).float().view(-1, self.config.vocab_size), targets.reshape(-1),
                                  ignore_index=IGNORE_INDEX, reduction="none" if reduction == "none" else "sum")
        if targets is not None and reduction == "none":
            out = out.view(targets.shape)
        elif targets is not None and reduction == "mean":
            out = out / (targets != IGNORE_INDEX).sum().clamp(min=1)
        return (out, hidden) if return_hidden else out

    def hidden_states(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Residual stream, each (B, T, d): [embeddings, after block 1, ..., after block L, after the final norm]."""
        return self._trunk(idx, collect=True)[1]

    # ----- bookkeeping -----

    def num_params(self) -> int:
        """All parameters, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (GPTConfig.flops_per_token: the same count, from the config)."""
        return self.config.flops_per_token(seq_len)

    def param_groups(self, weight_decay: float = 0.0) -> list[dict]:
        """Optimizer groups with muP learning-rate multipliers (`lr_mult`); weight decay on hidden matrices only."""
        m = self.config.width_mult
        hidden = [p for n, p in self.named_parameters() if p.ndim == 2 and not n.startswith("wte")]
        norms = [p for p in self.parameters() if p.ndim == 1]
        return [
            {"params": [self.wte.weight], "lr_mult": 1.0, "weight_decay": 0.0, "name": "embedding"},
            {"params": hidden, "lr_mult": 1.0 / m, "weight_decay": weight_decay, "name": "hidden"},
            {"params": norms, "lr_mult": 1.0, "weight_decay": 0.0, "name": "norm"},
        ]
