"""Shared fixtures of the SAE labeler tests: one torch thread, planted latent statistics, and a tiny randomly
initialised Llama with a BPE tokenizer trained on the demo corpus (built once for the package)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tokfilter.corpus.demo import load_demo
from tokfilter.labels.sae.stats import LatentStats


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tests run many tiny matmuls: one thread avoids oversubscribing the shared cores (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


@pytest.fixture
def planted_stats():
    """`_planted_stats(rng, d_sae=40, planted=(3, 11, 27), top_examples=0)`, for the selector tests."""
    return _planted_stats


@pytest.fixture(scope="package")
def demo_texts():
    docs = load_demo(split="train")
    by = {d: [x.text[:1200] for x in docs if x.domain == d] for d in ("forget", "retain", "general")}
    return {"forget": by["forget"][:40], "other": by["retain"][:20] + by["general"][:20],
            "label": [x for x in docs if x.domain == "forget"][40:46] + [x for x in docs if x.domain == "general"][20:26]}


@pytest.fixture(scope="package")
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
