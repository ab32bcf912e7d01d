"""Filtering functions and the batch source: masking keyed on targets, removal, documents, noise, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokfilter.model import GPT, GPTConfig
from tokfilter.train.data import (
    IGNORE_INDEX,
    BatchSource,
    document_scores,
    documents_to_drop,
    hash_uniform,
    make_example,
    token_labels,
)

HIDDEN = 99


def test_mask_is_keyed_on_targets():
    window = np.array([10, 11, 12, 13, 14, 15])
    forget = np.array([False, False, True, True, False, False])  # tokens 12 and 13 are forget
    x, y = make_example(window, forget, "mask", HIDDEN)
    assert x.tolist() == [10, 11, 12, 13, 14]  # inputs untouched
    # target t is window[t+1]: positions predicting 12 (t=1) and 13 (t=2) are masked, nothing else
    assert y.tolist() == [11, IGNORE_INDEX, IGNORE_INDEX, 14, 15]


def test_remove_masks_targets_and_hides_exactly_the_labelled_inputs():
    window = np.array([10, 11, 12, 13, 14, 15])
    forget = np.array([True, False, True, True, False, True])
    x, y = make_example(window, forget, "remove", HIDDEN)
    assert x.tolist() == [HIDDEN, 11, HIDDEN, HIDDEN, 14]
    assert y.tolist() == [11, IGNORE_INDEX, IGNORE_INDEX, 14, IGNORE_INDEX]
    labelled_inputs = forget[:-1]
    assert np.array_equal(x == HIDDEN, labelled_inputs)
    assert np.array_equal(x[~labelled_inputs], window[:-1][~labelled_inputs])


def test_masked_positions_contribute_no_loss_and_no_gradient():
    """On a real model: changing the logits of masked positions' targets cannot change the loss."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=128, n_layer=1, n_head=2, d_model=32, seq_len=16))
    window = np.arange(17) % 100
    forget = np.zeros(17, dtype=bool)
    forget[[3, 7, 8]] = True
    for mode in ("mask", "remove"):
        x, y = make_example(window, forget, mode, HIDDEN)
        per_pos = model(torch.from_numpy(x)[None], torch.from_numpy(y)[None], reduction="none")[0]
        assert torch.nonzero(per_pos == 0).flatten().tolist() == [2, 6, 7]  # targets 3, 7, 8
        y2 = y.copy()
        y2[[2, 6, 7]] = [5, 6, 7]  # unmasking must change the loss: the mask is what removed them
        full = model(torch.from_numpy(x)[None], torch.from_numpy(y2)[None], reduction="none")[0]
        assert bool((full[[2, 6, 7]] > 0).all())


def test_none_and_document_ignore_token_labels():
    window = np.arange(6)
    forget = np.ones(6, dtype=bool)
    for mode in ("none", "document"):
        x, y = make_example(window, forget, mode, HIDDEN)
        assert (y != IGNORE_INDEX).all() and (x != HIDDEN).all()


def test_all_masked_batch_has_zero_loss_and_finite_gradients():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, n_layer=2, n_head=2, d_model=32, seq_len=8))
    x = torch.randint(0, 64, (2, 8))
    loss = model(x, torch.full((2, 8), IGNORE_INDEX))
    loss.backward()
    assert loss.item() == 0.0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_document_aggregates_and_noise_are_deterministic():
    scores = np.array([0.9, 0.9, 0.0, 0.1, 0.1, 0.6, 0.0], dtype=np.float16)
    ends = np.array([3, 5, 7])
    assert np.allclose(document_scores(scores, ends, "mean", 0.5), [0.6, 0.1, 0.3], atol=1e-3)
    assert np.allclose(document_scores(scores, ends, "frac", 0.5), [2 / 3, 0, 0.5])
    assert documents_to_drop(document_scores(scores, ends, "frac", 0.5), 0.5).tolist() == [True, False, True]
    u = hash_uniform(3, 1, np.arange(100000))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert np.array_equal(u[500:600], hash_uniform(3, 1, np.arange(500, 600)))  # keyed on position
    labels = token_labels(np.zeros(100000, np.float16), 0.5, noise=0.2, seed=3)
    assert abs(labels.mean() - 0.2) < 0.01
    assert not np.array_equal(labels, token_labels(np.zeros(100000, np.float16), 0.5, noise=0.2, seed=4))


def test_batch_source_filters_from_scores(spliced_shards):
    train, _ = spliced_shards
    src = BatchSource(train, seq_len=64, batch_size=8, mode="remove", score_name="truth", threshold=0.5, seed=1,
                      batch_targets="rows")
    x, y = src.next_batch()
    assert x.shape == y.shape == (8, 64)
    assert (x == train.hidden_id).any() and (y == IGNORE_INDEX).any()
    # every hidden input is followed (as a target one step earlier) by a masked target, and vice versa
    assert torch.equal(x[:, 1:] == train.hidden_id, y[:, :-1] == IGNORE_INDEX)
    none = BatchSource(train, seq_len=64, batch_size=8, mode="none", seed=1, batch_targets="rows")
    xn, yn = none.next_batch()
    keep = y != IGNORE_INDEX
    assert torch.equal(yn[keep], y[keep])  # same windows, same seed
    assert 0.05 < src.filtered_fraction() < 0.9


def test_document_mode_drops_whole_documents(spliced_shards):
    train, _ = spliced_shards
    src = BatchSource(train, seq_len=64, batch_size=8, mode="document", score_name="truth", threshold=0.5,
                      doc_threshold=0.5, doc_aggregate="frac", seed=0)
    assert 0.1 < src.filtered_fraction() < 0.9
    assert sum(v.length for v in src.kept_views) == train.num_tokens - src.dropped_tokens
    rng = np.random.default_rng(0)
    for s, view in enumerate(src.kept_views):
        ends = train.doc_ends(s).astype(np.int64)
        frac = document_scores(train.scores(s, "truth"), ends, "frac", 0.5)
        tokens = np.asarray(train.tokens(s))
        for start in rng.integers(0, view.length - 65, size=20):
            window, positions = view.read(int(start), 65)
            assert len(window) == 65 and np.array_equal(window, tokens[positions])
            docs = np.searchsorted(ends, positions, side="right")
            assert (frac[docs] < 0.5).all()  # only documents below the threshold are ever read
    x, y = src.next_batch()
    assert (y != IGNORE_INDEX).all() and x.shape == (8, 64)


@pytest.mark.parametrize("batch_targets", ["fixed", "rows"])
@pytest.mark.parametrize("sampling", ["random", "sequential"])
def test_state_dict_resumes_identical_batches(spliced_shards, sampling, batch_targets):
    train, _ = spliced_shards
    kw = dict(seq_len=32, batch_size=4, mode="mask", score_name="truth", sampling=sampling, seed=5,
              batch_targets=batch_targets)
    a = BatchSource(train, **kw)
    for _ in range(3):
        a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch() for _ in range(3)]
    b = BatchSource(train, **kw)
    b.load_state_dict(state)
    for (xe, ye), (xb, yb) in zip(expected, [b.next_batch() for _ in range(3)], strict=True):
        assert torch.equal(xe, xb) and torch.equal(ye, yb)


def test_ranks_split_the_global_batch(spliced_shards):
    train, _ = spliced_shards
    whole = BatchSource(train, seq_len=32, batch_size=4, seed=2).next_batch()[0]
    r0 = BatchSource(train, seq_len=32, batch_size=4, seed=2, rank=0, world_size=2).next_batch()[0]
    r1 = BatchSource(train, seq_len=32, batch_size=4, seed=2, rank=1, world_size=2).next_batch()[0]
    assert torch.equal(whole[0::2], r0) and torch.equal(whole[1::2], r1)


# ----- equal steps: every `fixed` batch holds exactly batch_size x seq_len targets -----


@pytest.mark.parametrize("sampling", ["random", "sequential"])
@pytest.mark.parametrize("mode", ["mask", "remove"])
def test_fixed_batches_hold_exactly_the_unfiltered_target_count(spliced_shards, mode, sampling):
    train, _ = spliced_shards
    src = BatchSource(train, seq_len=64, batch_size=8, mode=mode, score_name="truth", sampling=sampling, seed=3)
    rows = []
    for _ in range(20):
        x, y = src.next_batch()
        assert int((y != IGNORE_INDEX).sum()) == src.last_targets == 8 * 64  # exactly, every step
        assert len(x) == src.last_rows >= 8
        assert bool(((y != IGNORE_INDEX).sum(1) > 0).all())  # no row without a target
        rows.append(src.last_rows)
    assert max(rows) > 8  # filtering made it read more windows than an unfiltered batch
    rows_src = BatchSource(train, seq_len=64, batch_size=8, mode=mode, score_name="truth", sampling=sampling,
                           seed=3, batch_targets="rows")
    x_rows, y_rows = rows_src.next_batch()
    assert int((y_rows != IGNORE_INDEX).sum()) < 8 * 64  # the old batches have fewer targets


def test_fixed_trims_only_the_last_row(spliced_shards):
    """The surplus targets of the last row (its last ones) are masked; the windows are the ones `rows` draws."""
    train, _ = spliced_shards
    fixed = BatchSource(train, seq_len=64, batch_size=8, mode="mask", score_name="truth", sampling="sequential")
    plain = BatchSource(train, seq_len=64, batch_size=64, mode="mask", score_name="truth", sampling="sequential",
                        batch_targets="rows")
    x, y = fixed.next_batch()
    xp, yp = plain.next_batch()
    n = len(x)
    kept = [r for r in range(64) if (yp[r] != IGNORE_INDEX).any()][:n]  # windows with a target, in order
    assert torch.equal(x, xp[kept])
    assert torch.equal(y[:-1], yp[kept[:-1]])
    last, full = y[-1], yp[kept[-1]]
    keep = (full != IGNORE_INDEX).nonzero().flatten()
    need = 8 * 64 - int((y[:-1] != IGNORE_INDEX).sum())
    assert 0 < need <= len(keep)
    assert torch.equal((last != IGNORE_INDEX).nonzero().flatten(), keep[:need])


def test_none_fixed_is_the_old_batching(spliced_shards):
    train, _ = spliced_shards
    a = BatchSource(train, seq_len=32, batch_size=4, seed=9)
    b = BatchSource(train, seq_len=32, batch_size=4, seed=9, batch_targets="rows")
    for _ in range(5):
        (xa, ya), (xb, yb) = a.next_batch(), b.next_batch()
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and a.last_rows == 4


@pytest.mark.parametrize("world", [2, 3])
def test_fixed_batches_split_across_ranks_with_padding(spliced_shards, world):
    train, _ = spliced_shards
    kw = dict(seq_len=32, batch_size=6, mode="remove", score_name="truth", seed=4)
    whole = BatchSource(train, **kw)
    ranks = [BatchSource(train, **kw, rank=r, world_size=world) for r in range(world)]
    for _ in range(6):
        x, y = whole.next_batch()
        parts = [src.next_batch() for src in ranks]
        assert len({len(px) for px, _ in parts}) == 1  # every rank holds the same number of rows
        assert sum(int((py != IGNORE_INDEX).sum()) for _, py in parts) == 6 * 32
        for r, (px, py) in enumerate(parts):
            real = len(x[r::world])
            assert torch.equal(px[:real], x[r::world]) and torch.equal(py[:real], y[r::world])
            assert bool((py[real:] == IGNORE_INDEX).all())  # padding rows take no loss
        assert all(src.last_rows == whole.last_rows for src in ranks)


def test_fixed_refuses_a_filter_that_leaves_almost_nothing(tmp_path, spliced_shards):
    import shutil

    from tokfilter.atomic import save_npy
    from tokfilter.errors import UserError
    from tokfilter.shards import ShardSet

    train, _ = spliced_shards
    directory = tmp_path / "shards"
    shutil.copytree(train.dir, directory)
    shards = ShardSet(directory)
    for s in range(shards.num_shards):
        save_npy(shards.score_path(s, "all"), np.ones(len(shards.tokens(s)), dtype=np.float16))
    src = BatchSource(shards, seq_len=64, batch_size=4, mode="mask", score_name="all", seed=0)
    with pytest.raises(UserError, match="too little to train on"):
        src.next_batch()


def test_pool_scores_averages_over_sentences_and_documents():
    from tokfilter.filtering import pool_scores, sentence_end_table

    table = sentence_end_table(["a", " b", ".", "!\n", " c", "?\"", "<eot>"])
    assert table.tolist() == [False, False, True, True, False, True, False]
    tokens = np.array([0, 1, 2, 0, 3, 4, 1, 6])  # "a b." | "a!\n" | " c b<eot>"
    scores = np.array([1.0, 0.0, 0.5, 0.2, 0.4, 0.9, 0.3, 0.0], dtype=np.float16)
    ends = np.array([5, 8])  # two documents
    sentence = pool_scores(scores, ends, "sentence", tokens, table)
    np.testing.assert_allclose(sentence, [0.5, 0.5, 0.5, 0.3, 0.3, 0.4, 0.4, 0.4], atol=1e-3)
    document = pool_scores(scores, ends, "document")
    np.testing.assert_allclose(document, [0.42] * 5 + [0.4] * 3, atol=1e-3)
    np.testing.assert_array_equal(pool_scores(scores, ends, "token"), scores.astype(np.float32))


@pytest.mark.parametrize("granularity", ["sentence", "document"])
def test_coarse_granularity_filters_whole_units_on_real_text(spliced_shards, granularity):
    from tokfilter.filtering import pool_scores, sentence_end_table

    train, _ = spliced_shards
    fine = BatchSource(train, seq_len=64, batch_size=8, mode="mask", score_name="truth", threshold=0.5, seed=0)
    coarse = BatchSource(train, seq_len=64, batch_size=8, mode="mask", score_name="truth", threshold=0.5, seed=0,
                         granularity=granularity)
    assert 0.0 < coarse.filtered_fraction() and coarse.filtered_fraction() != fine.filtered_fraction()
    table = sentence_end_table([train.tokenizer().decode([i]) for i in range(train.vocab_size)])
    assert 0 < table.sum() < len(table) // 4  # punctuation and newline tokens only
    pooled = pool_scores(train.scores(0, "truth"), train.doc_ends(0), granularity, train.tokens(0), table)
    for start, end in train.documents(0)[:50]:  # a unit is filtered as one: within a document the pooled
        values = pooled[start:end]  # score takes one value per unit, so document granularity gives one per doc
        assert len(np.unique(values)) <= (1 if granularity == "document" else end - start)
