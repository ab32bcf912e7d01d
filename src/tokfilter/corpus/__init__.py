"""Corpora: the `Document` record and streaming readers for every input format tokfilter accepts."""

from tokfilter.corpus.document import Document
from tokfilter.corpus.readers import ReadStats, SourceSpec, parse_source, read_corpus

__all__ = ["Document", "ReadStats", "SourceSpec", "parse_source", "read_corpus"]
