"""The one interface every token classifier implements, and the classifier directory format.

    clf = load_classifier("out/classifier")   # tokfilter.classify.registry (also tokfilter.classify)
    clf.kind, clf.tokenizer_hash, clf.params, clf.flops_per_token, clf.threshold
    p = clf.score_tokens(ids)          # float32 p(forget) for every token of ONE document, any length
    ps = clf.score_batch([ids, ...])   # the same numbers, whatever the grouping into calls

`ids` are token ids of the classifier's own tokenizer (a copy lives in the directory); callers compare
`clf.tokenizer_hash` with their data's tokenizer hash and refuse a mismatch (`check_tokenizer`), because ids of
another vocabulary would be scored silently wrong. Scores are deterministic: no dropout, fixed-size batches.

Directory (written atomically file by file, config.json last):
    config.json        {"format": "tokfilter-classifier", "version", "kind", "tokenizer": manifest, "tokenizer_file",
                        "threshold", kind-specific settings}
    model.safetensors  every tensor (LM weights, head / probe weights, tables); never pickles
    tokenizer.json     (or the tiktoken file) the tokenizer copy
    metrics.json       validation / test metrics written by training
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tokfilter.atomic import atomic_path, read_json, write_json
from tokfilter.errors import UserError
from tokfilter.tokenizer import load_tokenizer

FORMAT = "tokfilter-classifier"
VERSION = 1
KINDS = ("bilm", "forward", "windowed", "encoder", "document")  # each has its class in `registry.CLASSIFIERS`


@runtime_checkable
class TokenClassifier(Protocol):
    kind: str
    tokenizer_hash: str
    params: int
    flops_per_token: float
    threshold: float

    def score_tokens(self, ids: np.ndarray) -> np.ndarray: ...

    def score_batch(self, docs: list[np.ndarray]) -> list[np.ndarray]: ...


def check_ids(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """ids as int64; ids outside the classifier's vocabulary mean another tokenizer's ids: UserError."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise UserError(f"score_tokens expects one document as a 1-D id array, got shape {ids.shape}")
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise UserError(f"token id {int(ids.max()) if ids.max() >= vocab_size else int(ids.min())} is outside the "
                        f"classifier's vocabulary of {vocab_size}: ids from another tokenizer?")
    return ids


def check_tokenizer(classifier, tokenizer_hash: str, where: str = "data") -> None:
    """Refuse to score ids made by another tokenizer than the classifier's."""
    if classifier.tokenizer_hash != tokenizer_hash:
        raise UserError(f"{where} was tokenized with tokenizer {tokenizer_hash[:12]}, but the classifier expects "
                        f"{classifier.tokenizer_hash[:12]}: retokenize or use a classifier trained for it")


def save_classifier(out_dir: str | Path, kind: str, tokenizer, tensors: dict[str, torch.Tensor], settings: dict,
                    threshold: float, metrics: dict | None = None) -> Path:
    """Write a classifier directory (see the module docstring)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors", suffix=".safetensors") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tokenizer_file = tokenizer.save_to(out)
    if metrics is not None:
        write_json(out / "metrics.json", metrics)
    config = {"format": FORMAT, "version": VERSION, "kind": kind, "tokenizer": tokenizer.manifest(),
              "tokenizer_file": tokenizer_file, "threshold": float(threshold), **settings}
    write_json(out / "config.json", config)
    return out


def read_classifier_config(directory: str | Path) -> dict:
    """A classifier directory's config.json, checked to be a tokfilter classifier of a known kind."""
    directory = Path(directory)
    path = directory / "config.json"
    if not directory.is_dir():
        raise UserError(f"{directory}: classifier directory not found")
    config = read_json(path, "config of a classifier directory")
    if config.get("format") != FORMAT:
        raise UserError(f"{path}: not a tokfilter classifier (format {config.get('format')!r})")
    if config.get("kind") not in KINDS:
        raise UserError(f"{path}: unknown classifier kind {config.get('kind')!r} (expected one of {', '.join(KINDS)})")
    return config


def load_tokenizer_copy(directory: str | Path, config: dict | None = None):
    """The tokenizer stored with a classifier; its hash must be the one recorded in config.json."""
    config = config or read_classifier_config(directory)
    spec = config["tokenizer"]["spec"] if config["tokenizer"]["kind"] == "tiktoken" and not config.get(
        "tokenizer_file") else config["tokenizer_file"]
    tokenizer = load_tokenizer(spec, base_dir=directory)
    if tokenizer.hash != config["tokenizer"]["hash"]:
        raise UserError(f"{directory}: tokenizer copy has hash {tokenizer.hash[:12]} but config.json records "
                        f"{config['tokenizer']['hash'][:12]}")
    return tokenizer


def load_tensors(directory: str | Path) -> dict[str, torch.Tensor]:
    path = Path(directory) / "model.safetensors"
    if not path.is_file():
        raise UserError(f"{path}: not found")
    try:
        return load_file(str(path))
    except SafetensorError as err:
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None
