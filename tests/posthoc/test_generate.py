"""Free-form generation: seeded sampling, stopping, greedy decoding, windows past seq_len, and the likelihood proxy."""

from __future__ import annotations

import json

import torch

from tokfilter.cli import main
from tokfilter.posthoc.chat import default_qa_path, read_qa_pairs
from tokfilter.posthoc.generate import answer_questions, freeform_eval, reference_loglik, sample
from tokfilter.train.checkpoint import load_model


def test_sampling_is_seeded_and_greedy_matches_argmax(robust_models):
    model, tok = load_model(robust_models["full"])
    prompts = [[tok.eot_id, *tok.encode_ids("The patient")], [tok.eot_id, *tok.encode_ids("Cells divide")]]
    a = sample(model, prompts, max_new_tokens=12, temperature=0.8, seed=5)
    assert a == sample(model, prompts, max_new_tokens=12, temperature=0.8, seed=5)
    assert a != sample(model, prompts, max_new_tokens=12, temperature=0.8, seed=6)
    greedy = sample(model, prompts[:1], max_new_tokens=5, temperature=0)[0]
    seq = list(prompts[0])
    with torch.no_grad():
        for _ in range(5):
            seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    assert greedy == seq[len(prompts[0]):]
    # batching (different prompt lengths in one batch) does not change greedy outputs
    both = sample(model, prompts, max_new_tokens=5, temperature=0)
    assert both[0] == greedy and both[1] == sample(model, prompts[1:], max_new_tokens=5, temperature=0)[0]


def test_sampling_runs_past_seq_len_and_stops_at_eot(robust_models):
    model, tok = load_model(robust_models["full"])
    long_prompt = tok.encode_ids("blood " * 80)[:70]
    assert len(long_prompt) > model.config.seq_len
    out = sample(model, [long_prompt], max_new_tokens=8, temperature=1.0, seed=0)[0]
    assert len(out) <= 8
    # make eot overwhelmingly likely: generation stops immediately and returns nothing
    with torch.no_grad():
        model.wte.weight[tok.eot_id] *= 50
    assert sample(model, [[tok.eot_id, 5, 6]], max_new_tokens=8, temperature=0, stop_id=tok.eot_id)[0] == []
    # a banned id is never produced
    out = sample(model, [[5, 6]], max_new_tokens=8, temperature=0, banned_ids=(tok.eot_id,))[0]
    assert tok.eot_id not in out and len(out) == 8


def test_reference_loglik_prefers_the_matching_answer(robust_models):
    model, tok = load_model(robust_models["full"])
    pairs = read_qa_pairs(default_qa_path())[:8]
    real = reference_loglik(model, tok, pairs, max_answer_tokens=32)
    shuffled = reference_loglik(model, tok, [(q, "zq xv " * 20) for q, _ in pairs], max_answer_tokens=32)
    assert real["tokens"] == 8 * 32 and len(real["per_answer"]) == 8
    assert real["mean_token_loglik"] > shuffled["mean_token_loglik"]


def test_freeform_eval_with_fake_judge_and_cli(robust_models, capsys):
    model, tok = load_model(robust_models["full"])

    class FakeJudge:
        def rate(self, question, answer, reference=None):
            return {"correct": 1.0, "relevant": 2.0, "coherent": float(len(answer) > 0) + 1}

    pairs = read_qa_pairs(default_qa_path())[:6]
    result = freeform_eval(model, tok, pairs, n=3, max_new_tokens=10, judge=FakeJudge())
    assert result["n_sampled"] == 3 and result["n_scored"] == 6
    assert result["judge_means"]["correct"] == 1.0 and all("judge" in s for s in result["samples"])
    assert answer_questions(model, tok, ["Is flu serious?"], max_new_tokens=6, seed=1) == \
        answer_questions(model, tok, ["Is flu serious?"], max_new_tokens=6, seed=1)
    rc = main(["generate", "--model", str(robust_models["full"]), "--limit", "4", "--n", "2",
               "--max-new-tokens", "8", "--no-progress"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["n_scored"] == 4 and len(out["samples"]) == 2 and out["temperature"] == 0.8


def test_negative_temperature_is_refused_by_both_sampling_commands(robust_models, tmp_path, capsys):
    for argv in (["generate", "--model", str(robust_models["full"]), "--temperature", "-0.5"],
                 ["align", "refusal", "--model", str(robust_models["full"]), "--out", str(tmp_path / "o"),
                  "--temperature", "-0.5"]):
        assert main(argv) == 2
        assert "--temperature must be >= 0, not -0.5" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
