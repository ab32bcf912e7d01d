"""The LLM-judge selector with a fake local judge, and the OpenAI judge's key check."""

from __future__ import annotations

import numpy as np
import pytest

from tokfilter.errors import UserError
from tokfilter.labels.sae.judge import JudgeSelector, explain_latent, openai_judge, parse_score


def test_judge_selector_with_a_fake_judge(planted_stats):
    rng = np.random.default_rng(1)
    planted = (3, 11, 27)
    stats = planted_stats(rng, planted=planted, top_examples=4)
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
    monkeypatch.delenv("TOKFILTER_TEST_NO_KEY", raising=False)
    with pytest.raises(UserError, match="TOKFILTER_TEST_NO_KEY"):
        openai_judge("http://127.0.0.1:9", "m", key_env="TOKFILTER_TEST_NO_KEY")
