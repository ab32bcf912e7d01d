"""The classifier step leaves out every hand-labelled natural training document that the scored corpus holds, as a
document (same id or text) or as a spliced passage's donor, so no token is scored by a classifier trained on it."""

from __future__ import annotations

from tokfilter.classify.natural import load_natural, natural_items
from tokfilter.corpus.document import Document
from tokfilter.labels.benchmark import BenchmarkDoc
from tokfilter.pipeline.steps.classifier import _corpus_documents


def test_corpus_documents_and_donors_are_excluded():
    natural = [doc for doc, _ in load_natural()]
    same_id, same_text, donor = natural[0], natural[1], natural[2]
    split = {
        "train": [BenchmarkDoc(Document(same_id.id, "a different text", "general"), []),
                  BenchmarkDoc(Document("host-1", "host text with a passage", "retain",
                                        {"passage": {"id": donor.id, "start": 0, "end": 4}}), [(0, 4, 1.0)])],
        "valid": [BenchmarkDoc(Document("copy", same_text.text, "general"), [])],
        "test": [BenchmarkDoc(Document("unrelated", "nothing natural here", "general"), [])],
    }
    excluded = _corpus_documents(split)
    assert len(excluded) == 5  # four documents and one text-less donor stub
    kept = {doc.id.split(":", 1)[1] for doc, _ in natural_items(1, excluded)}
    assert kept == {doc.id for doc in natural} - {same_id.id, same_text.id, donor.id}
