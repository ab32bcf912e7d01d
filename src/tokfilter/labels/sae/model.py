"""The sparse autoencoder itself: ReLU ("standard"), TopK or JumpReLU encoder/decoder in the SAELens layout.

Loaded from and saved to `cfg.json` + `sae_weights.safetensors` (W_enc, b_enc, W_dec, b_dec[, threshold]) with
safetensors directly, so sae-lens itself stays an optional extra. `tokfilter.labels.sae.train` trains one on cached
activations; `encode_batched` turns residual activations into latents.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tokfilter.atomic import atomic_path, write_json
from tokfilter.errors import UserError

SAE_WEIGHTS = "sae_weights.safetensors"
SAE_CONFIG = "cfg.json"
ARCHITECTURES = ("standard", "topk", "jumprelu")


class SparseAutoencoder(nn.Module):
    """f = act((x - b_dec) @ W_enc + b_enc), x_hat = f @ W_dec + b_dec; act is ReLU, TopK(k) or JumpReLU(threshold).

    `apply_b_dec_to_input=False` (Gemma Scope) drops the `- b_dec` on the input, as SAELens does.
    """

    def __init__(self, d_in: int, d_sae: int, architecture: str = "standard", k: int | None = None,
                 apply_b_dec_to_input: bool = True, normalize_activations: str = "none"):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise UserError(f"SAE architecture {architecture!r} not supported (use one of {', '.join(ARCHITECTURES)})")
        if architecture == "topk" and not k:
            raise UserError("a TopK SAE needs k > 0")
        self.d_in, self.d_sae, self.architecture, self.k = d_in, d_sae, architecture, k
        self.apply_b_dec_to_input = apply_b_dec_to_input
        self.normalize_activations = normalize_activations
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.zeros(d_sae, d_in))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        if architecture == "jumprelu":
            self.threshold = nn.Parameter(torch.zeros(d_sae))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.W_enc.dtype)
        if self.normalize_activations == "constant_norm_rescale":
            x = x * (self.d_in ** 0.5) / x.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        return x

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        x = self._prepare(x)
        if self.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.pre_activation(x)
        if self.architecture == "jumprelu":
            return pre * (pre > self.threshold)
        acts = torch.relu(pre)
        if self.architecture == "topk":
            top = torch.topk(acts, min(self.k, self.d_sae), dim=-1)
            acts = torch.zeros_like(acts).scatter(-1, top.indices, top.values)
        return acts

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def config(self) -> dict:
        cfg = {"architecture": self.architecture, "d_in": self.d_in, "d_sae": self.d_sae, "dtype": "float32",
               "device": "cpu", "apply_b_dec_to_input": self.apply_b_dec_to_input,
               "normalize_activations": self.normalize_activations}
        if self.architecture == "topk":
            cfg["k"] = self.k
            cfg["activation_fn_kwargs"] = {"k": self.k}  # older SAELens configs keep k here
        return cfg


def save_sae(sae: SparseAutoencoder, directory: str | Path, metadata: dict | None = None) -> Path:
    """Write `cfg.json` + `sae_weights.safetensors` (SAELens layout) atomically; `metadata` goes into the cfg."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().to(torch.float32).contiguous().cpu() for name, p in sae.named_parameters()}
    with atomic_path(directory / SAE_WEIGHTS, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp))
    cfg = sae.config()
    if metadata:
        cfg["metadata"] = metadata
        for key in ("hook_name", "hook_layer", "model_name"):  # flat copies for older SAELens readers
            if key in metadata:
                cfg[key] = metadata[key]
    write_json(directory / SAE_CONFIG, cfg)
    return directory


def load_sae(directory: str | Path) -> tuple[SparseAutoencoder, dict]:
    """Load an SAE saved in the SAELens layout (by SAELens or by `save_sae`); returns (sae, cfg dict)."""
    directory = Path(directory)
    cfg_path, weights_path = directory / SAE_CONFIG, directory / SAE_WEIGHTS
    for path in (cfg_path, weights_path):
        if not path.is_file():
            raise UserError(f"{directory}: not an SAE directory (missing {path.name})")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{cfg_path}: malformed JSON ({err.msg})") from None
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise UserError(f"{weights_path}: not a readable safetensors file ({err})") from None
    missing = [name for name in ("W_enc", "b_enc", "W_dec", "b_dec") if name not in tensors]
    if missing:
        raise UserError(f"{weights_path}: missing tensors {', '.join(missing)}")
    d_in, d_sae = tensors["W_enc"].shape
    architecture = cfg.get("architecture", "standard")
    if architecture == "standard" and "threshold" in tensors:
        architecture = "jumprelu"
    kwargs = cfg.get("activation_fn_kwargs") or {}
    k = cfg.get("k", kwargs.get("k"))
    if architecture == "topk" and k is None:
        raise UserError(f"{cfg_path}: TopK SAE without 'k'")
    normalize = cfg.get("normalize_activations") or "none"
    if normalize not in ("none", "constant_norm_rescale", "expected_average_only_in"):
        raise UserError(f"{cfg_path}: normalize_activations={normalize!r} not supported")
    if normalize == "expected_average_only_in":
        normalize = "none"  # SAELens folds this scaling factor into the saved weights
    sae = SparseAutoencoder(int(d_in), int(d_sae), architecture, int(k) if k else None,
                            bool(cfg.get("apply_b_dec_to_input", True)), normalize)
    expected = {name: tuple(p.shape) for name, p in sae.named_parameters()}
    state = {}
    for name, shape in expected.items():
        if name not in tensors:
            raise UserError(f"{weights_path}: missing tensor {name} for a {architecture} SAE")
        if tuple(tensors[name].shape) != shape:
            raise UserError(f"{weights_path}: {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
        state[name] = tensors[name].to(torch.float32)
    sae.load_state_dict(state)
    return sae.eval(), cfg


def layer_from_hook_name(hook_name: str | None) -> int | None:
    """`blocks.L.hook_resid_pre` -> L, `blocks.L.hook_resid_post` -> L + 1 (our layer = hidden_states index)."""
    match = re.fullmatch(r"blocks\.(\d+)\.hook_resid_(pre|post)", hook_name or "")
    if not match:
        return None
    return int(match.group(1)) + (1 if match.group(2) == "post" else 0)


def encode_batched(sae: SparseAutoencoder, acts: np.ndarray, rows: int = 4096) -> np.ndarray:
    """SAE latents (n, d_sae) float32 of residual activations (n, d_in)."""
    if acts.shape[-1] != sae.d_in:
        raise UserError(f"the SAE expects {sae.d_in}-dim activations, the model layer gives {acts.shape[-1]}")
    out = np.zeros((len(acts), sae.d_sae), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(acts), rows):
            out[start:start + rows] = sae.encode(torch.from_numpy(np.ascontiguousarray(acts[start:start + rows])))
    return out
