"""Planting: deterministic, placement counts as configured, sentences at sentence boundaries, no labels leak."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tokfilter.canaries import CanarySettings, make_questions, plant_canaries, shift_spans
from tokfilter.canaries.corpus import HOST_DOMAINS
from tokfilter.canaries.facts import prefix
from tokfilter.corpus.document import Document
from tokfilter.errors import UserError
from tokfilter.labels.coarse import sentence_bounds

LABEL_LIKE = {"label", "labels", "spans", "truth", "forget", "retain", "canary", "fact", "facts", "answer",
              "placement", "exposures", "passage_label", "is_canary", "score", "scores"}


def _small(demo_train, per_domain=60):
    out, counts = [], {}
    for doc in demo_train:
        if counts.get(doc.domain, 0) < per_domain:
            counts[doc.domain] = counts.get(doc.domain, 0) + 1
            out.append(doc)
    return out


def test_deterministic_per_seed(demo_train):
    docs = _small(demo_train)
    s = CanarySettings(facts_per_domain=16, exposures=[2, 4])
    a, ma = plant_canaries(docs, s, 0)
    b, mb = plant_canaries(docs, s, 0)
    c, mc = plant_canaries(docs, s, 1)
    assert [(d.id, d.text) for d in a] == [(d.id, d.text) for d in b] and ma == mb
    assert make_questions(ma) == make_questions(mb)
    assert [d.text for d in a] != [d.text for d in c]
    assert make_questions(ma) != make_questions(mc)
    # a pinned canaries.seed ignores the experiment seed
    pinned = CanarySettings(facts_per_domain=16, exposures=[2, 4], seed=5)
    assert plant_canaries(docs, pinned, 0)[1] == plant_canaries(docs, pinned, 1)[1]


def _occurrences(documents, sentence):
    return sum(d.text.count(sentence) for d in documents)


def test_mentions_and_placement_match_settings(planted):
    original, documents, manifest = planted
    canary_docs = [d for d in documents if d.meta.get("source") == "canary"]
    hosts = {d.id: d for d in documents if d.meta.get("source") != "canary"}
    assert len(documents) == len(original) + len(canary_docs)
    assert [d.id for d in documents if d.meta.get("source") != "canary"] == [d.id for d in original]
    facts = manifest["facts"]
    settings = CanarySettings()
    for domain in ("forget", "retain"):
        mine = [f for f in facts if f["domain"] == domain]
        assert len(mine) == settings.facts_per_domain
        fraction = getattr(settings, f"embedded_fraction_{domain}")
        assert sum(f["placement"] == "embedded" for f in mine) == round(fraction * len(mine))
    by_fact: dict[str, list[dict]] = {}
    for ins in manifest["insertions"]:
        by_fact.setdefault(ins["fact"], []).append(ins)
    for f in facts:
        mentions = [f"{prefix(f['relation'], t, f['entity'])} {f['answer_text']}." for t in f["seen"]]
        in_canary_docs = sum(d.text.count(m) for d in canary_docs for m in mentions)
        in_hosts = sum(d.text.count(m) for d in hosts.values() for m in mentions)
        if f["placement"] == "standalone":
            assert in_canary_docs == f["exposures"] and in_hosts == 0
        else:
            assert in_hosts == f["exposures"] and in_canary_docs == 0
            insertions = by_fact[f["id"]]
            assert len({i["doc"] for i in insertions}) == len(insertions)  # one mention per host (hosts suffice)
            assert {i["host_domain"] for i in insertions} <= set(HOST_DOMAINS[f["domain"]])
    counts = manifest["counts"]
    assert counts["forget"]["mentions"] == sum(f["exposures"] for f in facts if f["domain"] == "forget")


def test_inserted_sentences_sit_at_sentence_boundaries(planted):
    original, documents, manifest = planted
    before = {d.id: d.text for d in original}
    after = {d.id: d.text for d in documents}
    by_doc: dict[str, list[dict]] = {}
    for ins in manifest["insertions"]:
        by_doc.setdefault(ins["doc"], []).append(ins)
    for doc_id, insertions in by_doc.items():
        text, original = after[doc_id], before[doc_id]
        starts = {s for s, _ in sentence_bounds(text)}
        for ins in sorted(insertions, key=lambda i: i["start"], reverse=True):
            appended = ins["at"] >= len(original.rstrip())
            if not appended:
                assert ins["start"] in starts  # the canary begins a sentence of the planted text
            assert text[ins["end"] - 1] == "."
            # remove the chunk (sentence + " ", or " " + sentence when appended), last first
            lo, hi = (ins["start"] - 1, ins["end"]) if appended else (ins["start"], ins["end"] + 1)
            text = text[:lo] + text[hi:]
        assert text == original  # removing the canary chunks gives back the original text exactly


def test_documents_carry_no_labels(planted):
    original, documents, _ = planted
    meta_before = {d.id: (d.domain, dict(d.meta)) for d in original}
    for doc in documents:
        assert isinstance(doc, Document)
        if doc.meta.get("source") == "canary":
            assert doc.domain is None
            assert set(doc.meta) == {"source", "split"} and doc.meta["split"] == "train"
            assert doc.id.startswith("canary-") and not any(k in doc.id for k in ("forget", "retain"))
        else:
            assert (doc.domain, doc.meta) == meta_before[doc.id]  # hosts: provenance untouched, nothing added
        assert not set(doc.meta) & LABEL_LIKE


def test_no_training_path_imports_canaries():
    """The manifest (the only place canary truth lives) is never read by training, shards, classifiers or
    annotation."""
    root = Path(__file__).resolve().parents[2] / "src" / "tokfilter"
    for package in ("train", "shards", "classify", "annotate", "labels", "tokenizer"):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not any(n.startswith("tokfilter.canaries") for n in names), path


def test_questions_answers_are_in_the_planted_text(planted):
    _, documents, manifest = planted
    text = "\n".join(d.text for d in documents)
    sentences = [s for d in documents for s in d.text.replace("\n", " ").split(". ")]
    for q in make_questions(manifest):
        answer = q["choices"][q["answer"]]
        if q["template"] == "seen":
            assert f"{q['question']} {answer}." in text
        else:
            assert q["question"] not in text  # held-out templates never reach the training text
            entity = next(f["entity"] for f in manifest["facts"] if f["id"] == q["fact"])
            assert any(entity in s and s.rstrip(".").endswith(answer) for s in sentences)


def test_name_clash_is_a_user_error(demo_train):
    s = CanarySettings(facts_per_domain=8, exposures=[1])
    docs = _small(demo_train, 20)
    _, manifest = plant_canaries(docs, s, 0)
    clash = [Document("x", f"A note on {manifest['facts'][0]['entity']}.", "general", {"split": "train"})]
    with pytest.raises(UserError, match="canary names occur"):
        plant_canaries(docs + clash, s, 0)


def test_missing_hosts_is_a_user_error():
    s = CanarySettings(facts_per_domain=8, exposures=[1], embedded_fraction_retain=0.0)
    only_forget = [Document("m", "Fever is common. Rest helps.", "forget", {"split": "train"})]
    with pytest.raises(UserError, match="no retain/general"):
        plant_canaries(only_forget, s, 0)
    # no embedded facts: standalone documents only, no hosts needed
    docs, manifest = plant_canaries([], CanarySettings(facts_per_domain=8, exposures=[1], embedded_fraction_forget=0,
                                                       embedded_fraction_retain=0), 0)
    assert len(docs) == len(manifest["documents"]) > 0 and not manifest["insertions"]


def test_validation_documents_are_never_hosts(demo_train):
    docs = [Document(d.id, d.text, d.domain, {**d.meta, "split": "valid"}) for d in demo_train[:100]]
    with pytest.raises(UserError):
        plant_canaries(docs, CanarySettings(facts_per_domain=8, exposures=[1]), 0)


def test_shift_spans_moves_and_splits_around_insertions():
    host = "Alpha one. Beta two. Gamma three."
    s = CanarySettings(facts_per_domain=8, exposures=[1], embedded_fraction_forget=1.0, embedded_fraction_retain=0)
    docs, manifest = plant_canaries([Document("h", host, "retain", {"split": "train"})], s, 0)
    planted_text = next(d.text for d in docs if d.id == "h")
    ins = manifest["insertions"]
    assert len(ins) == 8  # 8 sentences, 2 interior sentence starts: several canaries per point
    spans = [(0, len(host), 1.0), (11, 20, 0.5)]
    moved = shift_spans(spans, ins)
    kept = "".join(planted_text[a:b] for a, b, _ in moved if _ == 1.0)
    assert kept == host  # the whole-document span, split around the canaries, covers exactly the original text
    for i in ins:
        assert all(b <= i["start"] or a >= i["end"] for a, b, _ in moved)
    beta = [(a, b) for a, b, sc in moved if sc == 0.5]
    assert [planted_text[a:b] for a, b in beta] == ["Beta two."]
