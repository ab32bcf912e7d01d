"""Corpora: the `Document` record and streaming readers for every input format tokfilter accepts."""

from tokfilter.corpus.readers import Document, SourceSpec, parse_source, read_corpus

__all__ = ["Document", "SourceSpec", "parse_source", "read_corpus"]
