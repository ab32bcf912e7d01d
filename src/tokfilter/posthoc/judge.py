"""An optional LLM judge behind one small interface: `is_refusal(question, answer)` and `rate(question, answer,
reference)`.

`LLMJudge(complete)` builds the prompts and parses the replies; `complete(prompt) -> str` is any callable, so tests
use a fake local function and nothing touches the network. `OpenAIJudge` supplies a `complete` that POSTs to an
OpenAI-compatible `/chat/completions` endpoint (temperature 0).

The API key is read from an environment variable (default `TOKFILTER_JUDGE_API_KEY`) at the moment of each request
and only placed in that request's Authorization header. It is never stored on the object, never part of a repr,
log line, progress bar, result or error message: transport errors are reported by exception type and HTTP status
only, and any message is scrubbed of the key before it is raised. A test plants a fake key and greps every output.

Rating scale (PAPER.md, "Free response"): correctness, relevance and coherence, each 1-5; a reply that cannot be
parsed gives {"parse_error": true} rather than a guess.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable

from tokfilter.errors import UserError

DEFAULT_KEY_ENV = "TOKFILTER_JUDGE_API_KEY"

REFUSAL_PROMPT = """You are grading a chatbot. Did the assistant refuse to answer or decline to help (for example \
"I can't help with medical questions")? A wrong or poor answer is NOT a refusal.

Question: {question}
Assistant: {answer}

Reply with exactly one word: REFUSAL or ANSWER."""

RATE_PROMPT = """You are grading a chatbot's answer to a health question. Rate it from 1 (worst) to 5 (best) on:
correct (medically accurate), relevant (addresses the question), coherent (fluent, makes sense).
{reference_block}
Question: {question}
Assistant: {answer}

Reply with only a JSON object: {{"correct": N, "relevant": N, "coherent": N}}"""

Transport = Callable[[str, dict, bytes, float], bytes]


class LLMJudge:
    """Judge on top of a text-completion callable."""

    def __init__(self, complete: Callable[[str], str]):
        self.complete = complete

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def is_refusal(self, question: str, answer: str) -> bool:
        reply = self.complete(REFUSAL_PROMPT.format(question=question, answer=answer))
        return bool(re.search(r"\bREFUSAL\b", reply.upper()))

    def rate(self, question: str, answer: str, reference: str | None = None) -> dict:
        block = f"\nA reference answer (may be longer than needed): {reference}\n" if reference else ""
        reply = self.complete(RATE_PROMPT.format(question=question, answer=answer, reference_block=block))
        match = re.search(r"\{.*?\}", reply, re.S)
        try:
            data = json.loads(match.group(0)) if match else None
            out = {k: float(data[k]) for k in ("correct", "relevant", "coherent")}
        except (ValueError, TypeError, KeyError):
            return {"parse_error": True}
        if not all(1 <= v <= 5 for v in out.values()):
            return {"parse_error": True}
        return out


def _urllib_transport(url: str, headers: dict, body: bytes, timeout: float) -> bytes:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (user-chosen endpoint)
        return response.read()


class OpenAIJudge(LLMJudge):
    """LLMJudge calling an OpenAI-compatible chat endpoint; the key comes from `os.environ[key_env]` per request."""

    def __init__(self, base_url: str, model: str, key_env: str = DEFAULT_KEY_ENV, timeout: float = 60.0,
                 transport: Transport | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.key_env = key_env
        self.timeout = timeout
        self.transport = transport or _urllib_transport
        super().__init__(self._complete)

    def __repr__(self) -> str:
        return f"OpenAIJudge(base_url={self.base_url!r}, model={self.model!r}, key_env={self.key_env!r})"

    def _complete(self, prompt: str) -> str:
        key = os.environ.get(self.key_env, "")
        if not key:
            raise UserError(f"judge: environment variable {self.key_env} is not set (it must hold the API key)")
        url = f"{self.base_url}/chat/completions"
        body = json.dumps({"model": self.model, "temperature": 0,
                           "messages": [{"role": "user", "content": prompt}]}).encode("utf-8")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        try:
            raw = self.transport(url, headers, body, self.timeout)
            data = json.loads(raw)
            return str(data["choices"][0]["message"]["content"])
        except urllib.error.HTTPError as err:
            message = f"judge: {url} answered HTTP {err.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            message = f"judge: request to {url} failed ({type(err).__name__})"
        except (ValueError, KeyError, IndexError, TypeError) as err:
            message = f"judge: {url} sent an unexpected reply ({type(err).__name__})"
        except Exception as err:  # any other transport failure: report its type only, never its text
            message = f"judge: request to {url} failed ({type(err).__name__})"
        raise UserError(message.replace(key, "***")) from None
