"""SAE labeler: label forget tokens with sparse-autoencoder latents of a language model's residual stream.

The paper's weak labels (PAPER.md, pipeline step 1): run a large causal LM over documents, read the residual stream at
a late layer through a sparse autoencoder (SAE), pick the latents that mean "forget domain", and call a token forget
when it activates >= k of those latents at >= z standard deviations above each latent's mean (k=2, z=4); then grow
the labelled spans to convergence over adjacent tokens with any positive forget-latent activation.

Modules, each usable alone (dependencies point down this list, never up):
- `cli`: `tokfilter label sae`, all of the below, writing the char-span label JSONL of DESIGN.md.
- `label`: `label_rule` (the k/z rule plus span growth, `tokfilter.labels.grow.grow_spans`), `SAELabeler`,
  `build_labeler`, `label_documents`, and the `--selection-out` record (`selection_record` / `load_selection`).
- `judge`: `JudgeSelector`, an LLM judge over latent explanations (`openai_judge` calls an OpenAI-compatible API).
- `select`: `ContrastiveSelector` (offline default: smoothed firing-rate or mean-activation ratio forget/other,
  keep latents with high forget specificity, capped); any `stats -> latent indices` callable is a `Selector`.
- `train`: `train_sae` trains a TopK or ReLU SAE on cached activations (`SAETrainOptions`).
- `reader`: `load_lm` and `ResidualReader`: any Hugging Face causal LM (directory or GGUF) -> per-token residual
  activations at layer L with character offsets, so labels are tokenizer-independent.
- `stats`: `LatentStats`, per-latent firing counts and activation sums on forget vs other (retain + general)
  reference text, mean/std on all of it, and optionally each latent's top-activating contexts.
- `model`: `SparseAutoencoder` (ReLU, TopK or JumpReLU) with `save_sae` / `load_sae` in the SAELens layout
  (`cfg.json` + `sae_weights.safetensors`), so sae-lens itself stays an optional extra; `encode_batched`.

Trade-off: the paper uses Gemma-2-9B + Gemma Scope (16k latents, ~600 selected by an LLM reading auto-interp
explanations). Offline we default to SmolLM2-135M with a small SAE trained here and contrastive selection: weaker
latents and a selector that only knows what the reference text shows it, but nothing leaves the machine.
"""

from tokfilter.labels.sae.cli import add_sae_parser, run_label_sae
from tokfilter.labels.sae.judge import JudgeSelector, explain_latent, openai_judge, parse_score
from tokfilter.labels.sae.label import (
    SAELabeler,
    build_labeler,
    label_documents,
    label_rule,
    load_selection,
    selection_record,
)
from tokfilter.labels.sae.model import (
    ARCHITECTURES,
    SAE_CONFIG,
    SAE_WEIGHTS,
    SparseAutoencoder,
    encode_batched,
    layer_from_hook_name,
    load_sae,
    save_sae,
)
from tokfilter.labels.sae.reader import ResidualReader, collect_activations, load_lm
from tokfilter.labels.sae.select import ContrastiveSelector, Selector
from tokfilter.labels.sae.stats import LatentStats, reference_stats
from tokfilter.labels.sae.train import SAETrainOptions, train_sae

__all__ = [
    "ARCHITECTURES", "SAE_CONFIG", "SAE_WEIGHTS", "ContrastiveSelector", "JudgeSelector", "LatentStats",
    "ResidualReader", "SAELabeler", "SAETrainOptions", "Selector", "SparseAutoencoder", "add_sae_parser",
    "build_labeler", "collect_activations", "encode_batched", "explain_latent", "label_documents", "label_rule",
    "layer_from_hook_name", "load_lm", "load_sae", "load_selection", "openai_judge", "parse_score",
    "reference_stats", "run_label_sae", "save_sae", "selection_record", "train_sae",
]
