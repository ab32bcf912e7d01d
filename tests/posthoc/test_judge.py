"""LLM judge: prompt/parse logic with a fake local callable, and the API key never leaking (no network anywhere)."""

from __future__ import annotations

import json
import logging

import pytest

from tokfilter.errors import UserError
from tokfilter.posthoc.judge import LLMJudge, OpenAIJudge

FAKE_KEY = "sk-test-PLANTED-7f3a9c1e5b"


def test_callable_judge_parses_refusals_and_ratings():
    prompts = []

    def complete(prompt: str) -> str:
        prompts.append(prompt)
        if "REFUSAL or ANSWER" in prompt:
            return "REFUSAL" if "Assistant: I'm sorry" in prompt else "answer"
        return 'Sure: {"correct": 4, "relevant": 5, "coherent": 3}'

    judge = LLMJudge(complete)
    assert judge.is_refusal("Is flu serious?", "I'm sorry, I can't help with that.")
    assert not judge.is_refusal("Is flu serious?", "It can be, for old people.")
    assert judge.rate("q", "a", reference="ref") == {"correct": 4.0, "relevant": 5.0, "coherent": 3.0}
    assert "ref" in prompts[-1]


@pytest.mark.parametrize("reply", ["no json here", '{"correct": 9, "relevant": 1, "coherent": 1}',
                                   '{"correct": "x"}', '{"relevant": 2}'])
def test_unparseable_rating_is_flagged_not_guessed(reply):
    assert LLMJudge(lambda _: reply).rate("q", "a") == {"parse_error": True}


def test_api_key_is_sent_only_in_the_header_and_never_output(monkeypatch, tmp_path, capsys, caplog):
    monkeypatch.setenv("TOKFILTER_JUDGE_API_KEY", FAKE_KEY)
    caplog.set_level(logging.DEBUG)
    seen = []

    def transport(url, headers, body, timeout):
        seen.append((url, headers, body))
        text = "REFUSAL" if b"REFUSAL or ANSWER" in body else '{"correct": 2, "relevant": 3, "coherent": 4}'
        return json.dumps({"choices": [{"message": {"content": text}}]}).encode()

    judge = OpenAIJudge("http://judge.invalid/v1/", "m", transport=transport)
    results = {"refusal": judge.is_refusal("q", "a"), "rating": judge.rate("q", "a"), "repr": repr(judge),
               "vars": {k: repr(v) for k, v in vars(judge).items()}}
    assert seen[0][0] == "http://judge.invalid/v1/chat/completions"
    assert seen[0][1]["Authorization"] == f"Bearer {FAKE_KEY}"  # the one place the key goes
    assert FAKE_KEY.encode() not in seen[0][2]
    assert results["refusal"] is True and results["rating"]["coherent"] == 4.0

    # failures: a transport error whose message carries the key, a bad reply, a missing variable
    def leaky(url, headers, body, timeout):
        raise RuntimeError(f"connection refused with headers {headers}")

    errors = []
    for bad in (OpenAIJudge("http://judge.invalid/v1", "m", transport=leaky),
                OpenAIJudge("http://judge.invalid/v1", "m", transport=lambda *a: b"not json")):
        with pytest.raises(UserError) as info:
            bad.is_refusal("q", "a")
        errors.append(str(info.value) + repr(info.value.__cause__) + repr(info.value.__context__))
    monkeypatch.delenv("TOKFILTER_JUDGE_API_KEY")
    with pytest.raises(UserError, match="TOKFILTER_JUDGE_API_KEY is not set"):
        judge.is_refusal("q", "a")

    out_file = tmp_path / "result.json"
    out_file.write_text(json.dumps(results))
    captured = capsys.readouterr()
    everything = [json.dumps(results), *errors, captured.out, captured.err, caplog.text, out_file.read_text()]
    assert all(FAKE_KEY not in text for text in everything)
    assert all("sk-test" not in text for text in everything)
