"""Fictional names: seeded, distinct, prefix-free, and absent from every shipped corpus."""

from __future__ import annotations

import random

import pytest

from tokfilter.canaries import CanarySettings, make_facts
from tokfilter.canaries.names import demo_words, fictional_names, names_in, words_of

SEEDS = range(5)


def _entities(seed: int, facts: int = 32) -> set[str]:
    return {f.entity for f in make_facts(CanarySettings(facts_per_domain=facts), seed)}


def test_names_are_seeded_distinct_and_prefix_free():
    a = fictional_names("disease", 40, random.Random(1))
    assert a == fictional_names("disease", 40, random.Random(1))
    assert a != fictional_names("disease", 40, random.Random(2))
    low = [n.lower() for n in a]
    assert len(set(low)) == 40
    assert not any(x != y and x.startswith(y) for x in low for y in low)
    assert all(n[0].isupper() for n in a)
    assert all(n.islower() for n in fictional_names("species", 10, random.Random(1)))


def test_forbidden_words_are_avoided():
    first = fictional_names("species", 5, random.Random(3), forbidden=frozenset())
    again = fictional_names("species", 5, random.Random(3), forbidden=frozenset(first))
    assert not set(first) & set(again)


def test_unknown_kind():
    with pytest.raises(ValueError):
        fictional_names("mineral", 1, random.Random(0))


def test_names_absent_from_embedded_demo_corpus():
    words = demo_words()
    assert "insulin" in words and "protein" in words  # the set really is the corpus vocabulary
    for seed in SEEDS:
        assert names_in(_entities(seed), words) == []


def test_names_absent_from_shared_corpora(shared_corpus_words):
    assert "metformin" in shared_corpus_words
    for seed in SEEDS:
        assert names_in(_entities(seed), shared_corpus_words) == []


def test_words_of_is_lowercase_alphabetic():
    assert words_of("Movruitis, (IL-6) and 3 mice") == {"movruitis", "il", "and", "mice"}
