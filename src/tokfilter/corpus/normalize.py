"""Opt-in cleaning of a plain corpus before a pipeline uses it: unique ids and a train / valid / test split per record.

A user's JSON Lines file often has no `split` field, records without an `id`, or ids shared by several records
(MedQuAD repeats a question's id for each of its answers). `read_corpus` yields such records as they are (a missing
id becomes `<source>:<line>`); these functions make the corpus usable and say what they changed, never dropping
or altering a record silently:

    normalize_documents   drop a record whose id and text both repeat an earlier one; rename a record whose id
                          repeats with different text to `id#2`, `id#3`, ...; count ids the reader assigned
    assign_splits         give every record without a split a deterministic one from a hash of its id
    prepare_corpus        read + normalize + assign splits, with one `CorpusReport` of every count
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from tokfilter.corpus.document import Document
from tokfilter.corpus.readers import ReadStats, SourceSpec, read_corpus
from tokfilter.errors import UserError

SPLITS = ("train", "valid", "test")
DEFAULT_VALID_FRAC = 0.05
DEFAULT_TEST_FRAC = 0.05


@dataclass
class CorpusReport:
    """What reading and cleaning a corpus did, for the pipeline's stage result and the user.

    documents_read      documents the readers yielded (empty ones are skipped before and counted in empty_skipped)
    ids_assigned        records without an id, given `<source>:<line>`
    duplicates_dropped  records whose id and text both repeat an earlier record (the first is kept)
    ids_renamed         records whose id repeats an earlier record's with different text (renamed `id#2`, ...)
    documents           documents kept
    splits_assigned     kept documents that had no split and got one from `assign_splits`
    split_counts        {domain: {split: documents}} over every kept document (domain None reads 'unknown')
    """

    documents_read: int = 0
    empty_skipped: int = 0
    ids_assigned: int = 0
    duplicates_dropped: int = 0
    ids_renamed: int = 0
    documents: int = 0
    splits_assigned: int = 0
    split_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line: `16,407 documents read, 16,407 kept; ... ` for logs."""
        parts = [f"{self.documents_read:,} documents read", f"{self.documents:,} kept"]
        for name, value in (("empty skipped", self.empty_skipped), ("ids assigned", self.ids_assigned),
                            ("duplicates dropped", self.duplicates_dropped), ("ids renamed", self.ids_renamed),
                            ("splits assigned", self.splits_assigned)):
            if value:
                parts.append(f"{value:,} {name}")
        return "; ".join(parts)


def normalize_documents(documents: Iterable[Document]) -> tuple[list[Document], CorpusReport]:
    """Make ids unique without losing a document: returns the kept documents (in input order) and a report.

    - A record whose id *and* text equal an earlier record's is a duplicate: dropped, counted in duplicates_dropped.
    - A record whose id equals an earlier record's but whose text differs is renamed `id#2`, `id#3`, ... (the
      smallest suffix no record in the input already uses), counted in ids_renamed. The first occurrence keeps
      its id, so renaming depends on input order; `assign_splits` hashes the id before its first `#`, so the
      renamed records share the original's split whatever the order.
    - Ids the reader made up for records without one (`Document.id_assigned`) are counted in ids_assigned.
    Documents that are renamed are copies; the others are passed through as they are.
    """
    documents = list(documents)
    report = CorpusReport(documents_read=len(documents))
    taken = {doc.id for doc in documents}
    texts_of: dict[str, set[str]] = {}  # original id -> texts kept under it
    next_suffix: dict[str, int] = {}
    kept: list[Document] = []
    for doc in documents:
        report.ids_assigned += doc.id_assigned
        texts = texts_of.setdefault(doc.id, set())
        if not texts:
            texts.add(doc.text)
            kept.append(doc)
            continue
        if doc.text in texts:
            report.duplicates_dropped += 1
            continue
        texts.add(doc.text)
        k = next_suffix.get(doc.id, 2)
        while f"{doc.id}#{k}" in taken:
            k += 1
        new_id = f"{doc.id}#{k}"
        next_suffix[doc.id] = k + 1
        taken.add(new_id)
        kept.append(dataclasses.replace(doc, id=new_id, meta=dict(doc.meta)))
        report.ids_renamed += 1
    report.documents = len(kept)
    return kept, report


def split_key(doc: Document) -> str:
    """What a document's split is drawn from: its text when the reader made its id up from a position (which
    moves when the corpus is reordered), else its id up to the first `#` (parts `ID#k` of one source document,
    and records renamed `id#2` by `normalize_documents`, share a split)."""
    if doc.id_assigned:
        return "text:" + doc.text
    return "id:" + doc.id.split("#", 1)[0]


def unit_hash(key: str) -> float:
    """A number in [0, 1) that depends on `key` alone: the first 8 bytes of sha256(key). Every seeded, order-free
    assignment (splits, the label/pretrain division, hold-outs) draws from it."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def split_of(key: str, valid_frac: float, test_frac: float, seed: int = 0) -> str:
    """'train', 'valid' or 'test' for a key: u = sha256(seed:key) as a number in [0, 1); test below test_frac,
    valid below test_frac + valid_frac, train above. Depends on nothing but the key, so it is stable when the
    corpus grows or is reordered."""
    u = unit_hash(f"{seed}:{key}")
    if u < test_frac:
        return "test"
    return "valid" if u < test_frac + valid_frac else "train"


def _check_fractions(valid_frac: float, test_frac: float) -> None:
    for name, value in (("valid_frac", valid_frac), ("test_frac", test_frac)):
        if not 0 <= value < 1:
            raise UserError(f"{name} = {value} must be in [0, 1)")
    if valid_frac + test_frac >= 1:
        raise UserError(f"valid_frac + test_frac = {valid_frac + test_frac} leaves no training documents "
                        "(must be below 1)")


def split_counts(documents: Iterable[Document]) -> dict[str, dict[str, int]]:
    """{domain: {split: documents}}, domains sorted, a missing domain as 'unknown' and a missing split as 'none'."""
    counts: dict[str, dict[str, int]] = {}
    for doc in documents:
        row = counts.setdefault(doc.domain or "unknown", {split: 0 for split in SPLITS})
        split = doc.meta.get("split") or "none"
        row[split] = row.get(split, 0) + 1
    return dict(sorted(counts.items()))


def assign_splits(documents: Iterable[Document], valid_frac: float = DEFAULT_VALID_FRAC,
                  test_frac: float = DEFAULT_TEST_FRAC, seed: int = 0,
                  ) -> tuple[list[Document], dict[str, dict[str, int]]]:
    """Give every document without a `meta["split"]` one of train / valid / test; return them and the counts.

    valid_frac (default 0.05) and test_frac (default 0.05) are the expected fractions of the documents that get
    a split here; the rest go to train. The split is `split_of(split_key(doc), ...)`: a hash of the id (of the
    text when the reader assigned the id), so the same record always lands in the same split, however the corpus
    is ordered or grown; `seed` draws a different but equally stable partition. Documents that already have a
    split keep it (whatever its value) and are passed through untouched; the others are copies with the split
    added to their meta. Counts are `split_counts` of the returned documents: {domain: {split: n}}.
    """
    _check_fractions(valid_frac, test_frac)
    result = []
    for doc in documents:
        if doc.meta.get("split") in (None, ""):
            split = split_of(split_key(doc), valid_frac, test_frac, seed)
            doc = dataclasses.replace(doc, meta={**doc.meta, "split": split})
        result.append(doc)
    return result, split_counts(result)


def prepare_corpus(specs: Iterable[str | SourceSpec] | str, valid_frac: float = DEFAULT_VALID_FRAC,
                   test_frac: float = DEFAULT_TEST_FRAC, seed: int = 0, text_field: str = "text",
                   id_field: str = "id") -> tuple[list[Document], CorpusReport]:
    """Read a corpus (`read_corpus` specs), make its ids unique (`normalize_documents`) and give records without a
    split one (`assign_splits`): the documents a pipeline uses and a report of every count."""
    _check_fractions(valid_frac, test_frac)
    stats = ReadStats()
    documents, report = normalize_documents(read_corpus(specs, text_field=text_field, id_field=id_field,
                                                        stats=stats))
    report.empty_skipped = stats.empty_skipped
    report.splits_assigned = sum(doc.meta.get("split") in (None, "") for doc in documents)
    documents, report.split_counts = assign_splits(documents, valid_frac, test_frac, seed)
    return documents, report
