"""The classifier's training labels, chosen per experiment (`[classifier] labels`): exact spans or a weak teacher.

    exact     the benchmark's exact provenance spans (what a user with their own forget domain rarely has)
    sentence  lexicon-hit density per sentence (labels/coarse.py; the best cheap weak labeler)
    lexicon   medical term hits grown over medical words (labels/lexicon.py)
    document  provenance broadcast to every token: a forget document is forget end to end, a spliced biology or
              general document is not (the coarse labels of the paper's ablation)
    sae       SmolLM2-135M residual stream through an SAE trained here (labels/sae/offline.py; slow: cap the
              documents with `label_docs`)

Weak-to-strong: the biLM trains on the teacher's labels and is measured against the exact spans of the test split,
beside the teacher itself (`teacher_metrics`), so "the student beats its teacher" is a number in results.json.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tokfilter.labels.metrics import label_metrics
from tokfilter.labels.weak import weak_labels

SOURCES = ("exact", "sentence", "lexicon", "document", "sae")


def teacher_labels(source: str, documents: Sequence, reference: Sequence | None = None, sae_model: str = "",
                   sae_layer: int = 20, seed: int = 0, log: Callable[[str], None] | None = None
                   ) -> tuple[dict[str, list], dict]:
    """({doc_id: spans}, info) of weak labeler `source` (not "exact") on `documents`.

    `reference` (for `sae`) are exact-labelled benchmark documents (BenchmarkDoc) the SAE's reference text is drawn
    from: whole forget documents vs documents without a forget passage (never the documents being labelled)."""
    if source in ("sentence", "lexicon", "document"):
        return weak_labels(documents, source), {}
    if source != "sae":
        raise ValueError(f"unknown label source {source!r} (one of {', '.join(SOURCES)})")
    from tokfilter.labels.sae.offline import sae_labels

    reference = list(reference or [])
    forget = [b.document.text for b in reference if b.document.domain == "forget"][:80]
    other = [b.document.text for b in reference if b.document.domain != "forget" and not b.spans][:80]
    return sae_labels(documents, forget, other, model=sae_model, layer=sae_layer, seed=seed, log=log)


def teacher_metrics(labels: dict[str, list], gold: Sequence, tokenizer) -> dict:
    """Token precision / recall / F1 of a teacher's labels against exact spans (`gold`: BenchmarkDoc)."""
    result = label_metrics(labels, ((b.document.id, b.document.text, b.spans) for b in gold), tokenizer)
    token = result["token"]
    return {"documents": result["documents"], "tokens": result["tokens"], "precision": token["precision"],
            "recall": token["recall"], "f1": token["f1"], "predicted_fraction": token["predicted_fraction"]}
