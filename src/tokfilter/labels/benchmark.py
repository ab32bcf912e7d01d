"""The exact-span benchmark: real forget-domain passages spliced into real retain / general documents.

Token-level filtering exists because documents mix topics, and no weak labeler tells us where the forget text truly
is. Splicing makes that truth known: a sentence-aligned passage (30-150 words) cut from a forget-domain document is
inserted into a retain or general document at a paragraph or sentence boundary, and its character span is recorded
exactly. About 40% of retain / general documents get one passage; the rest stay untouched, and the forget documents
not used as passage donors stay too (labelled forget from end to end: their provenance is the truth). So the
benchmark has the three cases a filter must handle: pure forget, pure retain/general, and forget text hidden inside
a retain/general document, which a document-level filter cannot remove without losing its host. With
`splice_fraction_forget` > 0 (off by default) the reverse case joins them: a short retain/general passage (8-60 words)
inside a whole forget document, which a token filter should keep and a classifier that smears the host's topic over
it removes.

    tokfilter labels benchmark --out DIR [--seed N] [--source demo | forget=PATH retain=PATH general=PATH ...]

writes DIR/{train,valid,test}.jsonl.gz (documents: id, text, domain = provenance of the host, source, split, and
for spliced documents `passage` = {id, source, start, end} of the inserted text), DIR/{split}.labels.jsonl (exact
char spans, score 1.0, DESIGN.md label format, one line per document, empty list when nothing is forget) and
DIR/manifest.json (seed, parameters, counts). Splits follow the source documents (the demo's own split, or a hash of
seed and id for other corpora); passages only move between documents of the same split. The same input and seed
give byte-identical files.
"""

from __future__ import annotations

import collections
import gzip
import io
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokfilter.atomic import write_bytes, write_json
from tokfilter.corpus import read_corpus
from tokfilter.corpus.document import Document
from tokfilter.corpus.normalize import unit_hash
from tokfilter.errors import UserError
from tokfilter.jsonl import json_lines
from tokfilter.labels.coarse import sentence_bounds
from tokfilter.labels.spans import Span, load_labels, write_labels

SPLITS = ("train", "valid", "test")
DOMAINS = ("forget", "retain", "general")
FORMAT = "tokfilter-span-benchmark"
VERSION = 1

_PARAGRAPH_BREAK = re.compile(r"\n\s*")


@dataclass
class BenchmarkConfig:
    seed: int = 0
    splice_fraction: float = 0.4  # share of retain/general documents that receive one forget passage
    splice_fraction_retain: float = -1.0  # per-host-domain override (-1 = splice_fraction): real neighbouring
    splice_fraction_general: float = -1.0  # domains (biology) mention the forget domain more often than news does
    splice_fraction_forget: float = 0.0  # share of whole forget documents that receive one short retain/general
    # passage (the reverse case: a biology or general sentence inside a medical document is not forget); 0 = off
    reverse_min_words: int = 8  # reverse passages are short (one to a few sentences): the case a token filter
    reverse_max_words: int = 60  # must keep, which a classifier that smears a document's topic removes
    min_words: int = 30
    max_words: int = 150
    paragraph_share: float = 0.6  # splice at a paragraph break with this probability when the host has one
    split_fractions: tuple[float, float] = (0.90, 0.05)  # train, valid (rest test) for corpora without a split


@dataclass
class BenchmarkDoc:
    """A benchmark document and its exact forget spans."""

    document: Document
    spans: list[Span]


def _split_of(seed: int, key: str, fractions: tuple[float, float]) -> str:
    u = unit_hash(f"{seed}:{key}")
    if u < fractions[0]:
        return "train"
    return "valid" if u < fractions[0] + fractions[1] else "test"


def extract_passage(text: str, rng: random.Random, min_words: int, max_words: int) -> tuple[int, int] | None:
    """[start, end) of a run of whole sentences with min_words..max_words words, or None if the text has none."""
    sentences = sentence_bounds(text)
    words = [len(text[s:e].split()) for s, e in sentences]
    target = rng.randint(min_words, max_words)
    order = list(range(len(sentences)))
    rng.shuffle(order)
    for first in order:
        count, last = 0, first
        while last < len(sentences) and count + words[last] <= max_words:
            count += words[last]
            last += 1
            if count >= target:
                break
        if count >= min_words:
            return sentences[first][0], sentences[last - 1][1]
    return None


def splice_points(text: str) -> tuple[list[int], list[int]]:
    """Character positions where a passage may be inserted: paragraph starts and sentence starts (interior only)."""
    paragraphs = [m.end() for m in _PARAGRAPH_BREAK.finditer(text) if 0 < m.end() < len(text)]
    sentences = [s for s, _ in sentence_bounds(text) if s > 0 and s not in set(paragraphs)]
    return paragraphs, sentences


def splice(host: str, passage: str, rng: random.Random, paragraph_share: float) -> tuple[str, int]:
    """Insert `passage` into `host` at a paragraph or sentence boundary; returns (new text, passage start)."""
    paragraphs, sentences = splice_points(host)
    if paragraphs and (not sentences or rng.random() < paragraph_share):
        return _insert(host, passage, rng.choice(paragraphs), "\n\n")
    if sentences:
        return _insert(host, passage, rng.choice(sentences), " ")
    return host.rstrip() + "\n\n" + passage, len(host.rstrip()) + 2


def _insert(host: str, passage: str, at: int, sep: str) -> tuple[str, int]:
    return host[:at] + passage + sep + host[at:], at


def make_benchmark(documents: Iterable[Document], config: BenchmarkConfig | None = None
                   ) -> dict[str, list[BenchmarkDoc]]:
    """Build the benchmark in memory: {split: [BenchmarkDoc, ...]} from documents tagged forget/retain/general.

    A document's split is `meta["split"]` when present (the demo corpus has one), else drawn from (seed, id).
    """
    config = config or BenchmarkConfig()
    pools: dict[str, dict[str, list[Document]]] = {s: {d: [] for d in DOMAINS} for s in SPLITS}
    seen: set[str] = set()
    for doc in documents:
        if doc.domain not in DOMAINS:
            raise UserError(f"document {doc.id!r} has domain {doc.domain!r}; tag sources as forget=PATH, "
                            "retain=PATH or general=PATH")
        if doc.id in seen:
            raise UserError(f"document id {doc.id!r} appears twice in the benchmark source")
        if not doc.text.strip():
            continue
        seen.add(doc.id)
        split = doc.meta.get("split") or _split_of(config.seed, doc.id, config.split_fractions)
        if split not in SPLITS:
            raise UserError(f"document {doc.id!r} has split {split!r} (expected train, valid or test)")
        pools[split][doc.domain].append(doc)
    result = {}
    for split in SPLITS:
        result[split] = _make_split(pools[split], split, config)
    return result


def _make_split(pool: dict[str, list[Document]], split: str, config: BenchmarkConfig) -> list[BenchmarkDoc]:
    rng = random.Random(f"{config.seed}:{split}")
    hosts = sorted(pool["retain"] + pool["general"], key=lambda d: d.id)
    donors = sorted(pool["forget"], key=lambda d: d.id)
    rng.shuffle(hosts)
    rng.shuffle(donors)
    fractions = {domain: (override if override >= 0 else config.splice_fraction)
                 for domain, override in (("retain", config.splice_fraction_retain),
                                          ("general", config.splice_fraction_general))}
    quota = {domain: round(fractions[domain] * sum(1 for h in hosts if h.domain == domain)) for domain in fractions}
    spliced = {domain: 0 for domain in fractions}
    out: list[BenchmarkDoc] = []
    donor_iter = iter(donors)
    used_donors: set[str] = set()
    for host in hosts:
        meta = {**host.meta, "split": split}
        if spliced[host.domain] < quota[host.domain]:
            spliced[host.domain] += 1
            passage = None
            for donor in donor_iter:
                used_donors.add(donor.id)
                bounds = extract_passage(donor.text, rng, config.min_words, config.max_words)
                if bounds is not None:
                    passage = (donor, bounds)
                    break
            if passage is not None:
                donor, (p_start, p_end) = passage
                text, start = splice(host.text, donor.text[p_start:p_end], rng, config.paragraph_share)
                end = start + (p_end - p_start)
                assert text[start:end] == donor.text[p_start:p_end]
                meta["passage"] = {"id": donor.id, "source": donor.meta.get("source", donor.domain),
                                   "start": start, "end": end}
                out.append(BenchmarkDoc(Document(host.id, text, host.domain, meta), [(start, end, 1.0)]))
                continue
        out.append(BenchmarkDoc(Document(host.id, host.text, host.domain, meta), []))
    whole = [donor for donor in donors if donor.id not in used_donors]
    reverse = _reverse_splices(whole, out, split, config)
    for donor in whole:
        meta = {**donor.meta, "split": split}
        if donor.id in reverse:
            out.append(reverse[donor.id])
            continue
        out.append(BenchmarkDoc(Document(donor.id, donor.text, "forget", meta), [(0, len(donor.text), 1.0)]))
    rng.shuffle(out)
    return out


def _reverse_splices(forget_docs: list[Document], out: list[BenchmarkDoc], split: str, config: BenchmarkConfig
                     ) -> dict[str, BenchmarkDoc]:
    """Splice a short passage of an untouched retain/general document into `splice_fraction_forget` of the whole
    forget documents; the donor leaves `out` (its text lives on only inside the host, as with forward passages).
    The forget spans are the host's text on both sides of the passage. A separate random stream keeps the benchmark
    byte-identical to earlier versions when the fraction is 0."""
    quota = round(config.splice_fraction_forget * len(forget_docs))
    if quota <= 0:
        return {}
    rng = random.Random(f"{config.seed}:{split}:reverse")
    donors = [i for i, item in enumerate(out) if "passage" not in item.document.meta]
    rng.shuffle(donors)
    hosts = list(forget_docs)
    rng.shuffle(hosts)
    result: dict[str, BenchmarkDoc] = {}
    used: set[int] = set()
    donor_iter = iter(donors)
    for host in hosts[:quota]:
        for index in donor_iter:
            donor = out[index].document
            bounds = extract_passage(donor.text, rng, config.reverse_min_words, config.reverse_max_words)
            if bounds is None:
                continue
            used.add(index)
            passage = donor.text[bounds[0]:bounds[1]]
            text, start = splice(host.text, passage, rng, config.paragraph_share)
            end = start + len(passage)
            meta = {**host.meta, "split": split, "passage": {"id": donor.id, "source": donor.meta.get(
                "source", donor.domain), "domain": donor.domain, "start": start, "end": end}}
            spans = [(a, b, 1.0) for a, b in ((0, start), (end, len(text))) if b > a]
            result[host.id] = BenchmarkDoc(Document(host.id, text, "forget", meta), spans)
            break
    out[:] = [item for i, item in enumerate(out) if i not in used]
    return result


def _record(doc: Document) -> dict:
    record = {"id": doc.id, "text": doc.text, "domain": doc.domain}
    record.update(doc.meta)
    return record


def _gzip_jsonl(records: Iterable[dict]) -> bytes:
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as fh:
        fh.write(raw)
    return buffer.getvalue()


def kind_counts(items: Iterable[BenchmarkDoc]) -> dict[str, int]:
    """Documents by kind, sorted: their domain, with '+passage' when a passage was spliced in (into a forget
    document: a retain/general passage, the reverse case)."""
    kinds = collections.Counter(item.document.domain + ("+passage" if "passage" in item.document.meta else "")
                                for item in items)
    return dict(sorted(kinds.items()))


def benchmark_counts(bench: dict[str, list[BenchmarkDoc]]) -> dict:
    """Per split: documents by kind, characters and forget characters."""
    counts = {}
    for split, docs in bench.items():
        chars = sum(len(item.document.text) for item in docs)
        forget_chars = sum(e - s for item in docs for s, e, _ in item.spans)
        counts[split] = {"documents": len(docs), "by_kind": kind_counts(docs), "chars": chars,
                         "forget_chars": forget_chars,
                         "forget_char_fraction": round(forget_chars / max(chars, 1), 4)}
    return counts


def write_benchmark(bench: dict[str, list[BenchmarkDoc]], out: str | Path, config: BenchmarkConfig,
                    source: Sequence[str]) -> dict:
    """Write documents, labels and manifest.json into `out`; returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in SPLITS:
        docs = bench[split]
        write_bytes(out / f"{split}.jsonl.gz", _gzip_jsonl(_record(d.document) for d in docs))
        write_labels(out / f"{split}.labels.jsonl", ((d.document.id, d.spans) for d in docs))
        files[split] = {"documents": f"{split}.jsonl.gz", "labels": f"{split}.labels.jsonl"}
    manifest = {
        "format": FORMAT, "version": VERSION, "seed": config.seed, "source": list(source),
        "config": {"splice_fraction": config.splice_fraction, "splice_fraction_retain": config.splice_fraction_retain,
                   "splice_fraction_general": config.splice_fraction_general, "min_words": config.min_words,
                   **({"splice_fraction_forget": config.splice_fraction_forget,
                       "reverse_words": [config.reverse_min_words, config.reverse_max_words]}
                      if config.splice_fraction_forget > 0 else {}),
                   "max_words": config.max_words, "paragraph_share": config.paragraph_share,
                   "split_fractions": list(config.split_fractions)},
        "files": files, "counts": benchmark_counts(bench),
    }
    write_json(out / "manifest.json", manifest)
    return manifest


def build_benchmark(out: str | Path | None = None, seed: int = 0, source: str | Sequence[str] = "demo",
                    config: BenchmarkConfig | None = None) -> dict[str, list[BenchmarkDoc]]:
    """Build the benchmark from `source` ('demo' or corpus specs like forget=PATH); write it to `out` if given."""
    specs = [source] if isinstance(source, str) else list(source)
    config = config or BenchmarkConfig(seed=seed)
    config.seed = seed
    bench = make_benchmark(read_corpus(specs), config)
    if not any(item.spans for docs in bench.values() for item in docs):
        raise UserError(f"benchmark source {' '.join(specs)} gives no forget text (needs a non-empty forget=PATH)")
    if out is not None:
        write_benchmark(bench, out, config, specs)
    return bench


def load_benchmark(directory: str | Path, split: str) -> list[BenchmarkDoc]:
    """Read one split of a benchmark directory back: documents with their exact spans."""
    directory = Path(directory)
    if split not in SPLITS:
        raise UserError(f"unknown benchmark split {split!r} (expected train, valid or test)")
    docs_path, labels_path = directory / f"{split}.jsonl.gz", directory / f"{split}.labels.jsonl"
    if not docs_path.exists():
        raise UserError(f"{docs_path}: not found (build it with `tokfilter labels benchmark --out {directory}`)")
    labels = load_labels(labels_path)
    out = []
    with gzip.open(docs_path, "rt", encoding="utf-8") as fh:
        for _, record in json_lines(fh, docs_path):
            doc_id = record.pop("id")
            text = record.pop("text")
            domain = record.pop("domain")
            if doc_id not in labels:
                raise UserError(f"{labels_path}: no labels for document {doc_id!r}")
            out.append(BenchmarkDoc(Document(doc_id, text, domain, record), labels[doc_id]))
    return out
