"""Property-based tests (hypothesis): span -> token label conversion, shard round trips, threshold filtering.

Each property runs 30-50 random examples (deadline off: the CPU is shared), the whole file in well under a minute.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokfilter.corpus import Document
from tokfilter.labels.spans import normalize_spans, spans_to_char_scores, spans_to_token_scores
from tokfilter.shards import ShardSet, verify, write_shards
from tokfilter.tokenizer import load_tokenizer, train_tokenizer
from tokfilter.tokenizer.core import default_tokenizer_spec
from tokfilter.train.data import IGNORE_INDEX, documents_to_drop, make_example, token_labels

FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

# text with ASCII words, accents, CJK, emoji, combining marks and whitespace runs
TEXT = st.text(alphabet=st.one_of(st.sampled_from(list("abc xyz.,\n\t  ")), st.characters(codec="utf-8")),
               max_size=120)


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """The packaged demo BPE (4096) and a very different small BPE (300) trained here."""
    from tokfilter.corpus.demo import load_demo

    demo = load_tokenizer(default_tokenizer_spec())
    texts = [d.text for d in load_demo("valid")[:50]]
    small = train_tokenizer(texts, 300, tmp_path_factory.mktemp("tok") / "small.json")
    return demo, small


@st.composite
def text_and_spans(draw):
    text = draw(TEXT.filter(lambda t: len(t) > 0))
    n = draw(st.integers(0, 4))
    spans = []
    for _ in range(n):
        a = draw(st.integers(0, len(text) - 1))
        b = draw(st.integers(a + 1, len(text)))
        spans.append([a, b, draw(st.sampled_from([1.0, 0.25, 0.5, 0.75, 0.9]))])
    return text, spans


def char_projection(token_scores: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(max score of the tokens covering each character, whether any token covers it)."""
    proj = np.zeros(n, dtype=np.float32)
    covered = np.zeros(n, dtype=bool)
    for (a, b), s in zip(offsets.tolist(), token_scores.tolist()):
        if b > a:
            np.maximum(proj[a:b], s, out=proj[a:b])
            covered[a:b] = True
    return proj, covered


@FEW
@given(case=text_and_spans())
def test_every_labelled_character_lies_in_a_labelled_token(tokenizers, case):
    text, raw = case
    spans = normalize_spans(raw, len(text))
    chars = spans_to_char_scores(spans, len(text))
    for tok in tokenizers:
        _, offsets = tok.encode(text)
        scores = spans_to_token_scores(spans, offsets, len(text))
        proj, covered = char_projection(scores, offsets, len(text))
        assert covered.all(), "a character no token covers"
        assert (proj >= chars).all(), "a labelled character inside a token with a lower score"
        # and no token is labelled without overlapping a span: each token's score is the max over its characters
        for (a, b), s in zip(offsets.tolist(), scores.tolist()):
            expected = float(chars[a:b].max()) if b > a else 0.0
            assert s == pytest.approx(expected)


@FEW
@given(case=text_and_spans())
def test_two_tokenizers_agree_inside_spans(tokenizers, case):
    """Through either tokenizer, every character inside a span ends up in a token scored at least the span's
    score; for hard labels (score 1) both tokenizers mark exactly 1 on every spanned character."""
    text, raw = case
    spans = normalize_spans(raw, len(text))
    chars = spans_to_char_scores(spans, len(text))
    projections = []
    for tok in tokenizers:
        _, offsets = tok.encode(text)
        projections.append(char_projection(spans_to_token_scores(spans, offsets, len(text)), offsets, len(text))[0])
    inside = chars > 0
    for proj in projections:
        assert (proj[inside] >= chars[inside]).all()
    hard = chars == 1.0
    assert (projections[0][hard] == 1.0).all() and (projections[1][hard] == 1.0).all()


@FEW
@given(case=text_and_spans())
def test_normalize_spans_is_idempotent_and_keeps_char_scores(case):
    text, raw = case
    once = normalize_spans(raw, len(text))
    assert normalize_spans(once, len(text)) == once
    assert np.array_equal(spans_to_char_scores(once, len(text)), spans_to_char_scores(
        [tuple(s) for s in raw], len(text)))
    assert all(a < b for a, b, _ in once) and all(once[i][1] <= once[i + 1][0] for i in range(len(once) - 1))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(texts=st.lists(st.one_of(st.just(""), TEXT), min_size=1, max_size=8),
       shard_tokens=st.integers(1, 200))
def test_shard_round_trip(tokenizers, texts, shard_tokens):
    """Random documents (unicode, empty ones) -> shards -> decode gives the input back; verify passes.

    Documents handed to the writer directly are all kept (an empty one is a lone eot); the corpus readers are what
    skip empty documents (tested in the bad-input suite: an all-empty corpus exits 2)."""
    tok = tokenizers[0]
    docs = [Document(f"d{i}", t, "general") for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s"
        manifest = write_shards(docs, tok, out, shard_tokens=shard_tokens, progress=False)
        assert manifest["num_documents"] == len(docs)
        verify(out)
        shards = ShardSet(out)
        got = []
        for i in range(shards.num_shards):
            tokens = shards.tokens(i)
            assert tokens.dtype == tok.id_dtype
            assert len(shards.documents(i)) == len(shards.doc_meta(i)) > 0
            for (a, b), meta in zip(shards.documents(i), shards.doc_meta(i), strict=True):
                assert int(tokens[b]) == shards.eot_id
                got.append((meta["id"], tok.decode(tokens[a:b])))
        assert got == [(d.id, d.text) for d in docs]


SCORES = st.lists(st.floats(0, 1, width=16), min_size=2, max_size=64).map(lambda v: np.array(v, dtype=np.float16))


@FEW
@given(scores=SCORES, threshold=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_mask_and_remove_are_keyed_on_the_forget_tokens(scores, threshold, seed):
    rng = np.random.default_rng(seed)
    window = rng.integers(0, 1000, size=len(scores)).astype(np.uint16)
    hidden = 4242
    forget = token_labels(scores, threshold)
    assert np.array_equal(forget, scores.astype(np.float32) >= np.float32(threshold))
    x_none, y_none = make_example(window, forget, "none", hidden)
    assert np.array_equal(x_none, window[:-1]) and np.array_equal(y_none, window[1:])
    x, y = make_example(window, forget, "mask", hidden)
    assert np.array_equal(x, window[:-1]), "mask must not touch the inputs"
    assert np.array_equal(y == IGNORE_INDEX, forget[1:]), "mask is keyed on the target token"
    assert np.array_equal(y[~forget[1:]], window[1:][~forget[1:]])
    xr, yr = make_example(window, forget, "remove", hidden)
    assert np.array_equal(yr, y)
    assert np.array_equal(xr == hidden, forget[:-1]), "remove hides exactly the forget inputs"
    assert np.array_equal(xr[~forget[:-1]], window[:-1][~forget[:-1]])


@FEW
@given(scores=SCORES, t1=st.floats(0, 1), t2=st.floats(0, 1))
def test_raising_the_threshold_never_masks_more(scores, t1, t2):
    low, high = sorted((t1, t2))
    assert not (token_labels(scores, high) & ~token_labels(scores, low)).any()
    doc_scores = scores.astype(np.float64)
    assert not (documents_to_drop(doc_scores, high) & ~documents_to_drop(doc_scores, low)).any()


@FEW
@given(scores=SCORES, threshold=st.floats(0, 1), noise=st.floats(0, 1), seed=st.integers(0, 1000))
def test_noise_flips_are_keyed_on_position(scores, threshold, noise, seed):
    """The same positions give the same decisions whatever order (or slice) they are read in."""
    positions = np.arange(len(scores)) + 7
    full = token_labels(scores, threshold, noise, seed, 3, positions)
    half = len(scores) // 2
    parts = np.concatenate([token_labels(scores[half:], threshold, noise, seed, 3, positions[half:]),
                            token_labels(scores[:half], threshold, noise, seed, 3, positions[:half])])
    assert np.array_equal(full, np.concatenate([parts[len(scores) - half:], parts[:len(scores) - half]]))
