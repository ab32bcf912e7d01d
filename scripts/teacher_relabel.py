"""Relabel the host text of a demo's label part with the SmolLM2 teacher, out of fold (docs/classifiers.md).

    python scripts/teacher_relabel.py --run OUT_OF_TOKFILTER_DEMO --out LABELS.jsonl [--cache DIR] [--seed 0]
    python scripts/classifier_steps.py --run OUT --steps "recipe, sentence-min + natural x6 (both demos)" \
        --train-labels LABELS.jsonl --seeds 0 1 --json FILE

The spliced benchmark labels by provenance: every token of a news or biology host is keep, even the host's own
sentence about a stroke, and every token of a medical document is forget, even its line about a clinic's parking.
The biLM learns those errors. Here the teacher of scripts/build_teacher_labels.py (an MLP on SmolLM2-135M's residual
stream after block 16, with the mean of the 8 tokens on either side) relabels the host text: each label-part
document keeps its exact labels inside the spliced passage (`meta["passage"]`, whose provenance is the passage's
domain and is exact) and gets the teacher's p(forget) per SmolLM2 token elsewhere, as soft spans in steps of 0.05.
No document is relabelled by a probe trained on it: the label part is cut in two halves (seeded), and each half is
labelled by a probe trained on the other half's exact labels plus the hand-labelled natural documents (weight 3).

Writes LABELS.jsonl (the span contract, one record per label-part document). SmolLM2 reads the label part (about
900k tokens for the full demo) at 550-1,000 tokens/s on two cores: 15-28 minutes; `--cache DIR` keeps its
features (3 GB for the full demo) so a second run takes the probes' 4 minutes only.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from build_teacher_labels import (
    LAYER,
    NATURAL_WEIGHT,
    features,
    predict,
    soft_spans,
    token_labels,
    train_probe,
)

from tokfilter.atomic import atomic_path, save_npy
from tokfilter.classify.natural import load_natural
from tokfilter.labels.coarse import sentence_bounds
from tokfilter.labels.sae.offline import default_model
from tokfilter.labels.sae.reader import ResidualReader, load_lm
from tokfilter.labels.spans import spans_to_char_scores, write_labels
from tokfilter.pipeline.folds import demo_label_part


def cached_features(name: str, items: list, cache: Path | None, reader) -> tuple[np.ndarray, dict]:
    """Features of `items`' texts concatenated, with per-document token counts, char offsets and provenance labels;
    read from / written to `cache` when given, reused only for the same documents and labels (a digest of them)."""
    digest = hashlib.sha1(json.dumps([(doc.id, doc.text, spans) for doc, spans in items]).encode()).hexdigest()
    if cache and (cache / f"{name}.npz").exists():
        meta = dict(np.load(cache / f"{name}.npz"))
        if str(meta["digest"]) == digest:
            return np.load(cache / f"{name}.npy", mmap_mode="r"), meta
    feats = features(reader(), [doc.text for doc, _ in items], name)
    x = np.concatenate([f for f, _ in feats])
    meta = {"digest": np.array(digest), "lens": np.array([len(o) for _, o in feats]),
            "offsets": np.concatenate([o for _, o in feats]),
            "y": np.concatenate([token_labels(doc.text, spans, o) for (doc, spans), (_, o) in zip(items, feats)])}
    if cache:
        save_npy(cache / f"{name}.npy", x)
        with atomic_path(cache / f"{name}.npz", suffix=".npz") as tmp:  # last: it marks the pair complete
            np.savez(tmp, **meta)
    return x, meta


def host_spans(doc, spans, offsets: np.ndarray, p: np.ndarray) -> list[tuple[int, int, float]]:
    """The exact spans inside the document's spliced passage, the teacher's p(forget) (build_teacher_labels.soft_spans)
    outside it."""
    passage = doc.meta.get("passage")
    lo, hi = (passage["start"], passage["end"]) if passage else (len(doc.text), len(doc.text))
    inside = [(max(a, lo), min(b, hi), score) for a, b, score in spans if min(b, hi) > max(a, lo)]
    outside = [span for span in soft_spans(offsets, p) if span[1] <= lo or span[0] >= hi]
    return sorted(inside + outside)


def sentence_moves(items: list, relabelled: dict) -> dict:
    """Per source and host domain: sentences (20 characters or more), and the share whose mean label crosses 0.5
    from keep to forget and from forget to keep between the exact labels and `relabelled` ({id: spans})."""
    out: dict = {}
    for doc, spans in items:
        before = spans_to_char_scores(spans, len(doc.text))
        after = spans_to_char_scores(relabelled[doc.id], len(doc.text))
        row = out.setdefault(f"{doc.meta.get('source')} ({doc.domain})", [0, 0, 0])
        for start, end in sentence_bounds(doc.text):
            if end - start >= 20:
                old, new = before[start:end].mean(), after[start:end].mean()
                row[0] += 1
                row[1] += int(old < 0.5 <= new)
                row[2] += int(new < 0.5 <= old)
    return {key: {"sentences": n, "keep to forget": round(up / n, 4), "forget to keep": round(down / n, 4)}
            for key, (n, up, down) in sorted(out.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="output folder of a `tokfilter demo` run")
    parser.add_argument("--out", required=True, type=Path, help="labels JSONL to write")
    parser.add_argument("--cache", type=Path, default=None, help="folder for SmolLM2's features (reused)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    label = demo_label_part(args.run / "benchmark")
    items = [(b.document, b.spans) for b in label]

    @functools.cache
    def reader() -> ResidualReader:  # SmolLM2 loads only when a cache misses
        model, tokenizer = load_lm(default_model())
        return ResidualReader(model, tokenizer, LAYER, max_tokens=256, batch_size=16)

    x_natural, natural = cached_features("natural", load_natural(), args.cache, reader)
    x_label, meta = cached_features("label", items, args.cache, reader)
    edges = np.concatenate([[0], np.cumsum(meta["lens"])])
    order = list(range(len(items)))
    random.Random(args.seed).shuffle(order)
    half = np.zeros(len(items), int)
    half[order[::2]] = 1
    p = np.zeros(len(x_label), np.float32)
    for held in (0, 1):
        rows = np.concatenate([np.arange(edges[i], edges[i + 1]) for i in range(len(items)) if half[i] != held])
        x = np.concatenate([np.asarray(x_label[rows]), np.asarray(x_natural)])
        y = np.concatenate([meta["y"][rows], natural["y"]])
        w = np.concatenate([np.ones(len(rows), np.float32), np.full(len(x_natural), NATURAL_WEIGHT, np.float32)])
        probe = train_probe(x, y, w, args.seed + held)
        del x
        for i in np.flatnonzero(half == held):
            p[edges[i]:edges[i + 1]] = predict(probe, np.asarray(x_label[edges[i]:edges[i + 1]]))
        print(f"probe {held + 1}/2 done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    records = [(doc.id, host_spans(doc, spans, meta["offsets"][edges[i]:edges[i + 1]], p[edges[i]:edges[i + 1]]))
               for i, (doc, spans) in enumerate(items)]
    write_labels(args.out, records)
    y = meta["y"]
    print(json.dumps({"documents": len(records), "tokens": int(len(p)),
                      "mean_teacher_p": {"provenance forget": round(float(p[y >= 0.5].mean()), 4),
                                         "provenance keep": round(float(p[y < 0.5].mean()), 4)},
                      "disagreeing_tokens": round(float((np.abs(p - y) >= 0.5).mean()), 4),
                      "sentence_moves": sentence_moves(items, dict(records)),
                      "seconds": round(time.perf_counter() - t0)}))


if __name__ == "__main__":
    main()
