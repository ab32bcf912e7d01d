"""Load a checkpoint for evaluation, check its tokenizer, and wrap it in a `LogLikelihoodScorer`.

Checkpoints are directories with `config.json` + `model.safetensors` (+ a copy of the tokenizer file), written by
the training loop and read by `tokfilter.train.checkpoint.load_model` (a run directory holding `checkpoint/` works
too). A checkpoint that records no tokenizer needs `--tokenizer`.

A tokenizer passed with `--tokenizer` must be the one the checkpoint was trained with (same hash), and the model's
vocabulary must cover every tokenizer id; anything else is a `UserError` (exit 2, one line).
"""

from __future__ import annotations

from pathlib import Path

import torch

from tokfilter.errors import UserError
from tokfilter.evaluate.scoring import LogLikelihoodScorer
from tokfilter.runtime import resolve_device
from tokfilter.tokenizer import Tokenizer, load_tokenizer


def load_checkpoint(path: str | Path, tokenizer_spec: str | None = None, device: str = "auto"):
    """(model in eval mode on `device`, tokenizer) from a checkpoint directory; see the module docstring."""
    from tokfilter.train.checkpoint import load_model

    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: checkpoint directory not found")
    model, tokenizer = load_model(path)
    given = load_tokenizer(tokenizer_spec) if tokenizer_spec else None
    if tokenizer is None:
        if given is None:
            raise UserError(f"{path}: checkpoint records no tokenizer; pass --tokenizer")
        tokenizer = given
    elif given is not None:
        if given.hash != tokenizer.hash:
            raise UserError(f"{path}: checkpoint was trained with tokenizer {tokenizer.spec} (hash "
                            f"{tokenizer.hash[:12]}), not {tokenizer_spec} (hash {given.hash[:12]})")
    vocab = model.config.vocab_size
    if tokenizer.vocab_size > vocab:
        raise UserError(f"{path}: tokenizer has {tokenizer.vocab_size} ids but the model only {vocab} embeddings "
                        "(checkpoint made with another tokenizer)")
    model.to(resolve_device(device)).eval()
    return model, tokenizer


def scorer_for(model, tokenizer: Tokenizer, max_batch_tokens: int = 8192) -> LogLikelihoodScorer:
    """A scorer for a `tokfilter.model.GPT` (bf16 autocast on CUDA)."""
    device = next(model.parameters()).device
    autocast = torch.bfloat16 if device.type == "cuda" else None
    return LogLikelihoodScorer(model, seq_len=model.config.seq_len, pad_id=tokenizer.eot_id, device=device,
                               max_batch_tokens=max_batch_tokens, autocast_dtype=autocast)
