"""MCQ scoring: the log-likelihood engine (batching, padding, truncation), answer selection, and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from tokfilter.cli import main
from tokfilter.evaluate.mcq import evaluate_mcq, summarize
from tokfilter.evaluate.mcq_data import MCQ
from tokfilter.evaluate.scoring import LogLikelihoodScorer
from tokfilter.model import GPT, GPTConfig


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(1)
    return GPT(GPTConfig(vocab_size=64, n_layer=2, n_head=2, d_model=32, seq_len=16)).eval()


def _reference(model, context, continuation):
    """Log-likelihood by one unpadded forward pass over the last seq_len tokens."""
    full = (context + continuation)[-(model.config.seq_len + 1):]
    n = min(len(continuation), len(full) - 1)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full[:-1]])).double(), -1)[0]
    targets = full[1:]
    return sum(float(logp[t, targets[t]]) for t in range(len(targets) - n, len(targets)))


def test_batched_padded_truncated_scores_match_reference(tiny_model):
    g = torch.Generator().manual_seed(0)
    requests = []
    for ctx_len, cont_len in [(1, 1), (3, 4), (15, 2), (30, 5), (2, 20), (7, 1)]:  # some exceed seq_len=16
        ctx = torch.randint(0, 64, (ctx_len,), generator=g).tolist()
        cont = torch.randint(0, 64, (cont_len,), generator=g).tolist()
        requests.append((ctx, cont))
    batched = LogLikelihoodScorer(tiny_model, seq_len=16, max_batch_tokens=64).loglikelihoods(requests)
    single = LogLikelihoodScorer(tiny_model, seq_len=16, max_batch_size=1)
    for (ctx, cont), (lp, _) in zip(requests, batched, strict=True):
        assert lp == pytest.approx(_reference(tiny_model, ctx, cont), abs=1e-4)
        assert lp == pytest.approx(single.loglikelihoods([(ctx, cont)])[0][0], abs=1e-4)


def test_greedy_flag_and_rolling(tiny_model):
    scorer = LogLikelihoodScorer(tiny_model, seq_len=16)
    with torch.no_grad():
        best = int(tiny_model(torch.tensor([[5, 6]]))[0, -1].argmax())
    assert scorer.loglikelihoods([([5, 6], [best])])[0][1] is True
    assert scorer.loglikelihoods([([5, 6], [(best + 1) % 64])])[0][1] is False
    ids = list(range(40))
    total = scorer.rolling_loglikelihood(ids, prefix_id=0)
    windows = [([0], ids[:16]), ([15], ids[16:32]), ([31], ids[32:])]
    assert total == pytest.approx(sum(_reference(tiny_model, c, t) for c, t in windows), abs=1e-3)


class PreferToken:
    """A fake LM whose next-token distribution always strongly prefers one token id."""

    def __init__(self, token: int, vocab: int):
        self.token, self.vocab = token, vocab

    def __call__(self, idx):
        logits = torch.zeros(*idx.shape, self.vocab)
        logits[..., self.token] = 10.0
        return logits


def test_cloze_and_letter_pick_the_most_likely_option(tiny_tokenizer):
    from tokfilter.evaluate.mcq import score_questions

    favourite = tiny_tokenizer.encode_ids(" B")
    assert len(favourite) == 1
    fake = LogLikelihoodScorer(PreferToken(favourite[0], tiny_tokenizer.vocab_size), seq_len=64)
    questions = [MCQ("q?", ["B", "long wrong answer", "another one", "x y z"], 0, "s"),
                 MCQ("q?", ["pick me not", "B", "nope"], 1, "s"),
                 MCQ("q?", ["nope", "nope nope", "B", "also no"], 3, "t")]
    cloze = summarize(score_questions(questions, fake, tiny_tokenizer, "cloze", progress=False))
    assert cloze["n"] == 3 and cloze["accuracy"] == pytest.approx(2 / 3)
    assert cloze["per_subject"]["s"]["accuracy"] == 1.0 and cloze["per_subject"]["t"]["accuracy"] == 0.0
    assert cloze["chance"] == pytest.approx((1 / 4 + 1 / 3 + 1 / 4) / 3, abs=1e-6)
    letter = summarize(score_questions(questions, fake, tiny_tokenizer, "letter", progress=False))
    assert letter["accuracy"] == pytest.approx(1 / 3)  # the fake always answers " B"; only question 2 has B right


def test_tiny_random_model_is_near_chance_on_mmlu(shared_data, tiny_checkpoint):
    from tokfilter.evaluate.loading import load_checkpoint, scorer_for

    model, tokenizer = load_checkpoint(tiny_checkpoint, device="cpu")
    result = evaluate_mcq(str(shared_data / "mcq" / "mmlu" / "val"), "mmlu", scorer_for(model, tokenizer),
                          tokenizer, limit=200, progress=False)
    assert result["n"] == 200 and result["chance"] == 0.25
    assert abs(result["accuracy"] - 0.25) < 4 * (0.25 * 0.75 / 200) ** 0.5
    assert sum(s["n"] for s in result["per_subject"].values()) == 200
    assert "mmlu_medicine" in result["groups"] or "mmlu_stem" in result["groups"]


def test_cli_mcq_prints_one_json_object(tiny_checkpoint, capsys, tmp_path):
    from tokfilter.evaluate.probes import probe_path

    out = tmp_path / "mcq.json"
    rc = main(["eval", "mcq", "--model", str(tiny_checkpoint), "--data", str(probe_path("forget")),
               "--format", "jsonl", "--limit", "40", "--no-progress", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    result = json.loads(printed[0])
    assert result == json.loads(out.read_text())
    assert {"format", "n", "accuracy", "chance", "per_subject", "groups", "skipped"} <= set(result)
    assert result["n"] == 40 and result["per_subject"]["medicine_hpo"]["n"] == 40
    assert result["accuracy_per_char"] is not None and result["skipped"]["total"] == 0


def test_cli_mcq_letter_scoring(tiny_checkpoint, capsys):
    from tokfilter.evaluate.probes import probe_path

    assert main(["eval", "mcq", "--model", str(tiny_checkpoint), "--data", str(probe_path("retain")),
                 "--scoring", "letter", "--limit", "20", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["format"] == "jsonl" and result["scoring"] == "letter" and result["n"] == 20
    assert "accuracy_per_char" not in result


@pytest.mark.parametrize("extra, message", [
    (["--format", "csv"], "unknown --format"),
    (["--scoring", "vibes"], "unknown --scoring"),
])
def test_cli_bad_options_exit_2_with_one_line(tiny_checkpoint, capsys, extra, message):
    from tokfilter.evaluate.probes import probe_path

    rc = main(["eval", "mcq", "--model", str(tiny_checkpoint), "--data", str(probe_path("forget")), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0]


def test_cli_other_tokenizer_exit_2(tiny_checkpoint, tmp_path, capsys):
    from tokfilter.evaluate.probes import probe_path
    from tokfilter.tokenizer import train_tokenizer

    other = train_tokenizer(["a completely different corpus of words"] * 20, 300, tmp_path / "other.json")
    rc = main(["eval", "mcq", "--model", str(tiny_checkpoint), "--data", str(probe_path("forget")),
               "--tokenizer", str(other.path), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "tokenizer" in err[0]


def test_cli_no_usable_questions_exit_2(tiny_checkpoint, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "options": {"A": "x"}, "answer_idx": "A"}\n', encoding="utf-8")
    rc = main(["eval", "mcq", "--model", str(tiny_checkpoint), "--data", str(bad), "--format", "medagents",
               "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "missing options: 1" in err[0]


def test_single_token_continuations_share_a_forward_pass(tiny_model):
    calls = []

    def counting(idx):
        calls.append(idx.shape[0])
        return tiny_model(idx)

    context = [3, 4, 5, 6]
    requests = [(context, [t]) for t in (10, 11, 12, 13)] + [([7, 8], [9]), (context, [10, 11])]
    scorer = LogLikelihoodScorer(counting, seq_len=16)
    results = scorer.loglikelihoods(requests)
    assert sum(calls) == 3  # one row for the four letters, one for ([7, 8], [9]), one for the two-token request
    for (ctx, cont), (lp, _) in zip(requests, results, strict=True):
        assert lp == pytest.approx(_reference(tiny_model, ctx, cont), abs=1e-4)


def test_evaluate_sets_for_results_json(tiny_checkpoint):
    from tokfilter.evaluate.loading import load_checkpoint
    from tokfilter.evaluate.mcq import evaluate_sets

    model, tokenizer = load_checkpoint(tiny_checkpoint, device="cpu")
    out = evaluate_sets(model, tokenizer, ["probes"], limit=8)
    assert set(out) == {"probes_forget", "probes_retain"}
    for entry in out.values():
        assert entry["n"] == 8 and entry["chance"] == 0.25 and 0 <= entry["accuracy"] <= 1


def test_pmi_discounts_options_likely_without_the_question(tiny_tokenizer):
    from tokfilter.evaluate.mcq import score_questions

    right, wrong = tiny_tokenizer.encode_ids(" B"), tiny_tokenizer.encode_ids(" C")
    marker = tiny_tokenizer.encode_ids("Question")[0]
    assert len(right) == len(wrong) == 1

    def fake(idx):  # always likes " C"; likes " B" almost as much, but only after a question
        logits = torch.zeros(*idx.shape, tiny_tokenizer.vocab_size)
        logits[..., wrong[0]] = 5.0
        asked = (idx == marker).any(dim=1)
        logits[asked, :, right[0]] = 4.9
        return logits

    scorer = LogLikelihoodScorer(fake, seq_len=64)
    questions = [MCQ("q?", ["B", "C"], 0, "s"), MCQ("q?", ["C", "B"], 1, "s")]
    result = summarize(score_questions(questions, scorer, tiny_tokenizer, "cloze", progress=False))
    assert result["accuracy"] == 0.0 and result["accuracy_pmi"] == 1.0
