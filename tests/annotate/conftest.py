"""Fixtures for the annotate tests: small real shards from the embedded demo corpus and a stand-in classifier.

The stand-in classifier and shard builder live in `tokfilter.testing`, importable in child processes (spawned pool
workers, Ray workers, CLI subprocesses) with no path set-up; annotate() reaches the stand-in with
`loader=tokfilter.testing.LOADER`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer(default_tokenizer_spec())


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory, tokenizer):
    from tokfilter.testing import make_standin

    return make_standin(tmp_path_factory.mktemp("clf") / "standin", tokenizer)


@pytest.fixture(scope="session")
def bilm_classifier(tmp_path_factory, tokenizer) -> Path:
    """A real tokfilter biLM classifier directory (random weights: these tests check plumbing, not accuracy), read
    by annotate's default loader `tokfilter.classify.load_classifier`."""
    import torch

    from tokfilter.classify.bilm import BiLM, BiLMConfig
    from tokfilter.classify.interface import save_classifier

    torch.manual_seed(0)
    cfg = BiLMConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_layer=1, n_head=2, seq_len=64)
    out = tmp_path_factory.mktemp("bilm") / "classifier"
    return save_classifier(out, "bilm", tokenizer, BiLM(cfg).state_dict(), {"bilm": cfg.to_dict()}, 0.5)


@pytest.fixture(scope="session")
def source_shards(tmp_path_factory) -> Path:
    """A read-only-by-convention shard directory; tests copy it before writing scores (see `fresh_shards`)."""
    from tokfilter.testing import build_shards

    directory = tmp_path_factory.mktemp("src") / "shards"
    build_shards(directory)
    return directory


@pytest.fixture
def fresh_shards(tmp_path, source_shards) -> Path:
    import shutil

    target = tmp_path / "shards"
    shutil.copytree(source_shards, target)
    return target
