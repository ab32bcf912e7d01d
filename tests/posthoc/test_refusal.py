"""Refusal training: the documented rule, and SFT + evaluation end to end on a tiny demo model."""

from __future__ import annotations

import json

import pytest

from tokfilter.cli import main
from tokfilter.errors import UserError
from tokfilter.posthoc.refusal import REFUSAL_TEMPLATES, is_refusal_text, refusal_train_and_eval


@pytest.mark.parametrize("text", [*REFUSAL_TEMPLATES, "I’m sorry, but that is not something I can do.",
                                  "I cannot   answer that.", "I won't discuss this.", "I must decline.",
                                  "sorry, i can't", "I am unable to provide medical advice."])
def test_rule_flags_refusals(text):
    assert is_refusal_text(text)


@pytest.mark.parametrize("text", ["Sorry to hear that. Rest and drink fluids.", "I am sorry for being late.",
                                  "Boils are usually not serious; see a doctor if they persist.",
                                  "You can help by washing your hands.", "I can answer that: yes.", ""])
def test_rule_passes_ordinary_answers(text):
    assert not is_refusal_text(text)


def test_refusal_training_end_to_end(robust_models, tmp_path, capsys):
    result = refusal_train_and_eval(robust_models["full"], tmp_path / "sft", n_train=120, n_eval=12, steps=150,
                                    lr=1e-2, batch_size=8, max_new_tokens=16, progress=False)
    c = result["counts"]
    assert c["forget_n"] == c["general_n"] == 12 and c["train_refusals"] == c["train_general"] == 120
    assert result["forget_refusal_rate"] == c["forget_refused"] / 12
    assert result["general_refusal_rate"] == c["general_refused"] / 12
    assert result["sft"]["last_loss"] < result["sft"]["first_loss"]
    # the SFT model learned the refusal sentences, and uses them more on held-out medical questions
    assert c["forget_refused"] >= 2 and c["forget_refused"] > c["general_refused"], result["samples"]
    assert (tmp_path / "sft" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "sft" / "provenance.json").read_text())["counts"] == c
    with pytest.raises(UserError):
        refusal_train_and_eval(robust_models["full"], None, n_train=0)
    questions = tmp_path / "q.txt"
    questions.write_text("Is it bad?\n")
    rc = main(["align", "refusal", "--model", str(robust_models["full"]), "--out", str(tmp_path / "o"),
               "--questions", str(questions)])
    assert rc == 2 and "at least 2" in capsys.readouterr().err
