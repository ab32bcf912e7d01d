"""Exports: stored scores + a threshold + a mode -> training data other trainers read. Format details: docs/exports.md.

Decisions come from the training loader's pure functions (`tokfilter.train.data`: `token_labels`, `make_example`,
`document_scores`, `documents_to_drop`), so an export filters exactly what `tokfilter train` would:
a token is forget when score >= threshold, end-of-text tokens never are; masking is keyed on the *target* token;
`remove` also replaces forget tokens in the input by `<|hidden|>`; `document` drops documents whose aggregate score
(mean, or fraction of forget tokens) >= doc_threshold.

  hf         Hugging Face `datasets` directory (save_to_disk): one row per document, `input_ids` and `labels`
             (= input_ids with -100 where the loss is masked; HF models shift labels themselves), `id`, `domain`.
  datatrove  per shard `NNNNN.ds` (raw little-endian uint16, or uint32 when the vocabulary needs it, token ids),
             `NNNNN.ds.index` (uint64 document end offsets), `NNNNN.ds.loss` (one uint8 per token: 1 = the token is
             learned as a target, 0 = masked) and `NNNNN.ds.metadata` (tokenizer, token count), as datatrove's
             `DocumentTokenizer(save_loss_metadata=True)` writes them.
  dolma      `documents/NNNNN.jsonl.gz` ({"id", "text", "source"}, text decoded from the tokens) and
             `attributes/NAME/NNNNN.jsonl.gz` ({"id", "attributes": {...}}) with character spans
             [start, end, score] of forget tokens (mask/remove) or of the dropped document (document).
  FilteredTokenDataset  a PyTorch map-style Dataset of fixed-length (input_ids, targets) windows with -100 targets.

Every export writes into a temporary directory beside `out` and renames it at the end: an interrupted export
leaves no directory that looks complete. An existing `out` is refused.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tokfilter.errors import UserError
from tokfilter.filtering import IGNORE_INDEX, document_scores, documents_to_drop, make_example, token_labels
from tokfilter.shards import ShardSet
from tokfilter.train.data import _KeptView, _RawView

FORMATS = ("hf", "datatrove", "dolma")
MODES = ("mask", "remove", "document")


@dataclass
class FilterSpec:
    name: str = "forget"
    threshold: float = 0.5
    mode: str = "mask"
    doc_threshold: float = 0.5
    doc_aggregate: str = "mean"

    def check(self, shards: ShardSet) -> None:
        if self.mode not in MODES:
            raise UserError(f"export mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.doc_aggregate not in ("mean", "frac"):
            raise UserError(f"document aggregate {self.doc_aggregate!r} is not 'mean' or 'frac'")
        if not shards.has_scores(self.name):
            raise UserError(f"{shards.dir}: no '{self.name}' scores for every shard "
                            f"(run `tokfilter annotate --name {self.name}`)")


def shard_decisions(shards: ShardSet, index: int, spec: FilterSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forget per token, drop per document, document aggregate) for shard `index` under `spec`.

    In `document` mode no token is forget (documents are dropped whole); otherwise no document is dropped."""
    tokens = np.asarray(shards.tokens(index))
    scores = shards.scores(index, spec.name)
    ends = np.asarray(shards.doc_ends(index))
    aggregate = document_scores(scores, ends, spec.doc_aggregate, spec.threshold)
    if spec.mode == "document":
        forget = np.zeros(len(tokens), dtype=bool)
        drop = documents_to_drop(aggregate, spec.doc_threshold)
    else:
        forget = token_labels(scores, spec.threshold) & (tokens != shards.eot_id)
        drop = np.zeros(len(ends), dtype=bool)
    return forget, drop, aggregate


def iter_documents(shards: ShardSet, spec: FilterSpec, progress: bool = False
                   ) -> Iterator[tuple[int, dict, np.ndarray, np.ndarray, np.ndarray]]:
    """(shard, meta, ids with eot, forget flags, scores) of every kept document, in order."""
    for index in tqdm(range(shards.num_shards), desc="export", unit="shard", disable=not progress):
        tokens = shards.tokens(index)
        scores = shards.scores(index, spec.name)
        forget, drop, _ = shard_decisions(shards, index, spec)
        ends = np.asarray(shards.doc_ends(index), dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        for d, meta in enumerate(shards.doc_meta(index)):
            if drop[d]:
                continue
            a, b = int(starts[d]), int(ends[d])
            yield index, meta, np.asarray(tokens[a:b]), forget[a:b], np.asarray(scores[a:b])


def hf_columns(ids: np.ndarray, forget: np.ndarray, mode: str, hidden_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, labels) of one document in Hugging Face convention: labels are the unshifted ids, -100 where the
    token is forget (as a target); `remove` also hides forget tokens in input_ids."""
    input_ids = ids.astype(np.int64)
    labels = input_ids.copy()
    if mode in ("mask", "remove"):
        labels[forget] = IGNORE_INDEX
        if mode == "remove":
            input_ids[forget] = hidden_id
    return input_ids, labels


def document_text_and_offsets(tokenizer, ids: np.ndarray) -> tuple[str, np.ndarray]:
    """Decoded text of token ids (eot excluded) and each token's [start, end) character span in it."""
    ids = [int(i) for i in ids]
    text = tokenizer.decode(ids)
    again, offsets = tokenizer.encode(text)
    if list(again) == ids:
        return text, np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    # the text does not re-encode to the same ids: place each token by decoding growing prefixes
    offsets = np.zeros((len(ids), 2), dtype=np.int64)
    previous = 0
    for i in range(len(ids)):
        end = len(tokenizer.decode(ids[:i + 1]))
        offsets[i] = (min(previous, end), end)
        previous = end
    return text, offsets


# ----- output directory handling -----


class _StagedDir:
    """A temporary directory beside `out`, renamed onto it on success and deleted on failure."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        if self.out.exists():
            raise UserError(f"{self.out}: already exists; choose another --out or remove it")
        parent = self.out.parent
        parent.mkdir(parents=True, exist_ok=True)
        if not os.access(parent, os.W_OK) or not parent.stat().st_mode & 0o222:
            raise UserError(f"{parent}: output directory is read-only")
        self.tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.out.name}-", dir=parent))

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.chmod(self.tmp, 0o755)
            os.replace(self.tmp, self.out)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _open_shards(shards_dir: str | Path, spec: FilterSpec) -> ShardSet:
    shards = ShardSet(shards_dir)
    spec.check(shards)
    return shards


# ----- the three file formats -----


def export_hf(shards_dir: str | Path, out: str | Path, spec: FilterSpec, progress: bool = False) -> dict:
    import datasets

    shards = _open_shards(shards_dir, spec)
    counts = {"documents": 0, "tokens": 0, "masked": 0}

    def rows():
        for _, meta, ids, forget, _ in iter_documents(shards, spec, progress):
            input_ids, labels = hf_columns(ids, forget, spec.mode, shards.hidden_id)
            counts["documents"] += 1
            counts["tokens"] += len(ids)
            counts["masked"] += int(np.count_nonzero(labels == IGNORE_INDEX))
            yield {"id": str(meta.get("id")), "domain": str(meta.get("domain")),
                   "input_ids": input_ids.tolist(), "labels": labels.tolist()}

    features = datasets.Features({"id": datasets.Value("string"), "domain": datasets.Value("string"),
                                  "input_ids": datasets.Sequence(datasets.Value("int32")),
                                  "labels": datasets.Sequence(datasets.Value("int32"))})
    if not progress:
        datasets.disable_progress_bars()
    with _StagedDir(out) as tmp:
        cache = tmp / ".cache"
        try:
            dataset = datasets.Dataset.from_generator(rows, features=features, cache_dir=str(cache))
        except datasets.exceptions.DatasetGenerationError as err:
            if isinstance(err.__cause__, UserError):  # a damaged shard, found while reading: say so in one line
                raise err.__cause__ from None
            raise
        dataset.save_to_disk(str(tmp / "data"))
        for item in (tmp / "data").iterdir():
            item.rename(tmp / item.name)
        (tmp / "data").rmdir()
        shutil.rmtree(cache, ignore_errors=True)
    return counts


def export_datatrove(shards_dir: str | Path, out: str | Path, spec: FilterSpec, progress: bool = False) -> dict:
    shards = _open_shards(shards_dir, spec)
    dtype = np.dtype("<u2") if shards.vocab_size <= 1 << 16 else np.dtype("<u4")
    counts = {"documents": 0, "tokens": 0, "masked": 0, "token_bytes": dtype.itemsize}
    tokenizer_name = shards.manifest["tokenizer"].get("spec", "unknown")
    with _StagedDir(out) as tmp:
        for index in tqdm(range(shards.num_shards), desc="export", unit="shard", disable=not progress):
            tokens = np.asarray(shards.tokens(index))
            forget, drop, _ = shard_decisions(shards, index, spec)
            ends = np.asarray(shards.doc_ends(index), dtype=np.int64)
            starts = np.concatenate([[0], ends[:-1]])
            keep = np.repeat(~drop, ends - starts)
            ids = tokens.astype(np.int64)
            if spec.mode == "remove":
                ids[forget] = shards.hidden_id
            ids, loss = ids[keep], (~forget)[keep]
            kept_ends = np.cumsum((ends - starts)[~drop]).astype("<u8")
            stem = f"{index:05d}.ds"
            ids.astype(dtype).tofile(tmp / stem)
            loss.astype(np.uint8).tofile(tmp / f"{stem}.loss")
            kept_ends.tofile(tmp / f"{stem}.index")
            (tmp / f"{stem}.metadata").write_text(f"{tokenizer_name}\n{len(ids)}\n{len(ids):,}T\n")
            counts["documents"] += int(len(kept_ends))
            counts["tokens"] += int(len(ids))
            counts["masked"] += int(np.count_nonzero(~loss))
    return counts


def export_dolma(shards_dir: str | Path, out: str | Path, spec: FilterSpec, progress: bool = False) -> dict:
    shards = _open_shards(shards_dir, spec)
    tokenizer = shards.tokenizer()
    key = f"tokfilter__{spec.name}__{spec.mode}"
    counts = {"documents": 0, "spans": 0}
    with _StagedDir(out) as tmp:
        (tmp / "documents").mkdir()
        (tmp / "attributes" / spec.name).mkdir(parents=True)
        for index in tqdm(range(shards.num_shards), desc="export", unit="shard", disable=not progress):
            tokens = np.asarray(shards.tokens(index))
            scores = np.asarray(shards.scores(index, spec.name), dtype=np.float32)
            forget, drop, aggregate = shard_decisions(shards, index, spec)
            with gzip.open(tmp / "documents" / f"{index:05d}.jsonl.gz", "wt", encoding="utf-8") as docs_fh, \
                    gzip.open(tmp / "attributes" / spec.name / f"{index:05d}.jsonl.gz", "wt",
                              encoding="utf-8") as attr_fh:
                for d, ((a, b), meta) in enumerate(zip(shards.documents(index), shards.doc_meta(index))):
                    text, offsets = document_text_and_offsets(tokenizer, tokens[a:b])
                    if spec.mode == "document":
                        spans = [[0, len(text), round(float(aggregate[d]), 6)]] if drop[d] else []
                    else:
                        spans = _flag_spans(offsets, forget[a:b], scores[a:b])
                    doc_id = str(meta.get("id"))
                    docs_fh.write(json.dumps({"id": doc_id, "text": text, "source": meta.get("domain")}) + "\n")
                    attr_fh.write(json.dumps({"id": doc_id, "attributes": {key: spans}}) + "\n")
                    counts["documents"] += 1
                    counts["spans"] += len(spans)
    return counts


def _flag_spans(offsets: np.ndarray, flags: np.ndarray, scores: np.ndarray) -> list[list]:
    """Character spans of flagged tokens, adjacent ones merged, each with the max score of its tokens."""
    spans: list[list] = []
    for (start, end), flag, score in zip(offsets.tolist(), flags.tolist(), scores.tolist()):
        if not flag or end <= start:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
            spans[-1][2] = max(spans[-1][2], round(score, 6))
        else:
            spans.append([start, end, round(score, 6)])
    return spans


def export(fmt: str, shards_dir: str | Path, out: str | Path, name: str = "forget", threshold: float = 0.5,
           mode: str = "mask", doc_threshold: float = 0.5, doc_aggregate: str = "mean",
           progress: bool = False) -> dict:
    """Export scored shards in `fmt` (hf, datatrove, dolma) to `out`; returns counts."""
    if fmt not in FORMATS:
        raise UserError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    spec = FilterSpec(name, threshold, mode, doc_threshold, doc_aggregate)
    counts = {"hf": export_hf, "datatrove": export_datatrove, "dolma": export_dolma}[fmt](
        shards_dir, out, spec, progress)
    return {"format": fmt, "out": str(out), "name": name, "threshold": threshold, "mode": mode,
            **({"doc_threshold": doc_threshold, "doc_aggregate": doc_aggregate} if mode == "document" else {}),
            **counts}


# ----- a PyTorch Dataset -----


class FilteredTokenDataset(torch.utils.data.Dataset):
    """Fixed-length training windows over scored shards with filtering applied, for any PyTorch training loop.

    Item i is `(input_ids, targets)`, two int64 tensors of `seq_len`: targets[t] = the token after input_ids[t],
    -100 where that target token is forget (mask, remove); in `remove` mode forget tokens in input_ids are the
    `<|hidden|>` id; in `document` mode dropped documents are cut out of the stream. Windows tile each shard's
    (kept) stream with stride seq_len and never cross shards. With `hf=True` an item is instead a dict
    {"input_ids", "labels"} of seq_len tokens in Hugging Face convention (labels unshifted, -100 where masked),
    ready for `transformers.Trainer` with a causal LM.
    """

    def __init__(self, shards_dir: str | Path, name: str = "forget", threshold: float = 0.5, mode: str = "mask",
                 seq_len: int = 1024, doc_threshold: float = 0.5, doc_aggregate: str = "mean", hf: bool = False):
        self.shards = ShardSet(shards_dir)
        self.spec = FilterSpec(name, threshold, mode, doc_threshold, doc_aggregate)
        self.spec.check(self.shards)
        self.seq_len, self.hf = seq_len, hf
        span = seq_len if hf else seq_len + 1
        self.views, self.scores, self.index = [], [], []
        for s in range(self.shards.num_shards):
            tokens = self.shards.tokens(s)
            if mode == "document":
                _, drop, _ = shard_decisions(self.shards, s, self.spec)
                view = _KeptView(tokens, self.shards.doc_ends(s), drop)
            else:
                view = _RawView(tokens)
            self.views.append(view)
            self.scores.append(self.shards.scores(s, name))
            self.index.extend((s, o) for o in range(0, max(view.length - span + 1, 0), seq_len))

    def _forget(self, s: int, window: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if self.spec.mode == "document":
            return np.zeros(len(window), dtype=bool)
        return token_labels(self.scores[s][positions], self.spec.threshold) & (window != self.shards.eot_id)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        s, o = self.index[i]
        if self.hf:
            window, positions = self.views[s].read(o, self.seq_len)
            input_ids, labels = hf_columns(window, self._forget(s, window, positions), self.spec.mode,
                                           self.shards.hidden_id)
            return {"input_ids": torch.from_numpy(input_ids), "labels": torch.from_numpy(labels)}
        window, positions = self.views[s].read(o, self.seq_len + 1)
        forget = self._forget(s, window, positions) if self.spec.mode in ("mask", "remove") else None
        x, y = make_example(window, forget, self.spec.mode, self.shards.hidden_id)
        return torch.from_numpy(x), torch.from_numpy(y)
