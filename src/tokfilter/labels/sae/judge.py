"""LLM-judge latent selector: the paper's way of picking forget latents, optional and online.

The paper asks an LLM whether each latent's explanation (with top-activating examples) is about the forget domain
and keeps latents scored >= 0.9. Here a latent's explanation is built from what the reference text shows: its most
frequent top-activating tokens and its top-activating contexts (token marked <<like this>>), plus how often it fires
on forget vs other text. The judge is any callable `prompt -> score in [0, 1]`; `openai_judge` makes one that calls an
OpenAI-compatible chat-completions endpoint over HTTP, reading the API key from an environment variable at call time
(the key is never printed, logged, stored on the object or written anywhere). Tests use a fake local callable.

Judging 16k latents costs 16k calls, so only the `candidates` latents most specific to the forget text (contrastive
score) are sent to the judge.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tokfilter.errors import UserError
from tokfilter.labels.sae.select import ContrastiveSelector
from tokfilter.labels.sae.stats import LatentStats

Judge = Callable[[str], float]

PROMPT = """You are classifying features of a language model for a data-filtering project.
Forget domain: {domain}.
Below is one feature: the tokens where it activates most strongly, in context (the token is marked <<like this>>).
{explanation}
How likely is it that this feature specifically represents the forget domain (not general biology, chemistry,
psychology, public health or everyday language)? Reply with a single number between 0 and 1."""


def explain_latent(stats: LatentStats, latent: int, max_contexts: int = 8) -> str:
    """A plain-text explanation of one latent from its top-activating reference contexts."""
    contexts = stats.contexts(latent)[:max_contexts]
    tokens = Counter(re.search(r"<<(.*?)>>", c, re.S).group(1).strip().lower() for _, c in contexts)
    lines = [f"Top tokens: {', '.join(t for t, _ in tokens.most_common(8)) or '(none)'}",
             f"Fires on {100 * stats.rate('forget')[latent]:.2f}% of forget-reference tokens and "
             f"{100 * stats.rate('other')[latent]:.2f}% of other tokens.", "Top contexts:"]
    lines += [f"  {value:.2f}: {context}" for value, context in contexts]
    return "\n".join(lines)


def parse_score(reply: str) -> float:
    """First number in a judge reply, clipped to [0, 1] (0 when there is none)."""
    match = re.search(r"\d*\.?\d+", reply)
    return min(max(float(match.group()), 0.0), 1.0) if match else 0.0


def openai_judge(base_url: str, model: str, key_env: str = "OPENAI_API_KEY", timeout: float = 60.0) -> Judge:
    """A judge calling `{base_url}/chat/completions`; the key is read from `key_env` at each call, never kept."""
    url = base_url.rstrip("/") + "/chat/completions"
    if not os.environ.get(key_env):
        raise UserError(f"--judge-key-env {key_env}: the environment variable is not set")

    def judge(prompt: str) -> float:
        body = json.dumps({"model": model, "temperature": 0, "max_tokens": 8,
                           "messages": [{"role": "user", "content": prompt}]}).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": "Bearer " + os.environ.get(key_env, "")})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                reply = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:  # the message carries status and reason only, never the headers
            raise UserError(f"judge endpoint {url}: HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as err:
            raise UserError(f"judge endpoint {url}: {type(err).__name__}") from None
        try:
            return parse_score(reply["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError):
            raise UserError(f"judge endpoint {url}: unexpected reply shape") from None

    return judge


@dataclass
class JudgeSelector:
    """Keep latents whose explanation the judge scores >= `threshold` (paper: 0.9), among the `candidates` latents
    with the highest contrastive specificity that fire on forget text at all; at most `max_latents`."""

    judge: Judge
    domain: str
    threshold: float = 0.9
    candidates: int = 1000
    max_latents: int = 512
    examples: int = 8  # top-activating examples to keep per latent (LatentStats.top_examples)

    def specificity(self, stats: LatentStats) -> np.ndarray:
        return ContrastiveSelector().specificity(stats)

    def scores(self, stats: LatentStats) -> dict[int, float]:
        """Judge score of each candidate latent."""
        spec = self.specificity(stats)
        alive = np.flatnonzero(stats.fires["forget"] > 0)
        ranked = alive[np.argsort(-spec[alive], kind="stable")][: self.candidates]
        return {int(latent): float(self.judge(PROMPT.format(domain=self.domain, explanation=explain_latent(
            stats, int(latent))))) for latent in ranked}

    def __call__(self, stats: LatentStats) -> np.ndarray:
        if not stats.top_examples:
            raise ValueError("JudgeSelector needs LatentStats with top_examples > 0")
        scores = self.scores(stats)
        kept = sorted((s, latent) for latent, s in scores.items() if s >= self.threshold)[::-1]
        return np.sort(np.array([latent for _, latent in kept[: self.max_latents]], dtype=np.int64))
