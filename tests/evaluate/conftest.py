"""Fixtures for evaluation tests: a tiny random GPT checkpoint with a small BPE trained on the shipped probe text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


def probe_texts() -> list[str]:
    from tokfilter.evaluate.probes import probe_path

    texts = []
    for kind in ("forget", "retain"):
        for line in probe_path(kind).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            texts.append(record["question"] + " " + " ".join(record["choices"]))
    return texts


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    from tokfilter.tokenizer import train_tokenizer

    return train_tokenizer(probe_texts(), 512, tmp_path_factory.mktemp("tok") / "tokenizer.json")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer) -> Path:
    """A randomly initialised 2-layer GPT (d=32, seq_len=64) saved as a real checkpoint directory."""
    from tokfilter.model import GPT, GPTConfig
    from tokfilter.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tiny_tokenizer.vocab_size, n_layer=2, n_head=2, d_model=32, seq_len=64))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model", model, tokenizer=tiny_tokenizer)
