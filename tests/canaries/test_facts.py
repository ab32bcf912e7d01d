"""Facts: deterministic per seed, real answer vocabularies, exposure spread and placement as configured."""

from __future__ import annotations

from collections import Counter

import pytest

from tokfilter.canaries import CanarySettings, make_facts
from tokfilter.canaries.facts import TEMPLATES, TEMPLATES_PER_RELATION, VOCABULARY, template_split
from tokfilter.errors import UserError


def test_same_seed_same_facts_other_seed_other_facts():
    s = CanarySettings()
    assert make_facts(s, 0) == make_facts(s, 0)
    assert [f.entity for f in make_facts(s, 0)] != [f.entity for f in make_facts(s, 1)]


def test_choices_come_from_the_relation_vocabulary():
    for f in make_facts(CanarySettings(facts_per_domain=32), 0):
        vocab = VOCABULARY[f.domain][f.relation]
        assert len(f.choices) == 4 and len(set(f.choices)) == 4
        assert set(f.choices) <= set(vocab)
        assert f.choices[f.answer] == f.answer_text


def test_options_are_equally_frequent_answers():
    """Every option of a question is the answer of one fact at each exposure count: equal mention totals."""
    s = CanarySettings(facts_per_domain=32, exposures=[3, 10])
    facts = make_facts(s, 0)
    mentions = Counter()
    for f in facts:
        mentions[f.domain, f.relation, f.answer_text] += f.exposures
    assert set(mentions.values()) == {13}
    for f in facts:
        by_count = Counter(g.exposures for g in facts if g.relation == f.relation and g.answer_text == f.answer_text)
        assert by_count == {3: 1, 10: 1}
        for option in f.choices:  # every option is as frequent as the answer
            assert mentions[f.domain, f.relation, option] == mentions[f.domain, f.relation, f.answer_text]
    assert len(Counter(f.answer for f in facts)) == 4  # the correct option is not always in one place


def test_distractors_are_other_facts_answers():
    for relations in (1, 2, 3):
        facts = make_facts(CanarySettings(facts_per_domain=8 * relations, relations_per_domain=relations), 0)
        for f in facts:
            others = {g.answer_text for g in facts if g.relation == f.relation and g.id != f.id}
            assert set(f.choices) - {f.answer_text} <= others
        assert len({f.relation for f in facts}) == 2 * relations


def test_more_facts_than_answers_is_a_user_error():
    with pytest.raises(UserError, match="answers needed"):
        make_facts(CanarySettings(facts_per_domain=24, relations_per_domain=1, exposures=[1]), 0)


def test_exposures_and_placement_follow_settings():
    s = CanarySettings(facts_per_domain=40, exposures=[2, 4, 8, 16, 32], embedded_fraction_forget=0.5,
                       embedded_fraction_retain=0.0)
    facts = make_facts(s, 0)
    for domain in ("forget", "retain"):
        mine = [f for f in facts if f.domain == domain]
        assert len(mine) == 40
        assert Counter(f.exposures for f in mine) == {e: 8 for e in s.exposures}
        for e in s.exposures:
            embedded = sum(f.placement == "embedded" for f in mine if f.exposures == e)
            assert embedded == (4 if domain == "forget" else 0)


def test_template_split_is_disjoint_and_sized():
    s = CanarySettings(train_templates=5, heldout_templates=2)
    for relation in TEMPLATES:
        assert len(TEMPLATES[relation]) == TEMPLATES_PER_RELATION
        seen, unseen = template_split(relation, s, 0)
        assert len(seen) == 5 and len(unseen) == 2 and not set(seen) & set(unseen)


def test_templates_end_before_the_answer_and_name_the_entity():
    for relation, templates in TEMPLATES.items():
        assert len(set(templates)) == len(templates)
        for t in templates:
            assert "{e}" in t and not t.endswith((".", " ")), (relation, t)


@pytest.mark.parametrize("bad", [dict(facts_per_domain=0), dict(exposures=[]), dict(exposures=[0]),
                                 dict(facts_per_domain=8, exposures=list(range(1, 10))),
                                 dict(facts_per_domain=7), dict(relations_per_domain=4), dict(exposures=[4, 4]),
                                 dict(embedded_fraction_forget=1.5), dict(train_templates=7, heldout_templates=2),
                                 dict(train_templates=0), dict(sentences_per_document=0)])
def test_invalid_settings_are_user_errors(bad):
    with pytest.raises(UserError):
        CanarySettings(**bad).validate()


def test_seed_pinning():
    assert CanarySettings().resolved_seed(7) == 7
    assert CanarySettings(seed=3).resolved_seed(7) == 3
