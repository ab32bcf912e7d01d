"""Starting weights for the biLM's two language models: the packaged broad-text LMs, or a folder of them.

The demos' classifier would otherwise learn its language model from its own few hundred thousand training tokens
and mostly learn the registers of those sources. `scripts/build_bilm_init.py` pretrains both directions once on
~3.8M words of ../shared/data (no document of the embedded demo corpus or the natural-text dev set) for the
packaged tokenizer; `[classifier.settings] init = "packaged"` starts from those weights, then `pretrain_steps`
adapt them to the training documents and fine-tuning proceeds as usual. A folder holds lm.safetensors (`fwd.*`,
`bwd.*` GPT weights) and lm.json (architecture, tokenizer hash, provenance); the architecture and the tokenizer
must match the run's, or the run stops with a UserError naming the difference.
"""

from __future__ import annotations

from pathlib import Path

from tokfilter.atomic import read_json
from tokfilter.errors import UserError

ARCHITECTURE_KEYS = ("vocab_size", "seq_len", "n_layer", "d_model", "n_head")


def packaged_init() -> Path:
    """The folder of the shipped LM weights (built by scripts/build_bilm_init.py)."""
    return Path(__file__).resolve().parent / "pretrained"


def resolve_init(init: str) -> Path:
    folder = packaged_init() if init == "packaged" else Path(init)
    if not (folder / "lm.json").is_file() or not (folder / "lm.safetensors").is_file():
        raise UserError(f"classifier init {init!r}: {folder} holds no lm.json + lm.safetensors "
                        "(build them with scripts/build_bilm_init.py)")
    return folder


def read_init(init: str) -> dict:
    """lm.json of an init folder ("packaged" or a path)."""
    return read_json(resolve_init(init) / "lm.json", "metadata of a classifier init")


def load_init(model, init: str, tokenizer_hash: str) -> dict:
    """Copy an init's LM weights into `model` (a BiLM: its fwd, and bwd when it has one); returns the init's
    lm.json. Raises UserError when the architecture or the tokenizer differs from the model's."""
    import torch  # here, so the experiment loader can check an init's folder without importing torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_init(init)
    meta = read_json(folder / "lm.json", "metadata of a classifier init")
    want = {k: getattr(model.config, k) for k in ARCHITECTURE_KEYS}
    have = {k: meta.get("architecture", {}).get(k) for k in ARCHITECTURE_KEYS}
    if want != have:
        diff = ", ".join(f"{k} {have[k]} (init) vs {want[k]} (run)" for k in ARCHITECTURE_KEYS if want[k] != have[k])
        raise UserError(f"classifier init {init!r} does not fit this biLM: {diff}")
    if meta.get("tokenizer_hash") != tokenizer_hash:
        raise UserError(f"classifier init {init!r} was trained for tokenizer {meta.get('tokenizer_hash')}, this run "
                        f"uses {tokenizer_hash}: use the packaged tokenizer or set init = \"\"")
    try:
        tensors = load_file(str(folder / "lm.safetensors"))
    except (SafetensorError, OSError) as err:
        raise UserError(f"{folder}/lm.safetensors: not a readable safetensors file ({err})") from None
    parts = [("fwd", model.fwd)] + ([("bwd", model.bwd)] if model.bwd is not None else [])
    for prefix, module in parts:
        state = {k[len(prefix) + 1:]: v.to(torch.float32) for k, v in tensors.items() if k.startswith(prefix + ".")}
        module.load_state_dict(state)
    return meta
