"""The hand-labelled natural training set: well-formed labels, disjoint from the demo corpus and the dev set, rebuilt
exactly by its script, and added to a classifier's training documents only when asked (never a scored document)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tokfilter.classify.devset import load_devset
from tokfilter.classify.natural import load_natural, natural_items, natural_path, text_key
from tokfilter.classify.settings import budget_settings
from tokfilter.corpus.demo import load_demo
from tokfilter.corpus.document import Document
from tokfilter.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="module")
def natural():
    return load_natural()


def test_labels_well_formed(natural):
    assert len(natural) >= 150
    assert len({doc.id for doc, _ in natural}) == len(natural)
    assert len({text_key(doc.text) for doc, _ in natural}) == len(natural)
    for doc, spans in natural:
        for start, end, score in spans:
            assert 0 <= start < end <= len(doc.text) and score == 1.0
        for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
            assert end <= start, doc.id
    clauses = json.loads((natural_path() / "clauses.json").read_text(encoding="utf-8"))
    for doc, spans in natural:  # labels.jsonl is clauses.json located in the text
        assert sorted(doc.text[s:e] for s, e, _ in spans) == sorted(clauses[doc.id])


def test_both_sides_present_per_source(natural):
    """News holds a few medical clauses among keep text, the genetics answers are mostly forget: both sides of the
    decision the dev set found missing are taught."""
    share = {}
    for doc, spans in natural:
        chars, forget = share.get(doc.meta["group"], (0, 0))
        share[doc.meta["group"]] = (chars + len(doc.text), forget + sum(e - s for s, e, _ in spans))
    fraction = {group: forget / chars for group, (chars, forget) in share.items()}
    assert 0.005 < fraction["news"] < 0.1
    assert fraction["genetics"] > 0.4
    assert sum(1 for doc, spans in natural if doc.meta["group"] == "news" and spans) >= 20


def test_disjoint_from_demo_corpus_and_dev_set(natural, shared_window):
    documents = [doc for doc, _ in natural]
    reference = load_demo() + load_devset()[0]
    ids = {d.id for d in reference} | {d.id.split("#")[0] for d in reference}
    assert not [d.id for d in documents if d.id in ids or d.id.split("#")[0] in ids]
    assert shared_window(documents, reference) is None


def test_natural_items_copies_and_exclusions(natural):
    assert natural_items(0) == []
    two = natural_items(2)
    assert len(two) == 2 * len(natural)
    assert len({doc.id for doc, _ in two}) == len(two)
    first, second = natural[0][0], natural[1][0]
    by_id = Document(first.id, "other text", "general")
    by_text = Document("another-id", "  " + second.text.upper() + "\n", "general")
    kept = natural_items(1, [by_id, by_text])
    assert len(kept) == len(natural) - 2
    assert not {doc.text for doc, _ in kept} & {first.text, second.text}


def test_setting_validated():
    assert budget_settings("full", {"natural_copies": 3})["natural_copies"] == 3
    with pytest.raises(UserError, match="natural_copies = -1"):
        budget_settings("full", {"natural_copies": -1})


def test_training_adds_them_unless_scored(small_bench, tokenizer, tiny_budget, tmp_path):
    """The classifier's log names the natural documents added; a corpus holding some of them gets fewer."""
    from tokfilter.classify.train import train_classifier

    items = {s: [(b.document, b.spans) for b in small_bench[s]] for s in ("train", "valid")}
    for exclude, expected in (([], len(load_natural())), ([natural_items(1)[0][0]], len(load_natural()) - 1)):
        lines = []
        train_classifier("windowed", items["train"], items["valid"], tokenizer, tmp_path / "w", tiny_budget,
                         overrides={"natural_copies": 1}, log=lines.append, natural_exclude=exclude)
        assert (f"classifier data: {expected:,} hand-labelled natural documents added, each 1 times (classify/natural)"
                in lines)


@pytest.mark.slow
@pytest.mark.shared_data
def test_build_script_reproduces_the_files(tmp_path, monkeypatch):
    if not SHARED.is_dir():
        pytest.skip(f"needs ../shared/data ({SHARED} absent)")
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import build_natural_train

    out = tmp_path / "natural"
    out.mkdir()
    (out / "clauses.json").write_bytes((natural_path() / "clauses.json").read_bytes())
    monkeypatch.setattr(sys, "argv", ["build_natural_train.py", "--data", str(SHARED), "--out", str(out)])
    build_natural_train.main()
    for name in ("docs.jsonl", "labels.jsonl", "PROVENANCE.md"):
        assert (out / name).read_bytes() == (natural_path() / name).read_bytes(), name
