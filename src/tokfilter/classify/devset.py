"""The natural-text dev set: 48 real documents, hand-labelled at clause level for the forget (clinical medicine) domain.

Why: every other classifier figure the project reports is measured on the *spliced* benchmark (a medical passage pasted
into a biology or news document), where the boundary between forget and keep text is a seam between two documents.
Natural text mixes topics clause by clause: a news story mentions a stroke in one sentence, a genetics answer explains
what a gene does and then the disease its mutation causes. This set measures whether a classifier finds medicine there.

What: `devset/docs.jsonl` (`{"id", "text", "source", "domain", "group"}`) and `devset/labels.jsonl` (the project's
span-label contract, `tokfilter.labels.spans`). Three groups of 16 documents, none from the embedded demo corpus:
`mostly_forget` (medical text in unfamiliar registers: grouped HPO definitions, genetics-heavy GHR answers, patient
reviews), `mixed_few_forget` (news / WikiText / reviews with a few medical clauses) and `hard_negative` (medical-looking
words but no forget content: computer viruses, healthcare policy, animal behaviour, DNA repair, plant defence).
Provenance, per-document cuts and group statistics: `devset/PROVENANCE.md`; labelling rules: docs/labels.md.

Use: `tokfilter classifier eval --classifier DIR --data <devset_path()>/docs.jsonl --labels <devset_path()>/labels.jsonl`.
"""

from __future__ import annotations

from pathlib import Path

from tokfilter.corpus import Document, read_corpus
from tokfilter.labels.spans import Span, load_labels

GROUPS = ("mostly_forget", "mixed_few_forget", "hard_negative")


def devset_path() -> Path:
    """The folder holding docs.jsonl, labels.jsonl and PROVENANCE.md."""
    return Path(__file__).resolve().parent / "devset"


def load_devset() -> tuple[list[Document], dict[str, list[Span]]]:
    """All dev-set documents (file order) and their hand labels {doc_id: [(start, end, 1.0), ...]}."""
    root = devset_path()
    documents = list(read_corpus(str(root / "docs.jsonl")))
    return documents, load_labels(root / "labels.jsonl")


def groups(documents: list[Document] | None = None) -> dict[str, list[str]]:
    """Document ids per group, in file order: {"mostly_forget": [...], "mixed_few_forget": [...], "hard_negative": [...]}
    (of `documents` when given, else of the dev set read from disk)."""
    if documents is None:
        documents = list(read_corpus(str(devset_path() / "docs.jsonl")))
    result: dict[str, list[str]] = {name: [] for name in GROUPS}
    for document in documents:
        result[document.meta["group"]].append(document.id)
    return result


def evaluate_on_devset(classifier_dir: str | Path) -> dict:
    """Token metrics of a saved classifier on the dev set, at its saved threshold: over all documents and per group.

    Keys: "all" and each group name, each {"precision", "recall", "f1", "auroc", "documents", "keep_flagged",
    "forget_fraction", ...}."""
    from tokfilter.classify.train import evaluate_classifier  # torch: only when a classifier is evaluated

    documents, labels = load_devset()
    metrics = evaluate_classifier(classifier_dir, [(doc, labels.get(doc.id, [])) for doc in documents],
                                  groups=groups(documents))
    out = {"all": metrics, **metrics["groups"]}
    keep = ("precision", "recall", "f1", "auroc", "threshold", "documents", "keep_flagged", "forget_fraction")
    return {name: {k: m[k] for k in keep if k in m} for name, m in out.items()}
