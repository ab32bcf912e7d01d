"""A small exact-span benchmark built in memory from the embedded demo corpus (real text), shared by the tests."""

from __future__ import annotations

import pytest

from tokfilter.corpus.demo import load_demo
from tokfilter.labels.benchmark import BenchmarkConfig, make_benchmark, write_benchmark


@pytest.fixture(scope="session")
def tokenizer():
    from tokfilter.tokenizer import load_tokenizer
    from tokfilter.tokenizer.core import default_tokenizer_spec

    return load_tokenizer(default_tokenizer_spec())


@pytest.fixture(scope="session")
def small_bench():
    """{split: [BenchmarkDoc]} from 60 train / 12 valid / 12 test documents per domain (short ones first)."""
    docs = []
    for split, n in (("train", 60), ("valid", 12), ("test", 12)):
        for domain in ("forget", "retain", "general"):
            pool = sorted(load_demo(split, domain), key=lambda d: (len(d.text), d.id))
            docs += [d for d in pool if 400 < len(d.text) < 4000][:n]
    return make_benchmark(docs, BenchmarkConfig(seed=0))


@pytest.fixture(scope="session")
def small_bench_dir(small_bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    write_benchmark(small_bench, out, BenchmarkConfig(seed=0), ["demo-subset"])
    return out


@pytest.fixture(scope="session")
def tiny_budget() -> dict:
    """Classifier settings small enough for a test (seconds), same code path as the real budgets."""
    return dict(TINY)


TINY = {"d_model": 32, "n_layer": 1, "n_head": 2, "seq_len": 64, "batch_size": 8, "pretrain_steps": 5,
        "finetune_steps": 5, "layers": [0, 1], "head_hidden": 8}
