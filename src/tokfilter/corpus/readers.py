"""Streaming corpus readers: JSON Lines (plain, .gz, .zst), Parquet, plain text, Hugging Face datasets, the demo.

Every reader yields `Document`s one at a time in constant memory (Parquet by row-group batches, JSON Lines line by
line), so a corpus of any size streams through tokenization. A corpus is a list of *source specs*:

    path/to/file.jsonl.gz        one file          medical=data/*.jsonl   files matched by a glob, tagged 'medical'
    demo                         the embedded demo corpus (tags forget / retain / general)
    demo:DOMAIN[:SPLIT]          one domain (and split) of it, e.g. demo:forget:train; demo::test is every domain's test
    hf:NAME[:SPLIT]              a hub dataset (needs network)   some/dir  a dataset saved with save_to_disk

Bad input never yields a partial document silently: malformed JSON, invalid UTF-8 or a record without the text field
raise `UserError` naming the file and line. Empty documents are skipped and counted in `ReadStats`.
"""

from __future__ import annotations

import glob
import gzip
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tokfilter.corpus.demo import is_demo_spec, load_demo_spec
from tokfilter.corpus.document import Document
from tokfilter.errors import UserError
from tokfilter.jsonl import json_lines

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
TEXT_SUFFIXES = (".txt", ".text", ".md")


@dataclass
class SourceSpec:
    """A parsed source: a path, glob, `demo` or `hf:` name, with an optional domain tag."""

    location: str
    domain: str | None = None


@dataclass
class ReadStats:
    """Counters filled while reading: documents yielded and empty documents skipped."""

    documents: int = 0
    empty_skipped: int = 0


_DOMAIN_PREFIX = re.compile(r"^([A-Za-z][\w-]*)=(.+)$")


def parse_source(spec: str | SourceSpec) -> SourceSpec:
    """Parse `DOMAIN=LOCATION` or `LOCATION` into a SourceSpec."""
    if isinstance(spec, SourceSpec):
        return spec
    match = _DOMAIN_PREFIX.match(spec)
    if match:
        return SourceSpec(location=match.group(2), domain=match.group(1))
    return SourceSpec(location=spec)


def _open_binary(path: Path) -> BinaryIO:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".zst") or name.endswith(".zstd"):
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), read_across_frames=True, closefd=True)
        return io.BufferedReader(reader)
    return open(path, "rb")


def _base_name(path: Path) -> str:
    name = path.name.lower()
    for compressed in (".gz", ".zst", ".zstd"):
        if name.endswith(compressed):
            return name[: -len(compressed)]
    return name


def source_stem(path: Path) -> str:
    """A file's name without compression and format suffixes (`data/Med.jsonl.gz` -> `Med`): the `<source>` of the
    `<source>:<line>` id a record without an id gets."""
    name = path.name
    for suffix in (".gz", ".zst", ".zstd"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    for suffix in (*JSONL_SUFFIXES, ".parquet"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _record_to_document(record: Any, where: str, text_field: str, id_field: str, default_id: str,
                        domain: str | None) -> Document:
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if text_field not in record:
        raise UserError(f"{where}: record has no '{text_field}' field (set --text-field)")
    text = record[text_field]
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise UserError(f"{where}: field '{text_field}' is {type(text).__name__}, not a string")
    if id_field != "id" and id_field not in record:  # a missing default 'id' gets an assigned id instead
        raise UserError(f"{where}: record has no '{id_field}' field (set --id-field)")
    doc_id = record.get(id_field)
    assigned = doc_id is None or doc_id == ""
    meta = {k: v for k, v in record.items() if k not in (text_field, id_field)}
    doc_domain = domain if domain is not None else meta.pop("domain", None)
    meta.pop("domain", None)
    return Document(id=default_id if assigned else str(doc_id), text=text, domain=doc_domain, meta=meta,
                    id_assigned=assigned)


def read_jsonl(path: Path, text_field: str = "text", id_field: str = "id",
               domain: str | None = None) -> Iterator[Document]:
    """Stream a JSON Lines file (optionally .gz / .zst), one document per non-blank line.

    A record without an id (or with a null or empty one) gets `<stem>:<line>` (1-based line number) and
    `id_assigned=True`; see `source_stem`."""
    stem = source_stem(path)
    try:
        with _open_binary(path) as raw:
            for line_no, record in json_lines(raw, path):
                yield _record_to_document(record, f"{path}:{line_no}", text_field, id_field, f"{stem}:{line_no}",
                                          domain)
    except (OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise UserError(f"{path}: no such file") from None
        raise UserError(f"{path}: cannot read ({err})") from None
    except Exception as err:  # zstandard raises its own error type for corrupt frames
        if type(err).__name__ == "ZstdError":
            raise UserError(f"{path}: corrupt zstd stream ({err})") from None
        raise


def read_parquet(path: Path, text_field: str = "text", id_field: str = "id",
                 domain: str | None = None, batch_size: int = 1024) -> Iterator[Document]:
    """Stream a Parquet file by record batches (constant memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise UserError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0]})") from None
    if text_field not in parquet.schema_arrow.names:
        raise UserError(f"{path}: Parquet file has no '{text_field}' column (set --text-field)")
    row, stem = 0, source_stem(path)
    for batch in parquet.iter_batches(batch_size=batch_size):
        for record in batch.to_pylist():
            row += 1
            yield _record_to_document(record, f"{path}:row {row}", text_field, id_field, f"{stem}:{row}", domain)


def read_text_file(path: Path, domain: str | None = None) -> Iterator[Document]:
    """A plain text file is one document; its id is the file name."""
    try:
        with _open_binary(path) as raw:
            data = raw.read()
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: invalid UTF-8 ({err.reason})") from None
    yield Document(id=path.name, text=text, domain=domain)


def read_hf_dataset(location: str, text_field: str = "text", id_field: str = "id",
                    domain: str | None = None) -> Iterator[Document]:
    """A Hugging Face dataset saved with `save_to_disk` (a directory) or a hub name `hf:NAME[:SPLIT]` (streamed)."""
    try:
        import datasets
    except ImportError:
        raise UserError("reading Hugging Face datasets needs the 'hf' extra: pip install 'tokfilter[hf]'") from None
    if location.startswith("hf:"):
        name, _, split = location[3:].partition(":")
        try:
            dataset = datasets.load_dataset(name, split=split or "train", streaming=True)
        except Exception as err:  # network / hub errors come in many types
            raise UserError(f"{location}: cannot load from the hub ({str(err).splitlines()[0]})") from None
    else:
        try:
            dataset = datasets.load_from_disk(location)
        except Exception as err:
            raise UserError(f"{location}: not a dataset saved with save_to_disk ({str(err).splitlines()[0]})") from None
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
    for row, record in enumerate(dataset, 1):
        yield _record_to_document(record, f"{location}:row {row}", text_field, id_field, f"{location}:{row}", domain)


def expand_location(location: str) -> list[Path]:
    """Expand a path or glob to a sorted list of files (a directory means every supported file inside)."""
    if any(ch in location for ch in "*?["):
        paths = sorted(Path(p) for p in glob.glob(location, recursive=True))
        if not paths:
            raise UserError(f"{location}: the pattern matches no file")
        return [p for p in paths if p.is_file()]
    path = Path(location)
    if not path.exists():
        raise UserError(f"{location}: no such file")
    return [path]


def _read_file(path: Path, text_field: str, id_field: str, domain: str | None) -> Iterator[Document]:
    base = _base_name(path)
    if base.endswith(JSONL_SUFFIXES):
        yield from read_jsonl(path, text_field, id_field, domain)
    elif base.endswith(".parquet"):
        yield from read_parquet(path, text_field, id_field, domain)
    elif base.endswith(TEXT_SUFFIXES):
        yield from read_text_file(path, domain)
    else:
        raise UserError(f"{path}: unknown corpus format (expected .jsonl[.gz|.zst], .parquet or .txt)")


def read_source(spec: str | SourceSpec, text_field: str = "text", id_field: str = "id") -> Iterator[Document]:
    """Stream the documents of one source spec."""
    source = parse_source(spec)
    location = source.location
    if is_demo_spec(location):
        for document in load_demo_spec(location):
            if source.domain is not None:
                document.domain = source.domain
            yield document
        return
    if location.startswith("hf:"):
        yield from read_hf_dataset(location, text_field, id_field, source.domain)
        return
    path = Path(location)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            yield from read_hf_dataset(location, text_field, id_field, source.domain)
            return
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise UserError(f"{location}: directory holds no corpus file")
    else:
        files = expand_location(location)
    for file in files:
        yield from _read_file(file, text_field, id_field, source.domain)


def read_corpus(specs: Iterable[str | SourceSpec] | str, text_field: str = "text", id_field: str = "id",
                stats: ReadStats | None = None, skip_empty: bool = True) -> Iterator[Document]:
    """Stream documents from every source in order. Empty documents are skipped and counted in `stats`."""
    if isinstance(specs, (str, SourceSpec)):
        specs = [specs]
    stats = stats if stats is not None else ReadStats()
    for spec in specs:
        for document in read_source(spec, text_field, id_field):
            if skip_empty and not document.text:
                stats.empty_skipped += 1
                continue
            stats.documents += 1
            yield document
