"""biLM direction and alignment: the backward LM reads reversed text and predicts the previous token; features at t
see only tokens 0..t (forward) and t..end (backward); scores do not depend on how documents are batched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokfilter.classify import bilm as B
from tokfilter.classify.data import TokenDoc, TokenWindowSampler, window_plan
from tokfilter.classify.segments import sentence_segments


def tiny(**overrides) -> B.BiLM:
    torch.manual_seed(0)
    cfg = B.BiLMConfig(vocab_size=64, seq_len=32, n_layer=1, d_model=32, n_head=2, layers=[0, 1], head="conv",
                       conv_kernel=3, head_hidden=8, pad_id=0, **overrides)
    return B.BiLM(cfg)


def pair_corpus(n_docs: int, length: int, seed: int) -> list[TokenDoc]:
    """Pairs [h(b), b] with b uniform in 32..63 and h(b) = (b - 32) // 2: the previous token of every b is
    determined by b, while the next token after b (a fresh pair's h) is uniform over 16 values."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n_docs):
        b = rng.integers(32, 64, size=length // 2)
        ids = np.stack([(b - 32) // 2, b], axis=1).reshape(-1).astype(np.int64)
        docs.append(TokenDoc(str(i), ids, np.zeros(len(ids), np.float32)))
    return docs


def test_reverse_valid_is_an_involution_that_keeps_padding():
    x = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    lengths = torch.tensor([3, 5])
    r = B.reverse_valid(x, lengths)
    assert r.tolist() == [[3, 2, 1, 0, 0], [8, 7, 6, 5, 4]]
    assert torch.equal(B.reverse_valid(r, lengths), x)


def test_backward_lm_is_trained_on_reversed_text_and_predicts_the_previous_token():
    model = tiny()
    docs = pair_corpus(64, 64, seed=0)
    B.run_steps(model, TokenWindowSampler(docs, 32, seed=0), steps=150, batch_size=16, lr=1e-2, loss_fn=B.lm_loss)
    x = torch.from_numpy(np.stack([d.ids[:32] for d in pair_corpus(8, 64, seed=1)]))
    lengths = torch.full((8,), 32)
    prev = model.previous_token_logits(x, lengths)
    at_b = torch.arange(1, 32, 2)  # positions holding a b token; the previous token is h(b)
    predicted = prev[:, at_b].argmax(-1)
    expected = (x[:, at_b] - 32) // 2
    accuracy = (predicted == expected).float().mean().item()
    assert accuracy > 0.9, f"backward LM predicts the previous token with accuracy {accuracy:.2f}"
    # The forward LM cannot know which of the two b's follows h(b): its next-token loss stays near ln 2 there.
    with torch.no_grad():
        logp = torch.log_softmax(model.fwd(x), -1)
    at_h = torch.arange(0, 31, 2)
    nll = -logp[:, at_h].gather(-1, x[:, at_h + 1].unsqueeze(-1)).mean().item()
    assert nll > 0.5


def test_feature_alignment_forward_reads_left_backward_reads_right():
    model = tiny().eval()
    n, j = 20, 9
    x = torch.randint(1, 64, (1, 32))
    lengths = torch.tensor([n])
    y = x.clone()
    y[0, j] = (x[0, j] % 63) + 1  # a different token at position j
    with torch.no_grad():
        fx, bx = model.all_features(x, lengths)
        fy, by = model.all_features(y, lengths)
    for layer in range(1, len(fx)):
        forward_changed = (fx[layer] - fy[layer]).abs().amax(-1)[0, :n] > 1e-6
        backward_changed = (bx[layer] - by[layer]).abs().amax(-1)[0, :n] > 1e-6
        assert not forward_changed[:j].any() and forward_changed[j:].all()
        assert not backward_changed[j + 1:].any() and backward_changed[:j + 1].all()


def test_padding_does_not_reach_real_positions():
    model = tiny().eval()
    x = torch.randint(1, 64, (1, 32))
    y = x.clone()
    y[0, 20:] = torch.randint(1, 64, (12,))
    lengths = torch.tensor([20])
    with torch.no_grad():
        assert torch.equal(model(x, lengths)[0, :20], model(y, lengths)[0, :20])


@pytest.mark.parametrize("n", [1, 31, 32, 33, 100, 257])
def test_window_plan_tiles_the_document_with_context_on_both_sides(n):
    plan = window_plan(n, 32)
    assert plan[0][2] == 0 and plan[-1][3] == n
    for (s, length, a, b), nxt in zip(plan, plan[1:] + [None]):
        assert s <= a < b <= s + length <= n
        if nxt is not None:
            assert b == nxt[2]
        if n > 32:
            assert all(min(t - s, s + length - 1 - t) >= min(8, t, n - 1 - t) for t in range(a, b))


def test_scores_do_not_depend_on_batch_grouping():
    model = tiny().eval()
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 64, size=n) for n in (5, 40, 200, 33, 1, 77, 64, 19, 150, 3, 90, 12, 8, 300, 41, 2, 60)]
    together = B.score_docs(model, docs)
    alone = [B.score_docs(model, [d])[0] for d in docs]
    reversed_order = B.score_docs(model, docs[::-1])[::-1]
    assert len(together) == len(alone) == len(reversed_order) == len(docs) == 17
    for a, b, c, d in zip(together, alone, reversed_order, docs, strict=True):
        assert a.shape == (len(d),) and a.dtype == np.float32
        assert np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_classifier_scores_on_the_device_it_is_moved_to(device):
    """`tokfilter annotate --device` moves the classifier; scores come back as CPU float32, and the saved tensors
    stay on the CPU. On CUDA (bf16 autocast) scores agree with the CPU's to bf16 precision."""
    rng = np.random.default_rng(1)
    docs = [rng.integers(1, 64, size=n) for n in (7, 90, 33)]
    reference = B.score_docs(tiny().eval(), docs)
    clf = B.BiLMClassifier(tiny(), tokenizer_hash="h").to(device)
    assert next(clf.model.parameters()).device.type == device
    scores = clf.score_batch(docs)
    assert len(scores) == len(reference) == len(docs) > 0
    for a, b in zip(scores, reference, strict=True):
        assert a.dtype == np.float32 and a.shape == b.shape
        assert np.allclose(a, b, atol=0 if device == "cpu" else 2e-2)
    assert all(t.device.type == "cpu" for t in clf.tensors().values())


def test_sentence_min_is_the_lower_of_the_window_score_and_the_sentence_read_alone():
    model = tiny().eval()
    rng = np.random.default_rng(2)
    ends = np.zeros(64, dtype=bool)
    ends[5] = True  # token 5 ends a sentence when the next one "starts with a space"
    spaced = np.ones(64, dtype=bool)
    docs = [rng.integers(1, 64, size=n) for n in (5, 40, 200, 33, 1, 77, 19, 150, 3)]
    clf = B.BiLMClassifier(model, "h", scoring="sentence-min", boundaries=(ends, spaced))
    scores = clf.score_batch(docs)
    window = B.score_docs(model, docs)
    for ids, s, w in zip(docs, scores, window, strict=True):
        expected = w.copy()
        for a, b in sentence_segments(ids, ends, spaced):
            alone = B.score_docs(model, [ids[a:b]])[0]  # the sentence as a document of its own
            assert np.allclose(s[a:b], np.minimum(w[a:b], alone), atol=1e-6)
            expected[a:b] = np.minimum(w[a:b], alone)
        assert s.dtype == np.float32 and (s <= w).all()
    assert any((s < w - 1e-3).any() for s, w in zip(scores, window))  # the sentence pass changes something
    for a, b in zip(scores, [clf.score_tokens(d) for d in docs], strict=True):
        assert np.array_equal(a, b)  # grouping-independent, like the window scorer
    assert clf.flops_per_token == pytest.approx(1.5 * B.BiLMClassifier(model, "h").flops_per_token)
    with pytest.raises(ValueError, match="boundary"):
        B.BiLMClassifier(model, "h", scoring="sentence-min")
