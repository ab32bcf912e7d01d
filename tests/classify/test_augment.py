"""Sentence mixes (classify/augment.py) on the real small benchmark: exact labels, determinism, only training text."""

from __future__ import annotations

from tokfilter.classify.augment import sentence_mixes


def _items(small_bench):
    return [(b.document, b.spans) for b in small_bench["train"]]


def test_mixes_are_labelled_exactly_and_built_from_training_text_only(small_bench):
    items = _items(small_bench)
    mixes = sentence_mixes(items, 0.5, seed=3)
    assert len(mixes) == round(0.5 * len(items))
    texts = {doc.id: doc.text for doc, _ in items}
    pure_forget = [doc.text for doc, spans in items if spans and spans[0][:2] == (0, len(doc.text))]
    pure_keep = [doc.text for doc, spans in items if not spans]
    kinds = {"forget-in-keep": 0, "keep-in-forget": 0}
    for doc, spans in mixes:
        kinds[doc.meta["mix_kind"]] += 1
        host = texts[doc.meta["mix_of"]]
        if doc.meta["mix_kind"] == "forget-in-keep":
            inserted = [(a, b) for a, b, _ in spans]
            assert all(any(doc.text[a:b] in t for t in pure_forget) for a, b in inserted)
        else:  # forget spans are the host's text; the gaps between them are inserted keep sentences
            assert spans[0][0] == 0 and spans[-1][1] == len(doc.text)
            gaps = [(left[1], right[0]) for left, right in zip(spans, spans[1:])]
            inserted = [(a + len(doc.text[a:b]) - len(doc.text[a:b].lstrip()), b) for a, b in gaps]
            inserted = [(a, a + len(doc.text[a:b].rstrip())) for a, b in inserted]
            assert all(any(doc.text[a:b] in t for t in pure_keep) for a, b in inserted)
        assert 1 <= len(inserted) <= 3
        rest, previous = [], 0
        for a, b in inserted:
            rest.append(doc.text[previous:a])
            previous = b
        rest.append(doc.text[previous:])
        assert "".join(rest).split() == host.split()  # removing the inserts gives the host back
    assert kinds["forget-in-keep"] >= len(mixes) // 2 and kinds["keep-in-forget"] >= len(mixes) // 2
    assert sentence_mixes(items, 0.5, seed=3) == mixes and sentence_mixes(items, 0.5, seed=4) != mixes


def test_no_mixes_without_both_kinds_of_pure_document(small_bench):
    keep_only = [(doc, spans) for doc, spans in _items(small_bench) if not spans]
    assert sentence_mixes(keep_only, 1.0) == [] and sentence_mixes(_items(small_bench), 0.0) == []
