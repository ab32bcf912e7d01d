"""Hand-labelled natural training documents: real text in which medicine is written the way news, encyclopaedias,
patients and genetics answers write it, labelled clause by clause (docs/labels.md "Labelling rules").

Why: the label part of a corpus is labelled by provenance and splicing, so a medical sentence in a news story is a
*keep* example there ("has died of congestive heart failure" in BBC news, a sports injury), and a health-policy story
or a patient's complaint about waiting times sits beside forget text only by accident. docs/classifiers.md "Where it
fails" traced the natural-text misses to exactly these. This set gives the classifier examples of both, labelled by
content: `natural/docs.jsonl` (`{"id", "text", "source", "domain", "group"}`) and `natural/labels.jsonl` (the span
contract of `tokfilter.labels.spans`), built by `scripts/build_natural_train.py` from `../shared/data` records that are
neither in the embedded demo corpus nor in the natural dev set (tests/classify/test_natural.py checks both); provenance
in `natural/PROVENANCE.md`.

Use: `natural_copies = N` in `[classifier.settings]` adds every document N times to the classifier's training
documents (never to validation or test). A corpus that holds one of these documents would be scored by a classifier
trained on it, so the pipeline leaves out every natural document whose id or text occurs in the corpus it scores
(`natural_items(exclude=...)`).

The teacher-labelled documents (`teacher/`, `teacher_copies`) use the same machinery: broad real text of
../shared/data whose soft labels come from a probe on SmolLM2-135M's residual stream (scripts/build_teacher_labels.py,
docs/classifiers.md "A teacher"), the paper's distillation step at this project's scale.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from tokfilter.corpus import Document, read_corpus
from tokfilter.labels.spans import Span, load_labels


def natural_path() -> Path:
    """The folder holding docs.jsonl, labels.jsonl, clauses.json and PROVENANCE.md."""
    return Path(__file__).resolve().parent / "natural"


def teacher_path() -> Path:
    """The folder holding the teacher-labelled documents: docs.jsonl, labels.jsonl (soft spans), teacher.json."""
    return Path(__file__).resolve().parent / "teacher"


def normalized(text: str) -> str:
    """The text with runs of whitespace as one space, stripped and lower-cased (what comparisons of texts read)."""
    return re.sub(r"\s+", " ", text).strip().lower()


def text_key(text: str) -> str:
    """A whitespace- and case-insensitive fingerprint of a text (which corpus documents equal a natural one)."""
    return hashlib.sha1(normalized(text).encode("utf-8")).hexdigest()


def load_labelled(root: Path) -> list[tuple[Document, list[Span]]]:
    """Every document of root/docs.jsonl (file order) with its spans from root/labels.jsonl ([]: all keep)."""
    labels = load_labels(root / "labels.jsonl")
    return [(doc, list(labels.get(doc.id, []))) for doc in read_corpus(str(root / "docs.jsonl"))]


def load_natural() -> list[tuple[Document, list[Span]]]:
    """Every natural training document (file order) with its hand labels (an empty list: all keep)."""
    return load_labelled(natural_path())


def source_ids(doc_id: str) -> set[str]:
    """The ids a packaged document stands for: itself, the record it was cut from (before `#`) and, for grouped
    definitions, each record of the group (joined by `+`)."""
    base = doc_id.split("#")[0]
    return {doc_id, base, *base.split("+")}


def labelled_items(root: Path, prefix: str, copies: int, exclude: Iterable[Document] = ()
                   ) -> list[tuple[Document, list[Span]]]:
    """`copies` copies of every document of `root` not in `exclude` (same id or source id, or same text up to case
    and spacing), as (document, spans) training items; each copy gets its own id (`{prefix}{k}:{id}`)."""
    if copies <= 0:
        return []
    excluded = list(exclude)
    ids = {doc.id for doc in excluded}
    keys = {text_key(doc.text) for doc in excluded}
    kept = [(doc, spans) for doc, spans in load_labelled(root)
            if not source_ids(doc.id) & ids and text_key(doc.text) not in keys]
    return [(Document(f"{prefix}{k}:{doc.id}", doc.text, doc.domain, dict(doc.meta)), spans)
            for k in range(copies) for doc, spans in kept]


def natural_items(copies: int, exclude: Iterable[Document] = ()) -> list[tuple[Document, list[Span]]]:
    """`copies` copies of every hand-labelled natural document not in `exclude` (ids `natural{k}:{id}`)."""
    return labelled_items(natural_path(), "natural", copies, exclude)


def teacher_items(copies: int, exclude: Iterable[Document] = ()) -> list[tuple[Document, list[Span]]]:
    """`copies` copies of every teacher-labelled document not in `exclude` (ids `teacher{k}:{id}`)."""
    return labelled_items(teacher_path(), "teacher", copies, exclude)
