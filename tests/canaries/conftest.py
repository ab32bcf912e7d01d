"""Fixtures for the canary tests: word sets of the shipped corpora (built once per session), a planted demo
corpus, and a tiny random GPT checkpoint with the packaged demo tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_corpus_words(shared_data) -> frozenset[str]:
    """Every lowercase word of ../shared/data/corpora/*.jsonl.gz (skips when the data is absent)."""
    from tokfilter.canaries.names import corpus_words

    return frozenset(corpus_words(sorted((shared_data / "corpora").glob("*.jsonl.gz"))))


@pytest.fixture(scope="session")
def demo_train():
    from tokfilter.corpus.demo import load_demo

    return load_demo("train")


@pytest.fixture(scope="session")
def planted(demo_train):
    """(original documents, planted documents, manifest) for the default settings, seed 0."""
    from tokfilter.canaries import CanarySettings, plant_canaries

    documents, manifest = plant_canaries(demo_train, CanarySettings(enabled=True), 0)
    return demo_train, documents, manifest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer GPT (d=32) with the packaged demo BPE, saved as a checkpoint directory."""
    import torch

    from tokfilter.model import GPT, GPTConfig
    from tokfilter.tokenizer import load_tokenizer
    from tokfilter.tokenizer.core import default_tokenizer_spec
    from tokfilter.train.checkpoint import save_checkpoint

    tokenizer = load_tokenizer(default_tokenizer_spec())
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=2, n_head=2, d_model=32, seq_len=64))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model", model, tokenizer=tokenizer)
