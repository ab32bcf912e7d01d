"""Tokenize a corpus into shards: parallel over processes, atomic, resumable, nothing truncated or dropped.

Documents stream from the readers in order, are tokenized in batches by a process pool (`imap` keeps the order, so
the output is identical whatever the worker count), and are appended to the current shard; a shard is flushed once it
holds `shard_tokens` tokens. A document is never split across shards and never truncated. Each shard file is written
atomically, and `.tokenize-state.json` records finished shards, so a killed job resumes after the last finished shard
and produces byte-identical files. Bad input (`UserError`) removes what this job wrote: no partial dataset is left.
"""

from __future__ import annotations

import array
import hashlib
import json
import multiprocessing as mp
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tokfilter import __version__
from tokfilter.atomic import clean_temporaries, save_npy, sha256_file, write_json, write_text
from tokfilter.corpus.document import Document
from tokfilter.corpus.readers import ReadStats
from tokfilter.errors import UserError
from tokfilter.shards.format import FORMAT_NAME, FORMAT_VERSION, MANIFEST, docs_file, meta_file, tokens_file
from tokfilter.tokenizer import Tokenizer, load_tokenizer

STATE_FILE = ".tokenize-state.json"
DEFAULT_SHARD_TOKENS = 1 << 24
BATCH_DOCS = 128  # documents per task sent to a worker process
LOCAL_BATCH_DOCS = 256  # documents per in-process encode_batch call (multi-threaded inside `tokenizers`)

_worker_tokenizer: Tokenizer | None = None


def _init_worker(spec: str) -> None:
    global _worker_tokenizer
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _worker_tokenizer = load_tokenizer(spec)


def _encode_in_worker(texts: list[str]) -> list[list[int]]:
    assert _worker_tokenizer is not None
    return _worker_tokenizer.encode_batch_ids(texts)


def _batches(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while batch := list(islice(iterator, size)):
        yield batch


class _ShardBuffer:
    """Documents of the shard being filled: token ids in one growing C array (no per-document numpy arrays)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.ids = array.array("H" if dtype == np.uint16 else "I")
        self.ends: list[int] = []
        self.meta_lines: list[str] = []

    @property
    def tokens(self) -> int:
        return len(self.ids)

    def add(self, ids: list[int], eot_id: int, document: Document) -> None:
        self.ids.extend(ids)
        self.ids.append(eot_id)
        self.ends.append(len(self.ids))
        meta = {"id": document.id, "domain": document.domain, **document.meta}
        self.meta_lines.append(json.dumps(meta, ensure_ascii=False, default=str))


def _flush(buffer: _ShardBuffer, out_dir: Path, index: int, dtype: np.dtype) -> dict:
    tokens = np.frombuffer(buffer.ids, dtype=np.dtype(buffer.ids.typecode)).astype(dtype, copy=False)
    save_npy(out_dir / tokens_file(index), tokens)
    save_npy(out_dir / docs_file(index), np.asarray(buffer.ends, dtype=np.uint64))
    write_text(out_dir / meta_file(index), "".join(line + "\n" for line in buffer.meta_lines))
    return {
        "index": index,
        "tokens": int(len(tokens)),
        "documents": len(buffer.ends),
        "sha256": {kind: sha256_file(out_dir / name(index))
                   for kind, name in (("tokens", tokens_file), ("docs", docs_file), ("meta", meta_file))},
    }


def _job_key(sources: list[str], tokenizer: Tokenizer, shard_tokens: int, text_field: str) -> str:
    described = []
    for source in sources:
        path = Path(source.split("=", 1)[-1])
        stat = path.stat() if path.exists() and path.is_file() else None
        described.append([source, stat.st_size if stat else None, stat.st_mtime_ns if stat else None])
    blob = json.dumps([described, tokenizer.hash, shard_tokens, text_field, FORMAT_VERSION])
    return hashlib.sha256(blob.encode()).hexdigest()


def _remove_outputs(out_dir: Path, created_dir: bool) -> None:
    for path in out_dir.glob("[0-9][0-9][0-9][0-9][0-9].*"):
        path.unlink(missing_ok=True)
    for name in (STATE_FILE, MANIFEST):
        (out_dir / name).unlink(missing_ok=True)
    clean_temporaries(out_dir)
    for leftover in out_dir.iterdir():
        if leftover.name in ("tokenizer.json",) or leftover.suffix == ".tiktoken":
            leftover.unlink()
    if created_dir and not any(out_dir.iterdir()):
        out_dir.rmdir()


def write_shards(
    documents: Iterable[Document],
    tokenizer: Tokenizer,
    out_dir: str | Path,
    *,
    sources: list[str] | None = None,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    workers: int = 1,
    text_field: str = "text",
    read_stats: ReadStats | None = None,
    progress: bool = True,
) -> dict:
    """Tokenize `documents` into a shard directory and return its manifest (see module docstring).

    `workers` > 1 tokenizes in that many processes; `workers` <= 1 tokenizes in this process (for Hugging Face
    tokenizers `encode_batch` is itself multi-threaded).
    """
    out_dir = Path(out_dir)
    created_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = list(sources or [])
    job_key = _job_key(sources, tokenizer, shard_tokens, text_field)
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("job_key") == job_key:
            return manifest  # already complete for exactly these inputs
        raise UserError(f"{out_dir}: already holds shards of another corpus or tokenizer; choose another --out")
    clean_temporaries(out_dir)

    state_path = out_dir / STATE_FILE
    done_shards: list[dict] = []
    skip_docs = 0
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("job_key") == job_key:
            done_shards, skip_docs = state["shards"], state["documents"]
    dtype = tokenizer.id_dtype
    tokenizer_file = tokenizer.save_to(out_dir)
    stats = read_stats if read_stats is not None else ReadStats()
    started = time.time()
    pool = None
    try:
        stream = islice(documents, skip_docs, None)
        if workers > 1:
            pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(tokenizer.spec,))
        buffer = _ShardBuffer(dtype)
        total_docs = skip_docs
        bar = tqdm(desc="tokenize", unit="tok", unit_scale=True, disable=not progress,
                   initial=sum(s["tokens"] for s in done_shards))
        for batch, ids_batch in _encode_in_order(stream, tokenizer, pool, in_flight=4 * max(workers, 1)):
            for document, ids in zip(batch, ids_batch):
                buffer.add(ids, tokenizer.eot_id, document)
                bar.update(len(ids) + 1)
                total_docs += 1
                if buffer.tokens >= shard_tokens:  # per document, so shard boundaries ignore batching
                    done_shards.append(_flush(buffer, out_dir, len(done_shards), dtype))
                    buffer = _ShardBuffer(dtype)
                    write_json(state_path, {"job_key": job_key, "shards": done_shards, "documents": total_docs})
        if buffer.ends:
            done_shards.append(_flush(buffer, out_dir, len(done_shards), dtype))
        bar.close()
        if not done_shards:
            raise UserError(f"empty corpus: no non-empty document in {', '.join(sources) or 'the input'}")
    except BaseException as err:
        if pool is not None:
            pool.terminate()
        if isinstance(err, UserError):
            _remove_outputs(out_dir, created_dir)
        raise
    finally:
        if pool is not None:
            pool.close()
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "tokfilter_version": __version__,
        "tokenizer": {**tokenizer.manifest(), "file": tokenizer_file if tokenizer_file != tokenizer.spec else None},
        "dtype": dtype.name,
        "eot_id": tokenizer.eot_id,
        "hidden_id": tokenizer.hidden_id,
        "sources": sources,
        "text_field": text_field,
        "num_shards": len(done_shards),
        "num_documents": int(sum(s["documents"] for s in done_shards)),
        "num_tokens": int(sum(s["tokens"] for s in done_shards)),
        "empty_documents_skipped": stats.empty_skipped,  # the reader re-reads skipped prefixes, so this is complete
        "shard_tokens": shard_tokens,
        "job_key": job_key,
        "shards": done_shards,
        "seconds": round(time.time() - started, 3),
    }
    write_json(manifest_path, manifest)
    state_path.unlink(missing_ok=True)
    return manifest


def _prefetch(iterable: Iterable, depth: int = 2) -> Iterator:
    """Iterate `iterable` in a background thread, `depth` items ahead; its exceptions re-raise here."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((done, None))
        except BaseException as err:  # handed to the consumer
            items.put((done, err))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, err = items.get()
            if item is done:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()


def _encode_in_order(documents: Iterable[Document], tokenizer: Tokenizer, pool, in_flight: int
                     ) -> Iterator[tuple[list[Document], list[list[int]]]]:
    """Yield (batch, token ids) in input order, with at most `in_flight` batches queued in the pool."""
    if pool is None:
        # Three stages overlap: a thread reads and parses batch n+2, another encodes batch n+1 (encode_batch drops
        # the GIL and is multi-threaded itself) while the caller appends batch n to the shard.
        with ThreadPoolExecutor(max_workers=1) as encoder:
            pending = None
            for batch in _prefetch(_batches(documents, LOCAL_BATCH_DOCS)):
                future = encoder.submit(tokenizer.encode_batch_ids, [d.text for d in batch])
                if pending is not None:
                    yield pending[0], pending[1].result()
                pending = (batch, future)
            if pending is not None:
                yield pending[0], pending[1].result()
        return
    batches = _batches(documents, BATCH_DOCS)
    pending: deque = deque()
    for batch in batches:
        pending.append((batch, pool.apply_async(_encode_in_worker, ([d.text for d in batch],))))
        if len(pending) >= in_flight:
            done_batch, result = pending.popleft()
            yield done_batch, result.get()
    while pending:
        done_batch, result = pending.popleft()
        yield done_batch, result.get()
