"""Char-span labels -> a per-token score sidecar (`NNNNN.scores.NAME.npy`) beside existing shards.

This is how exact or weak labels reach training without a classifier: each document's tokens are decoded (exact for
byte-level BPE and tiktoken), re-encoded with offsets, checked to give the same ids as the shard (so labels can never
be silently misaligned), and each token gets the highest score of the spans it overlaps. End-of-text tokens get 0.
A document without a label line is an error unless `missing="zero"`.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from tokfilter.atomic import save_npy
from tokfilter.errors import UserError
from tokfilter.labels.spans import Span, spans_to_token_scores
from tokfilter.shards import ShardSet


def write_label_sidecar(shards: ShardSet, labels: dict[str, list[Span]], name: str, missing: str = "error",
                        progress: bool = True) -> dict:
    """Write `NNNNN.scores.<name>.npy` for every shard from {doc_id: spans}; returns counts."""
    tokenizer = shards.tokenizer()
    labelled_tokens = total_tokens = unlabelled_docs = 0
    bar = tqdm(total=shards.num_tokens, desc=f"labels -> {name}", unit="tok", unit_scale=True, disable=not progress)
    for index in range(shards.num_shards):
        tokens = shards.tokens(index)
        scores = np.zeros(len(tokens), dtype=np.float16)
        for (start, end), meta in zip(shards.documents(index), shards.doc_meta(index)):
            ids = np.asarray(tokens[start:end], dtype=np.int64)
            spans = labels.get(str(meta["id"]))
            if spans is None:
                if missing != "zero":
                    raise UserError(f"no labels for document {meta['id']!r} (shard {index}); "
                                    "every document needs a label line, even an empty one")
                unlabelled_docs += 1
                continue
            if spans:
                text = tokenizer.decode(ids)
                again, offsets = tokenizer.encode(text)
                if not np.array_equal(again, ids):
                    raise UserError(f"document {meta['id']!r}: tokens do not round-trip through the tokenizer, "
                                    "so char-span labels cannot be aligned")
                token_scores = spans_to_token_scores(spans, offsets, len(text))
                scores[start:end] = token_scores.astype(np.float16)
                labelled_tokens += int((token_scores > 0).sum())
            bar.update(end - start + 1)
        total_tokens += len(tokens)
        save_npy(shards.score_path(index, name), scores)
    bar.close()
    return {"name": name, "tokens": total_tokens, "labelled_tokens": labelled_tokens,
            "labelled_frac": labelled_tokens / max(total_tokens, 1), "unlabelled_documents": unlabelled_docs}
