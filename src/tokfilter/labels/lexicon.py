"""Lexicon labeler: mark every whole-word occurrence of a term list (Aho-Corasick, case-insensitive).

The cheapest weak labeler: term lists such as HPO phenotype names, drug names or a medical spelling dictionary
(../shared/data/lexicons) are compiled into one pyahocorasick automaton and matched in a single pass over the
lower-cased text; a hit counts only when it starts and ends at word boundaries ("ache" never fires inside
"headache"'s neighbour "cache"). Exclusion lists remove terms before compiling: another lexicon (GO terms: biology,
the retain domain), a file of your own, or `common:N`, the N most frequent English words (wordfreq 3.1.1, packaged
in labels/data), which strips words like "cell", "normal" or "type" that medical dictionaries contain but that carry
no medical signal on their own. Multi-word terms are never removed by a single-word stoplist.

Optionally the hits grow (`tokfilter.labels.grow`) over neighbouring words that a broader lexicon matches: seeds
from precise terms, growth over medical-looking words, the same rule the SAE labeler uses for latents.

Lexicon specs: a bare name (`hpo_terms`) means NAME.txt[.gz] in the lexicon directory (--lexicon-dir, env
TOKFILTER_LEXICONS, or ../shared/data/lexicons beside the repository or the working directory, then the packaged
labels/data); `common:N`; or a path to a one-term-per-line file (.txt or .txt.gz, `#` comments).

Measured token F1 on the exact-span benchmark (demo, valid split, demo BPE; docs/labels.md): term hits alone top
out near 0.4 because the truth is whole passages and most of a medical passage's words are ordinary English; the
sentence-density labeler (`tokfilter.labels.coarse`) built on this matcher reaches ~0.8.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import ahocorasick
import numpy as np

from tokfilter.corpus.document import Document
from tokfilter.errors import UserError
from tokfilter.labels.grow import grow_spans
from tokfilter.labels.spans import Span

PACKAGE_DATA = Path(__file__).resolve().parent / "data"
COMMON_ENGLISH = PACKAGE_DATA / "common_english.txt.gz"

# The documented default for medicine (chosen by token F1 on the benchmark's valid split, see docs/labels.md):
# HPO terms + drug names + hunspell medical words, minus GO terms, minus the learned contrastive stoplist
# (scripts/build_lexicon_exclusions.py: terms not >= 3x more frequent in forget than in other demo train text);
# hits grow over adjacent words of the unpruned lexicons except the 300 commonest English words (hunspell's medical
# list contains "the" and "match"; growing over them scored 0.42 instead of 0.38 but labels "the football match"
# after "diabetes mellitus."). A common-English stoplist (common:N) instead of the learned one scored lower.
MEDICAL_LEXICONS = ("hpo_terms", "drug_names", "hunspell_en_med_words")
MEDICAL_BASE_EXCLUDE = ("go_terms",)
CONTRASTIVE_EXCLUDE = "medical_contrastive_exclude"
CONTRASTIVE_RATIO = 3.0
MEDICAL_EXCLUDE = (*MEDICAL_BASE_EXCLUDE, CONTRASTIVE_EXCLUDE)
MEDICAL_GROW = MEDICAL_LEXICONS
MEDICAL_GROW_EXCLUDE = ("go_terms", "common:300")  # growth never runs over function words ("the", "of", "and")
MIN_TERM_CHARS = 3

_WORD = re.compile(r"\w+")


def lexicon_dirs(lexicon_dir: str | Path | None = None) -> list[Path]:
    """Directories searched for bare lexicon names, in order."""
    dirs = []
    if lexicon_dir is not None:
        dirs.append(Path(lexicon_dir))
    if os.environ.get("TOKFILTER_LEXICONS"):
        dirs.append(Path(os.environ["TOKFILTER_LEXICONS"]))
    repo = Path(__file__).resolve().parents[3]
    dirs += [repo.parent / "shared" / "data" / "lexicons", Path.cwd().parent / "shared" / "data" / "lexicons",
             Path.cwd() / "shared" / "data" / "lexicons"]
    return dirs


def resolve_lexicon(spec: str, lexicon_dir: str | Path | None = None) -> Path:
    """Path of a lexicon given by name (hpo_terms), by path, or the packaged common-English list (common:N)."""
    if spec.startswith("common:"):
        return COMMON_ENGLISH
    path = Path(spec)
    if path.exists():
        return path
    if "/" not in spec and os.sep not in spec:
        for directory in [*lexicon_dirs(lexicon_dir), PACKAGE_DATA]:
            for suffix in (".txt.gz", ".txt", ""):
                candidate = directory / f"{spec}{suffix}"
                if candidate.is_file():
                    return candidate
    raise UserError(f"lexicon {spec!r} not found (a file path, common:N, or NAME in --lexicon-dir / "
                    "TOKFILTER_LEXICONS / ../shared/data/lexicons)")


def normalize_term(term: str) -> str:
    """Lower-case and collapse whitespace: the form terms are matched in."""
    return " ".join(term.lower().split())


def read_terms(spec: str, lexicon_dir: str | Path | None = None) -> list[str]:
    """Normalized terms of one lexicon spec (order kept, duplicates dropped)."""
    path = resolve_lexicon(spec, lexicon_dir)
    limit = None
    if spec.startswith("common:"):
        try:
            limit = int(spec.split(":", 1)[1])
        except ValueError:
            raise UserError(f"lexicon {spec!r}: expected common:N with an integer N") from None
    opener = gzip.open if path.name.endswith(".gz") else open
    terms: dict[str, None] = {}
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("#"):
                    continue
                term = normalize_term(line)
                if term:
                    terms[term] = None
                if limit is not None and len(terms) >= limit:
                    break
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: invalid UTF-8 ({err.reason})") from None
    except (OSError, EOFError) as err:
        raise UserError(f"{path}: cannot read lexicon ({err})") from None
    return list(terms)


def _lower_same_length(text: str) -> str:
    """text.lower(), but keeping every character's position (a few characters lower-case to two)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


class LexiconMatcher:
    """Whole-word, case-insensitive matching of a set of terms with one Aho-Corasick automaton."""

    def __init__(self, terms: Iterable[str], exclude: Iterable[str] = (), min_chars: int = MIN_TERM_CHARS):
        excluded = {normalize_term(t) for t in exclude}
        self.automaton = ahocorasick.Automaton()
        count = 0
        for term in terms:
            term = normalize_term(term)
            if len(term) < min_chars or term in excluded or not any(c.isalpha() for c in term):
                continue
            if term not in self.automaton:
                self.automaton.add_word(term, len(term))
                count += 1
        self.size = count
        if count:
            self.automaton.make_automaton()

    def find_terms(self, text: str) -> list[tuple[int, int, str]]:
        """Every whole-word occurrence (overlapping ones included) as (start, end, normalized term)."""
        if not self.size or not text:
            return []
        lowered = _lower_same_length(text)
        n = len(text)
        hits = []
        for end_index, length in self.automaton.iter(lowered):
            start, end = end_index - length + 1, end_index + 1
            if start > 0 and (lowered[start - 1].isalnum() or lowered[start - 1] == "_"):
                continue
            if end < n and (lowered[end].isalnum() or lowered[end] == "_"):
                continue
            hits.append((start, end, lowered[start:end]))
        return hits

    def find(self, text: str) -> list[tuple[int, int]]:
        """Sorted, merged [start, end) character spans of whole-word term occurrences."""
        return merge_intervals((s, e) for s, e, _ in self.find_terms(text))

    def terms(self) -> list[str]:
        return list(self.automaton.keys()) if self.size else []


def merge_intervals(intervals: Iterable[tuple[int, int]], gap: int = 0) -> list[tuple[int, int]]:
    """Sort and merge intervals that overlap or lie within `gap` characters of each other."""
    merged: list[list[int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def covered_words(words: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Bool per word (rows of [start, end) in text order): does any span overlap it? Vectorised."""
    flags = np.zeros(len(words), dtype=bool)
    if not len(words) or not len(spans):
        return flags
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    first = np.searchsorted(words[:, 1], spans[:, 0], side="right")  # first word ending after the span starts
    last = np.searchsorted(words[:, 0], spans[:, 1], side="left")  # words starting before the span ends
    keep = last > first
    diff = np.zeros(len(words) + 1, dtype=np.int64)
    np.add.at(diff, first[keep], 1)
    np.add.at(diff, last[keep], -1)
    return np.cumsum(diff[:-1]) > 0


def word_bounds(text: str) -> np.ndarray:
    """(n, 2) [start, end) of each word (regex \\w+) of the text."""
    return np.array([m.span() for m in _WORD.finditer(text)], dtype=np.int64).reshape(-1, 2)


class LexiconLabeler:
    """Char-span labels from term hits, optionally grown over words matched by a broader `grow` matcher."""

    def __init__(self, matcher: LexiconMatcher, grow: LexiconMatcher | None = None, score: float = 1.0):
        self.matcher = matcher
        self.grow = grow
        self.score = score

    def label(self, text: str) -> list[Span]:
        """Spans of term hits (grown when a grow matcher is set); hits separated only by whitespace are joined."""
        hits = self.matcher.find(text)
        if self.grow is not None and hits:
            words = word_bounds(text)
            seeds = covered_words(words, hits)
            positive = covered_words(words, self.grow.find(text))
            grown = grow_spans(seeds, positive)
            hits = merge_intervals(hits + [tuple(w) for w in words[grown].tolist()])
        joined: list[list[int]] = []
        for start, end in hits:
            if joined and text[joined[-1][1]:start].isspace():
                joined[-1][1] = end
            else:
                joined.append([start, end])
        return [(s, e, self.score) for s, e in joined]

    def label_documents(self, documents: Iterable[Document]) -> Iterator[tuple[str, list[Span]]]:
        for doc in documents:
            yield doc.id, self.label(doc.text)


def contrastive_exclusions(matcher: LexiconMatcher, forget_texts: Iterable[str], other_texts: Iterable[str],
                           min_ratio: float = 2.0, smoothing: float = 1.0) -> list[str]:
    """Terms that fire at least 1/min_ratio as often (per word) in non-forget text as in forget text.

    A data-driven exclusion list from document provenance only (e.g. the demo's train split): a term such as
    "membrane" that a medical dictionary lists but that biology text uses as much is dropped; terms never seen in
    either side are kept (no evidence). `smoothing` is an add-k count that keeps rare terms from deciding alone.
    """
    counts = {"forget": {}, "other": {}}
    words = {"forget": 0, "other": 0}
    for side, texts in (("forget", forget_texts), ("other", other_texts)):
        table = counts[side]
        for text in texts:
            words[side] += len(text.split())
            for _, _, term in matcher.find_terms(text):
                table[term] = table.get(term, 0) + 1
    excluded = []
    for term in set(counts["forget"]) | set(counts["other"]):
        forget_rate = (counts["forget"].get(term, 0) + smoothing) / max(words["forget"], 1)
        other_rate = (counts["other"].get(term, 0) + smoothing) / max(words["other"], 1)
        if forget_rate < min_ratio * other_rate:
            excluded.append(term)
    return sorted(excluded)


@lru_cache(maxsize=8)
def _cached_matcher(lexicons: tuple[str, ...], exclude: tuple[str, ...], lexicon_dir: str | None,
                    min_chars: int) -> LexiconMatcher:
    terms = [t for spec in lexicons for t in read_terms(spec, lexicon_dir)]
    excluded = [t for spec in exclude for t in read_terms(spec, lexicon_dir)]
    return LexiconMatcher(terms, excluded, min_chars)


def build_matcher(lexicons: Sequence[str], exclude: Sequence[str] = (), lexicon_dir: str | Path | None = None,
                  min_chars: int = MIN_TERM_CHARS) -> LexiconMatcher:
    """A matcher over the union of `lexicons` minus every term of `exclude` (specs as in `resolve_lexicon`)."""
    if not lexicons:
        raise UserError("no lexicon given (e.g. --lexicon hpo_terms)")
    return _cached_matcher(tuple(lexicons), tuple(exclude), None if lexicon_dir is None else str(lexicon_dir),
                           min_chars)


def build_labeler(lexicons: Sequence[str] = MEDICAL_LEXICONS, exclude: Sequence[str] = MEDICAL_EXCLUDE,
                  grow_lexicons: Sequence[str] = MEDICAL_GROW, grow_exclude: Sequence[str] = MEDICAL_GROW_EXCLUDE,
                  lexicon_dir: str | Path | None = None, min_chars: int = MIN_TERM_CHARS) -> LexiconLabeler:
    """The lexicon labeler (defaults: the medical combination measured best on the benchmark)."""
    matcher = build_matcher(lexicons, exclude, lexicon_dir, min_chars)
    grow = None
    if grow_lexicons:
        grow = build_matcher(grow_lexicons, grow_exclude, lexicon_dir, min_chars)
    return LexiconLabeler(matcher, grow)
