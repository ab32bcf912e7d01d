"""A small exact-span benchmark built in memory from the embedded demo corpus (real text), shared by the tests."""

from __future__ import annotations

import re

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


WINDOW = 200
GRAM = 50  # a shared 200-char window always contains a reference 50-gram starting at a multiple of 50


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


@pytest.fixture(scope="session")
def shared_window():
    """shared_window(documents, reference) -> (doc id, window) of the first 200-character window (lower-cased,
    whitespace-normalised) that a document shares with a reference document, or None."""
    def find(documents, reference):
        texts = [_norm(d.text) for d in reference]
        grams = {text[j:j + GRAM] for text in texts for j in range(0, len(text) - GRAM + 1, GRAM)}
        joined = "\n".join(texts)
        for document in documents:
            text = _norm(document.text)
            for i in range(len(text) - GRAM + 1):
                if text[i:i + GRAM] in grams:  # candidate: check every 200-char window around it exactly
                    for k in range(max(0, i - WINDOW + GRAM), min(i, len(text) - WINDOW) + 1):
                        if text[k:k + WINDOW] in joined:
                            return document.id, text[k:k + WINDOW]
        return None
    return find
