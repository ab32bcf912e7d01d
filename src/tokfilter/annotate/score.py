"""The scoring block: score one shard with a token classifier and write its scores sidecar (datatrove style).

`score_shard(classifier_dir, shards_dir, index, name)` is the whole unit of work. Executors (`executors.py`) only
decide where and how many of these run; the block itself knows nothing about processes or Ray, so every executor
writes the same bytes.

Determinism: documents of a shard are grouped into batches in file order (consecutive documents until
`batch_tokens` tokens), torch uses `threads` intra-op threads (1 by default, whatever the executor), and the
classifier's results do not depend on batch grouping. So a shard's score file is byte-identical whichever executor,
worker count or machine order produced it (on the same hardware and library versions).

Output and resumability, per shard `NNNNN`:
    NNNNN.scores.NAME.npy        float16 p(forget) per token; end-of-text positions get 0
    NNNNN.scores.NAME.done.json  completion marker: stats + sha256 of the score file + classifier fingerprint
The score file is written atomically (temp file + rename), then the marker. A shard counts as finished only when the
marker exists, names the same classifier and its sha256 matches the score file; anything else is redone. A killed
job leaves at most `.tmp-*` files (removed on the next run) or a score file without a marker (recomputed).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tokfilter import __version__
from tokfilter.atomic import save_npy, sha256_file, write_json
from tokfilter.errors import UserError
from tokfilter.runtime import resolve_device
from tokfilter.shards import ShardSet
from tokfilter.shards.format import scores_file, shard_name

DEFAULT_LOADER = "tokfilter.classify:load_classifier"
DEFAULT_THRESHOLDS = (0.3, 0.5, 0.7)
BATCH_TOKENS = 1 << 15

_classifiers: dict[tuple[str, str], object] = {}  # per-process cache: workers reuse a loaded classifier


def marker_path(shards_dir: str | Path, index: int, name: str) -> Path:
    return Path(shards_dir) / f"{shard_name(index)}.scores.{name}.done.json"


def classifier_fingerprint(classifier_dir: str | Path) -> str:
    """sha256 over the names and bytes of the classifier directory's files: scores are tied to these weights."""
    directory = Path(classifier_dir)
    if not directory.is_dir():
        raise UserError(f"{directory}: classifier directory not found")
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cached_classifier(classifier_dir: str | Path, loader: str = DEFAULT_LOADER):
    """The classifier in `classifier_dir`, loaded once per process. `loader` is "module:function" (the default is
    `tokfilter.classify.load_classifier`, i.e. `tokfilter.classify.registry.load_classifier`; other loaders let tests
    and plugins supply their own classifier kinds)."""
    key = (loader, str(Path(classifier_dir).resolve()))
    if key not in _classifiers:
        module_name, _, func_name = loader.partition(":")
        try:
            load = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as err:
            raise UserError(f"classifier loader {loader!r} cannot be imported ({err})") from None
        _classifiers[key] = load(classifier_dir)
    return _classifiers[key]


def document_batches(doc_ends: np.ndarray, batch_tokens: int) -> list[list[tuple[int, int]]]:
    """Consecutive documents (token ranges, eot excluded) grouped until `batch_tokens`: fixed for a given shard."""
    ends = np.asarray(doc_ends, dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    batches, current, size = [], [], 0
    for start, end in zip(starts.tolist(), (ends - 1).tolist()):
        current.append((start, end))
        size += end - start
        if size >= batch_tokens:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


def fractions_above(scores: np.ndarray, tokens: np.ndarray, eot_id: int, thresholds) -> dict[str, float]:
    """Fraction of non-eot tokens whose score >= each threshold."""
    values = np.asarray(scores, dtype=np.float32)[np.asarray(tokens) != eot_id]
    n = max(len(values), 1)
    return {f"{t:g}": float(np.count_nonzero(values >= t) / n) for t in thresholds}


def default_threshold(shards_dir: str | Path, name: str, fallback: float = 0.5) -> float:
    """The threshold the classifier that wrote these scores recommends (its validation-F1 optimum, recorded in the
    completion markers), or `fallback` when there is none (scores from elsewhere, e.g. exact labels)."""
    for marker in sorted(Path(shards_dir).glob(f"*.scores.{name}.done.json")):
        try:
            value = json.loads(marker.read_text(encoding="utf-8")).get("classifier_threshold")
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            continue
        if isinstance(value, (int, float)):
            return float(value)
    return fallback


def is_done(shards_dir: str | Path, index: int, name: str, fingerprint: str) -> bool:
    """True when shard `index` has a marker for this classifier whose sha256 matches its score file."""
    marker = marker_path(shards_dir, index, name)
    scores = Path(shards_dir) / scores_file(index, name)
    if not marker.is_file() or not scores.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return False
    return info.get("classifier_fingerprint") == fingerprint and info.get("sha256") == sha256_file(scores)


def score_shard(classifier_dir: str | Path, shards_dir: str | Path, index: int, name: str = "forget",
                thresholds=DEFAULT_THRESHOLDS, loader: str = DEFAULT_LOADER, threads: int = 1,
                batch_tokens: int = BATCH_TOKENS, fingerprint: str | None = None, device: str = "auto",
                on_tokens: Callable[[int], None] | None = None) -> dict:
    """Score shard `index` of `shards_dir` and write its scores and completion marker; returns the shard's stats.

    `device`: "auto" (a GPU when this worker sees one), "cpu" or "cuda"; it is applied through the classifier's
    optional `to(device)` method (classifiers without one run where they are). `on_tokens(n)` (in-process runs
    only) is called after each batch with the number of tokens just scored, for a progress bar."""
    import torch

    t0, cpu0 = time.perf_counter(), time.process_time()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        classifier = cached_classifier(classifier_dir, loader)
        device = resolve_device(device).type if device == "auto" else str(resolve_device(device))
        if hasattr(classifier, "to"):
            classifier.to(device)
        shards = ShardSet(shards_dir, expect_tokenizer_hash=classifier.tokenizer_hash)
        tokens = np.asarray(shards.tokens(index))
        doc_ends = np.asarray(shards.doc_ends(index))
        scores = np.zeros(len(tokens), dtype=np.float16)
        with torch.inference_mode():
            for batch in document_batches(doc_ends, batch_tokens):
                docs = [tokens[a:b].astype(np.int64) for a, b in batch]
                outputs = classifier.score_batch(docs)
                for (a, b), out in zip(batch, outputs, strict=True):
                    out = np.asarray(out, dtype=np.float32)
                    if out.shape != (b - a,):
                        raise RuntimeError(f"classifier returned {out.shape} scores for a {b - a}-token document")
                    scores[a:b] = np.clip(out, 0.0, 1.0).astype(np.float16)
                if on_tokens is not None:
                    on_tokens(batch[-1][1] + 1 - batch[0][0])  # the batch's documents and their eot tokens
    finally:
        torch.set_num_threads(previous_threads)
    final = shards.score_path(index, name)
    save_npy(final, scores)
    stats = {
        "shard": index,
        "name": name,
        "tokens": int(len(tokens)),
        "documents": int(len(doc_ends)),
        "seconds": round(time.perf_counter() - t0, 4),
        "cpu_seconds": round(time.process_time() - cpu0, 4),
        "frac_above": fractions_above(scores, tokens, shards.eot_id, thresholds),
        "sha256": sha256_file(final),
        "classifier_dir": str(Path(classifier_dir).resolve()),
        "classifier_fingerprint": fingerprint or classifier_fingerprint(classifier_dir),
        "classifier_kind": getattr(classifier, "kind", None),
        "classifier_threshold": getattr(classifier, "threshold", None),
        "threads": threads,
        "batch_tokens": batch_tokens,
        "device": device,
        "host": os.uname().nodename,
        "tokfilter_version": __version__,
    }
    write_json(marker_path(shards_dir, index, name), stats)
    return stats
