"""`annotate()`: score every shard of a corpus once with a token classifier, resumably, with any executor.

Everything that can be checked before work starts is checked here, in the calling process, so bad input fails with
one line and writes nothing: the classifier directory, the shards' tokenizer against the classifier's, every shard
file present with the lengths the manifest records, and an output directory we may write to. Then unfinished shards
(no valid completion marker, see `score.py`) go to the executor; finished ones are skipped and reported from their
markers. The summary covers all shards, skipped or not.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tokfilter.annotate.executors import EXECUTORS, run_local, run_ray
from tokfilter.annotate.score import (
    BATCH_TOKENS,
    DEFAULT_LOADER,
    DEFAULT_THRESHOLDS,
    cached_classifier,
    classifier_fingerprint,
    fractions_above,
    is_done,
    marker_path,
)
from tokfilter.errors import UserError
from tokfilter.shards import ShardSet

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _check_shard_files(shards: ShardSet) -> None:
    for index, info in enumerate(shards.manifest["shards"]):
        tokens, ends = shards.tokens(index), shards.doc_ends(index)  # UserError naming a missing/unreadable file
        if len(tokens) != int(info["tokens"]) or len(ends) != int(info["documents"]):
            raise UserError(f"{shards.dir}: shard {index:05d} has {len(tokens)} tokens / {len(ends)} documents, "
                            f"the manifest says {info['tokens']} / {info['documents']} (run `tokfilter shards verify`)")


def _check_writable(directory: Path) -> None:
    mode = directory.stat().st_mode
    if not os.access(directory, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise UserError(f"{directory}: output directory is read-only (scores are written beside the shards)")


def _clean_own_temporaries(directory: Path, name: str) -> None:
    for leftover in directory.glob(f".tmp-*.scores.{name}.*"):
        leftover.unlink(missing_ok=True)


def annotate(classifier_dir: str | Path, shards_dir: str | Path, name: str = "forget", executor: str = "local",
             workers: int = 1, thresholds=DEFAULT_THRESHOLDS, ray_address: str | None = None, threads: int = 1,
             batch_tokens: int = BATCH_TOKENS, loader: str = DEFAULT_LOADER, progress: bool = True,
             device: str = "auto") -> dict:
    """Write `NNNNN.scores.NAME.npy` beside every shard of `shards_dir`; returns the run summary (see module doc)."""
    t0 = time.perf_counter()
    if not NAME_RE.match(name):
        raise UserError(f"score name {name!r} may only hold letters, digits, '_' and '-'")
    if executor not in EXECUTORS:
        raise UserError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"device {device!r} is not auto, cpu or cuda")
    if workers < 1 or threads < 1:
        raise UserError(f"--workers ({workers}) and --threads ({threads}) must be at least 1")
    thresholds = tuple(float(t) for t in thresholds)
    if any(not 0.0 <= t <= 1.0 for t in thresholds):
        raise UserError(f"thresholds {thresholds} must lie in [0, 1]")
    fingerprint = classifier_fingerprint(classifier_dir)
    classifier = cached_classifier(classifier_dir, loader)
    shards = ShardSet(shards_dir, expect_tokenizer_hash=classifier.tokenizer_hash)
    _check_shard_files(shards)
    _check_writable(shards.dir)
    _clean_own_temporaries(shards.dir, name)

    per_shard: dict[int, dict] = {}
    todo = []
    for index in range(shards.num_shards):
        if is_done(shards.dir, index, name, fingerprint):
            per_shard[index] = {**json.loads(marker_path(shards.dir, index, name).read_text()), "skipped": True}
        else:
            todo.append(index)
    tasks = [{"classifier_dir": str(Path(classifier_dir).resolve()), "shards_dir": str(shards.dir.resolve()),
              "index": i, "name": name, "thresholds": thresholds, "loader": loader, "threads": threads,
              "batch_tokens": batch_tokens, "fingerprint": fingerprint, "device": device} for i in todo]
    todo_tokens = sum(int(shards.manifest["shards"][i]["tokens"]) for i in todo)
    bar = tqdm(total=todo_tokens, unit="tok", unit_scale=True, disable=not progress or not todo, file=sys.stderr,
               desc=f"annotate {name}")

    shown = {"tokens": 0}  # tokens already on the bar for the shard in progress (in-process runs report batches)

    def on_tokens(n: int) -> None:
        shown["tokens"] += n
        bar.update(n)

    def on_done(stats: dict) -> None:
        per_shard[stats["shard"]] = {**stats, "skipped": False}
        bar.update(stats["tokens"] - shown["tokens"])
        shown["tokens"] = 0
        bar.set_postfix(shards=f"{len(per_shard)}/{shards.num_shards}")

    t_score = time.perf_counter()
    try:
        if executor == "local":
            run_local(tasks, workers, on_done, on_tokens)
        else:
            run_ray(tasks, workers, on_done, address=ray_address, threads=threads, gpus=1 if device == "cuda" else 0)
    finally:
        bar.close()
    score_seconds = time.perf_counter() - t_score

    counts = {f"{t:g}": 0.0 for t in thresholds}
    content_tokens = 0
    for index in range(shards.num_shards):
        tokens = shards.tokens(index)
        n = int(np.count_nonzero(np.asarray(tokens) != shards.eot_id))
        for key, frac in fractions_above(shards.scores(index, name), tokens, shards.eot_id, thresholds).items():
            counts[key] += frac * n
        content_tokens += n
    scored_tokens = todo_tokens
    return {
        "name": name,
        "classifier": str(classifier_dir),
        "classifier_kind": getattr(classifier, "kind", None),
        "classifier_threshold": getattr(classifier, "threshold", None),
        "shards": str(shards_dir),
        "executor": executor,
        "workers": workers,
        "threads": threads,
        "devices": sorted({str(r.get("device")) for r in per_shard.values()}),
        "num_shards": shards.num_shards,
        "scored_shards": len(todo),
        "skipped_shards": shards.num_shards - len(todo),
        "tokens": shards.num_tokens,
        "scored_tokens": scored_tokens,
        "seconds": round(time.perf_counter() - t0, 3),
        "scoring_seconds": round(score_seconds, 3),
        "tokens_per_second": round(scored_tokens / score_seconds, 1) if scored_tokens and score_seconds > 0 else None,
        "frac_above": {k: v / max(content_tokens, 1) for k, v in counts.items()},
        "per_shard": [per_shard[i] for i in range(shards.num_shards)],
    }
