"""Fictional entity names (diseases, species) that provably occur in no shipped corpus.

Names are drawn from a seeded syllable grammar (onset + vowel + optional coda, 2-3 syllables, a domain-typical
suffix: `-osis`/`-itis` for diseases, `-ella`/`-opsis` for species), so they read like real terms without being
ones. A name is rejected when its lowercase form is a word of a forbidden word set: by default every word of the
embedded demo corpus (all splits, read once per process, ~1 s); `corpus_words()` builds the same set for any JSON
Lines corpus (e.g. ../shared/data/corpora/*.jsonl.gz), and `plant_canaries` checks the final names against the
documents it plants into. Names are also rejected when one is a prefix of another, so no answer option and no
question can match two entities.
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from tokfilter.corpus.demo import demo_files
from tokfilter.jsonl import json_lines

_WORD = re.compile(r"[a-z]+")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr", "tr",
           "pl", "st", "th", "sk", "vr")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "x", "th")
SUFFIXES = {"disease": ("osis", "itis", "emia", "opathy", "algia"),
            "species": ("ella", "opsis", "ura", "ix", "anth")}


def words_of(text: str) -> set[str]:
    """Lowercase alphabetic words of `text` (the unit a name must not match)."""
    return set(_WORD.findall(text.lower()))


def corpus_words(paths: Iterable[str | Path], text_field: str = "text") -> set[str]:
    """Every lowercase word of the `text_field` of JSON Lines files (optionally gzip)."""
    words: set[str] = set()
    for path in map(Path, paths):
        with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as fh:
            for _, record in json_lines(fh, path):
                words |= words_of(str(record.get(text_field, "")))
    return words


@lru_cache(maxsize=1)
def demo_words() -> frozenset[str]:
    """Every lowercase word of the embedded demo corpus (all domains and splits); cached per process."""

    return frozenset(corpus_words(demo_files().values()))


def _stem(rng: random.Random) -> str:
    syllables = rng.choice((2, 2, 2, 3))
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))


def fictional_names(kind: str, count: int, rng: random.Random, forbidden: set[str] | frozenset[str] | None = None,
                    taken: Iterable[str] = ()) -> list[str]:
    """`count` distinct names of `kind` ('disease': capitalised, 'species': lowercase) from `rng`.

    A candidate is skipped when its lowercase form is in `forbidden` (default: the demo corpus words), equals or is
    a prefix of (or prefixed by) a name already chosen or in `taken`, or is not pronounceable (three vowels or three
    consonants in a row before the suffix)."""
    if kind not in SUFFIXES:
        raise ValueError(f"unknown entity kind {kind!r}")
    forbidden = demo_words() if forbidden is None else forbidden
    chosen: list[str] = []
    existing = [t.lower() for t in taken]
    for _ in range(count * 1000):
        if len(chosen) == count:
            break
        stem, suffix = _stem(rng), rng.choice(SUFFIXES[kind])
        name = stem + suffix
        low = name.lower()
        if low in forbidden or re.search(r"[aeiou]{3}|[^aeiou]{3}", stem + suffix[0]):
            continue
        if any(low.startswith(o) or o.startswith(low) for o in existing):
            continue
        existing.append(low)
        chosen.append(name.capitalize() if kind == "disease" else low)
    if len(chosen) < count:
        raise RuntimeError(f"could only draw {len(chosen)} of {count} fictional {kind} names")
    return chosen


def names_in(names: Iterable[str], words: set[str] | frozenset[str]) -> list[str]:
    """The names (lowercased) that occur as words in `words`: empty when every name is absent."""
    return sorted({n.lower() for n in names} & set(words))
