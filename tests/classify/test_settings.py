"""Classifier settings (classify/settings.py): every unusable value is a one-line UserError before any data is read."""

from __future__ import annotations

import re

import pytest

from tokfilter.classify.settings import budget_settings
from tokfilter.errors import UserError


@pytest.mark.parametrize("overrides, message", [
    ({"finetune_steps": -5}, "finetune_steps = -5 (expected >= 0)"),
    ({"head": "bogus"}, "head = 'bogus' (expected one of linear, mlp, conv)"),
    ({"layers": [7]}, "layers = [7] (expected hidden-state indices 0..n_layer = 0..2)"),
    ({"d_model": 0}, "d_model = 0 (expected >= 1)"),
    ({"d_model": 16, "n_head": 3}, "d_model = 16 is not a multiple of n_head = 3"),
    ({"doc_label": "bogus"}, "doc_label = 'bogus' (expected one of domain, fraction)"),
    ({"scoring": "sentence"}, "scoring = 'sentence' (expected one of window, sentence-min)"),
    ({"lr": 0.0}, "lr = 0.0 (expected > 0)"),
])
def test_unusable_settings_are_refused_with_their_name(overrides, message):
    with pytest.raises(UserError, match="classifier settings: " + re.escape(message)):
        budget_settings("quick", overrides)


def test_the_named_budgets_and_the_demo_recipe_are_valid():
    for budget in ("quick", "full"):
        assert budget_settings(budget)["head"] == "conv"
    recipe = budget_settings("full", {"init": "packaged", "mix_fraction": 2.0, "finetune_steps": 500})
    assert recipe["finetune_steps"] == 500 and recipe["layers"] == [1, 2]


def test_a_negative_mix_fraction_is_refused_wherever_settings_are_read():
    with pytest.raises(UserError, match="mix_fraction = -1.0 \\(expected >= 0\\)"):
        budget_settings("quick", {"mix_fraction": -1.0})
