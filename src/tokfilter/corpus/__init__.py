"""Corpora: the `Document` record, streaming readers for every input format tokfilter accepts, and the opt-in
cleaning a pipeline applies to a plain corpus (unique ids, train / valid / test splits)."""

from tokfilter.corpus.document import Document
from tokfilter.corpus.normalize import CorpusReport, assign_splits, normalize_documents, prepare_corpus
from tokfilter.corpus.readers import ReadStats, SourceSpec, parse_source, read_corpus

__all__ = ["CorpusReport", "Document", "ReadStats", "SourceSpec", "assign_splits", "normalize_documents",
           "parse_source", "prepare_corpus", "read_corpus"]
