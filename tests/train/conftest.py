"""Shards for the training tests, built once per session from the embedded real demo corpus.

The demo corpus tags whole documents with a domain; to have token-level truth, 40% of retain/general training
documents get one real medical passage (30-150 words from a forget-domain document) spliced in at a paragraph
boundary, and the `truth` score sidecar marks exactly the spliced characters' tokens (and every token of forget
documents) as forget. Held-out shards come from the corpus's `valid` split, spliced the same way.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

import tokfilter.corpus
from tokfilter.atomic import save_npy
from tokfilter.corpus import Document
from tokfilter.shards import ShardSet, write_shards
from tokfilter.tokenizer import train_tokenizer

DEMO_DIR = Path(tokfilter.corpus.__file__).parent / "demo_data"


def _read(domain: str) -> list[dict]:
    with gzip.open(DEMO_DIR / f"{domain}.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _splice(text: str, donors: list[str], rng: random.Random) -> tuple[str, list[tuple[int, int]]]:
    if rng.random() >= 0.4:
        return text, []
    words = rng.choice(donors).split()
    k = rng.randint(30, 150)
    s = rng.randint(0, max(len(words) - k, 0))
    passage = " ".join(words[s:s + k])
    paras = text.split("\n")
    i = rng.randint(0, len(paras))
    before = "\n".join(paras[:i])
    prefix = before + ("\n" if before else "")
    rest = "\n".join(paras[i:])
    return prefix + passage + ("\n" + rest if rest else ""), [(len(prefix), len(prefix) + len(passage))]


def build_spliced_shards(out: Path, max_docs: int | None = None, vocab_size: int = 1024, seed: int = 0):
    """(train ShardSet, valid ShardSet) with exact `truth` token labels; see the module docstring."""
    rng = random.Random(seed)
    records = {d: _read(d) for d in ("forget", "retain", "general")}
    donors = [r["text"] for r in records["forget"] if r["split"] == "train"]
    parts: dict[str, list] = {"train": [], "valid": []}
    for domain, recs in records.items():
        for r in recs:
            if r["split"] not in parts:
                continue
            if domain == "forget":
                text, spans = r["text"], [(0, len(r["text"]))]
            else:
                text, spans = _splice(r["text"], donors, rng)
            parts[r["split"]].append((r["id"], text, domain, spans))
    for split in parts:
        rng.shuffle(parts[split])
        if max_docs:
            parts[split] = parts[split][:max_docs if split == "train" else max_docs // 4]
    tokenizer = train_tokenizer([t for _, t, _, _ in parts["train"][:1500]], vocab_size, out / "tokenizer.json")
    return tuple(write_labelled_shards(docs, tokenizer, out / split) for split, docs in parts.items())


def write_labelled_shards(docs: list, tokenizer, directory: Path) -> ShardSet:
    """Shards of (id, text, domain, spans) documents with a `truth` sidecar: 1 on tokens overlapping a span."""
    write_shards([Document(i, t, d) for i, t, d, _ in docs], tokenizer, directory, shard_tokens=1 << 18,
                 progress=False)
    shards = ShardSet(directory)
    k = 0
    for s in range(shards.num_shards):
        scores = np.zeros(len(shards.tokens(s)), dtype=np.float16)
        start = 0
        for end in shards.doc_ends(s).astype(np.int64):
            _, text, _, spans = docs[k]
            k += 1
            _, offsets = tokenizer.encode(text)
            labels = np.zeros(len(offsets), dtype=np.float16)
            for a, b in spans:
                labels[(offsets[:, 0] < b) & (offsets[:, 1] > a)] = 1
            scores[start:start + len(labels)] = labels
            start = int(end)
        save_npy(shards.score_path(s, "truth"), scores)
    return shards


@pytest.fixture(scope="session")
def spliced_shards(tmp_path_factory):
    """Small version (1,200 training documents, ~350k tokens) for fast tests."""
    return build_spliced_shards(tmp_path_factory.mktemp("spliced"), max_docs=1200)
