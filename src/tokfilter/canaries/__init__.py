"""Canary facts: fictional entities with real medical / biology answers, planted in the pretraining corpus with
known exposure counts and placements, and asked back as multiple choice.

Demo-scale models answer real MCQ sets at chance; they can memorise facts they see often. Canaries make the
capability claim measurable at that scale: a filter that removes medical text should erase the medical canaries
and keep the biology ones; embedded placements (a medical sentence inside a biology document and vice versa) test
granularity, since a document filter cannot remove one without its host. See docs/canaries.md.

    settings.py   CanarySettings (the experiment's [canaries] section)
    names.py      fictional names, checked absent from the corpora
    facts.py      relations, real answer vocabularies, templates, seeded facts
    corpus.py     plant_canaries(documents, settings, seed) -> (documents, manifest); shift_spans
    questions.py  MCQ JSONL records per (fact, template)
    evaluate.py   scoring with the project's cloze MCQ scorer -> runs[].canaries
    cli.py        tokfilter canaries generate | eval

The package exports what needs no torch (an experiment file's `[canaries]` section is read without it); the
scorer is `tokfilter.canaries.evaluate`.
"""

from tokfilter.canaries.corpus import plant_canaries, planted_truth, shift_spans
from tokfilter.canaries.facts import Fact, make_facts
from tokfilter.canaries.questions import make_questions, read_questions, write_questions
from tokfilter.canaries.settings import CanarySettings

__all__ = ["CanarySettings", "Fact", "make_facts", "make_questions", "plant_canaries", "planted_truth",
           "read_questions", "shift_spans", "write_questions"]
