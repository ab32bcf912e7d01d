"""The embedded demo corpus: ~1.7M words of real text in three domains, shipped inside the package.

forget (medical: PubMedQA, MedQuAD, HPO, patient reviews), retain (biology: textbooks, GO definitions) and general
(BBC News, Brown, WikiText-2), each a gzip JSON Lines file in `demo_data/` with a train / valid / test split per
source document. `scripts/build_demo_corpus.py` rebuilds it from ../shared/data; `demo_data/PROVENANCE.md` lists
sources, licences and counts. The whole corpus loads in about a second, so tests and `tokfilter demo` use it freely.

As a corpus spec (every command that reads a corpus accepts it): `demo` is the whole corpus, `demo:DOMAIN` one
domain, `demo:DOMAIN:SPLIT` one domain's split (e.g. `demo:forget:train`) and `demo::SPLIT` one split of all domains.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

from tokfilter.corpus.document import Document
from tokfilter.errors import UserError
from tokfilter.jsonl import json_lines

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
DOMAINS = ("forget", "retain", "general")
SPLITS = ("train", "valid", "test")


def demo_files() -> dict[str, Path]:
    """{domain: path of its gzip JSON Lines file} for the three demo domains."""
    files = {domain: DEMO_DIR / f"{domain}.jsonl.gz" for domain in DOMAINS}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise UserError(f"demo corpus file missing: {missing[0]} (rebuild with scripts/build_demo_corpus.py)")
    return files


def _as_tuple(value: str | Iterable[str] | None, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    if value is None:
        return allowed
    values = (value,) if isinstance(value, str) else tuple(value)
    for v in values:
        if v not in allowed:
            raise UserError(f"unknown demo {what} {v!r} (expected one of {', '.join(allowed)})")
    return values


def load_demo(split: str | Iterable[str] | None = None,
              domains: str | Iterable[str] | None = None) -> list[Document]:
    """Demo documents, optionally only some splits ('train'/'valid'/'test') and domains, in file order.

    Each Document has `domain` set to forget / retain / general and `meta` = {"source", "split"}.
    """
    splits = _as_tuple(split, SPLITS, "split")
    wanted = _as_tuple(domains, DOMAINS, "domain")
    files = demo_files()
    documents = []
    for domain in wanted:
        with gzip.open(files[domain], "rt", encoding="utf-8") as fh:
            for _, record in json_lines(fh, files[domain]):
                if record["split"] not in splits:
                    continue
                documents.append(Document(id=record["id"], text=record["text"], domain=record["domain"],
                                          meta={"source": record["source"], "split": record["split"]}))
    return documents


def is_demo_spec(location: str) -> bool:
    """True for `demo` and `demo:...` (the embedded corpus), which `load_demo_spec` reads."""
    return location == "demo" or location.startswith("demo:")


def load_demo_spec(location: str) -> list[Document]:
    """The documents a `demo`, `demo:DOMAIN`, `demo:DOMAIN:SPLIT` or `demo::SPLIT` spec names.

    An unknown domain or split, or more than two `:` parts, is a one-line UserError naming the spec.
    """
    if not is_demo_spec(location):
        raise UserError(f"{location!r} is not a demo corpus spec (expected demo, demo:DOMAIN or demo:DOMAIN:SPLIT)")
    parts = location.split(":")[1:]
    if len(parts) > 2:
        raise UserError(f"{location!r}: too many ':' parts (expected demo, demo:DOMAIN or demo:DOMAIN:SPLIT)")
    domain = parts[0] if parts and parts[0] else None
    split = parts[1] if len(parts) > 1 and parts[1] else None
    if domain is not None and domain not in DOMAINS:
        raise UserError(f"{location!r}: unknown demo domain {domain!r} (expected one of {', '.join(DOMAINS)})")
    if split is not None and split not in SPLITS:
        raise UserError(f"{location!r}: unknown demo split {split!r} (expected one of {', '.join(SPLITS)})")
    return load_demo(split=split, domains=domain)
