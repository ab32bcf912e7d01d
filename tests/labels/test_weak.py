"""weak_labels: one call per labeler kind, the documented defaults."""

from __future__ import annotations

import pytest

from tokfilter.corpus import Document
from tokfilter.labels.weak import weak_labels


def test_document_kind_uses_provenance_and_rejects_unknown_kinds():
    docs = [Document("a", "Fever.", "forget"), Document("b", "Rain.", "general")]
    assert weak_labels(docs, "document") == {"a": [(0, 6, 1.0)], "b": []}
    assert weak_labels(docs, "document", forget_domains=["general"]) == {"a": [], "b": [(0, 5, 1.0)]}
    with pytest.raises(ValueError, match="unknown weak labeler"):
        weak_labels(docs, "oracle")


def test_sentence_kind_labels_the_medical_sentence(shared_data):
    text = ("Patients with type 2 diabetes mellitus received metformin and insulin therapy for hyperglycemia. "
            "The band played three songs. The crowd sang along for an hour. Then the rain started.")
    spans = weak_labels([Document("d", text, "general")], "sentence", lexicon_dir=shared_data / "lexicons")["d"]
    labelled = "".join(text[s:e] for s, e, _ in spans)
    # the medical sentence is labelled; density averaged over +-1 sentence may spill one sentence, never further
    assert "metformin" in labelled and "crowd" not in labelled and "rain" not in labelled
