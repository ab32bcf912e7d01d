"""Stand-ins for testing the scoring plumbing (annotate, export, the viewer): a small random-weight token classifier
and small real shards. Not a classifier to use: it checks plumbing, determinism and resumability, not accuracy.

It ships inside the package so that worker processes (spawned pools, Ray workers, CLI subprocesses) can import it by
its loader string `tokfilter.testing:load_standin` with no path set-up.

The stand-in classifier implements the `tokfilter.classify` interface (kind, tokenizer_hash, params,
flops_per_token, score_tokens, score_batch).

Two tiny `tokfilter.model.GPT`s (one reads left to right, one reads the reversed document) with a logistic probe
on the concatenation of their final hidden states: the biLM architecture of PAPER.md, randomly initialised from a
seed (the annotate tests check plumbing, determinism and resumability, not accuracy). Saved as config.json +
model.safetensors; `load_standin(dir)` reads it back. Documents longer than seq_len are scored in windows.
STANDIN_DELAY (seconds, environment) makes every score_batch call sleep that long, to simulate a slow classifier
for the kill-and-resume test.

`build_shards` writes shards of real documents from the embedded demo corpus (three domains interleaved) with an
exact `truth` score: 1 on every token of forget-domain documents.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tokfilter.atomic import save_npy
from tokfilter.corpus.demo import load_demo
from tokfilter.model import GPT, GPTConfig
from tokfilter.shards import ShardSet, write_shards, writer
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec

LOADER = "tokfilter.testing:load_standin"


class StandinBiLM:
    kind = "standin-bilm"

    def __init__(self, config: dict, state: dict[str, torch.Tensor]):
        self.config = config
        self.tokenizer_hash = config["tokenizer_hash"]
        gpt = GPTConfig(**config["gpt"])
        self.fwd, self.bwd = GPT(gpt).eval(), GPT(gpt).eval()
        self.fwd.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("fwd.")})
        self.bwd.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("bwd.")})
        self.probe_w, self.probe_b = state["probe.weight"], state["probe.bias"]
        self.seq_len = gpt.seq_len
        self.params = self.fwd.num_params() + self.bwd.num_params() + self.probe_w.numel() + 1
        self.flops_per_token = 2.0 * self.params

    def score_tokens(self, ids: np.ndarray) -> np.ndarray:
        return self.score_batch([ids])[0]

    @torch.inference_mode()
    def score_batch(self, docs: list[np.ndarray]) -> list[np.ndarray]:
        if os.environ.get("STANDIN_DELAY"):
            time.sleep(float(os.environ["STANDIN_DELAY"]))
        T = self.seq_len
        rows, where = [], []
        for d, ids in enumerate(docs):
            ids = np.asarray(ids, dtype=np.int64)
            for a in range(0, len(ids), T):
                rows.append(ids[a:a + T])
                where.append((d, a))
        out = [np.zeros(len(ids), dtype=np.float32) for ids in docs]
        if not rows:
            return out
        x = torch.zeros(len(rows), T, dtype=torch.long)
        xr = torch.zeros(len(rows), T, dtype=torch.long)
        for r, row in enumerate(rows):
            x[r, :len(row)] = torch.from_numpy(row)
            xr[r, :len(row)] = torch.from_numpy(row[::-1].copy())
        hf = self.fwd.hidden_states(x)[-1]
        hb = self.bwd.hidden_states(xr)[-1]
        for r, row in enumerate(rows):
            n = len(row)
            feats = torch.cat([hf[r, :n], hb[r, :n].flip(0)], dim=-1)
            p = torch.sigmoid(feats @ self.probe_w + self.probe_b).numpy()
            d, a = where[r]
            out[d][a:a + n] = p
        return out


def make_standin(directory: str | Path, tokenizer, seed: int = 0, d_model: int = 32, n_layer: int = 1,
                 seq_len: int = 64) -> Path:
    """Write a randomly initialised stand-in classifier for `tokenizer` to `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    gpt = GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=n_layer, n_head=2, d_model=d_model, seq_len=seq_len)
    fwd, bwd = GPT(gpt), GPT(gpt)
    state = {f"fwd.{k}": v for k, v in fwd.state_dict().items()}
    state.update({f"bwd.{k}": v for k, v in bwd.state_dict().items()})
    state["probe.weight"] = torch.randn(2 * d_model) * 1.5
    state["probe.bias"] = torch.tensor(-0.5)
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))
    config = {"kind": StandinBiLM.kind, "tokenizer_hash": tokenizer.hash, "gpt": gpt.to_dict()}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


def load_standin(directory: str | Path) -> StandinBiLM:
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    return StandinBiLM(config, load_file(str(directory / "model.safetensors")))


def demo_documents(n: int = 60):
    """n documents from the demo corpus's valid split, the three domains interleaved."""
    docs = {d: load_demo("valid", d) for d in ("forget", "retain", "general")}
    out = []
    for i in range(n):
        domain = ("forget", "retain", "general")[i % 3]
        out.append(docs[domain][i // 3])
    return out


def build_shards(directory: Path, n_docs: int = 60, shard_tokens: int = 6000) -> ShardSet:
    """Shards of `n_docs` demo documents, with an exact `truth` score (1 on every token of forget documents)."""
    documents = demo_documents(n_docs)
    # the writer closes a shard only at a batch boundary; small batches give several small shards
    saved = {k: getattr(writer, k) for k in dir(writer) if k.endswith("BATCH_DOCS")}
    try:
        for key in saved:
            setattr(writer, key, 4)
        write_shards(documents, load_tokenizer(default_tokenizer_spec()), directory, shard_tokens=shard_tokens,
                     progress=False)
    finally:
        for key, value in saved.items():
            setattr(writer, key, value)
    shards = ShardSet(directory)
    for s in range(shards.num_shards):
        truth = np.zeros(len(shards.tokens(s)), dtype=np.float16)
        for (a, b), meta in zip(shards.documents(s), shards.doc_meta(s)):
            truth[a:b] = meta["domain"] == "forget"
        save_npy(shards.score_path(s, "truth"), truth)
    return shards
