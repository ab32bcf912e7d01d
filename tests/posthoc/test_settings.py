"""One set of post-hoc defaults: the settings dataclasses hold the experiment's values, and the CLI flags and the
low-level functions default to them."""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
from dataclasses import asdict

from tokfilter.posthoc import cli
from tokfilter.posthoc.attack import finetune_attack
from tokfilter.posthoc.refusal import refusal_train_and_eval
from tokfilter.posthoc.rmu import rmu_unlearn
from tokfilter.posthoc.settings import RefusalSettings, RobustnessSettings


def test_settings_hold_the_experiment_defaults_in_order():
    assert asdict(RobustnessSettings()) == {"enabled": True, "lrs": [3e-4, 1e-3], "max_tokens": 60_000,
                                            "rmu_steps": 60, "rmu_lr": 0.01, "rmu_batch_size": 16,
                                            "rmu_coeffs": [4.0, 8.0], "rmu_alphas": [10.0, 30.0],
                                            "optional": False}
    assert list(asdict(RobustnessSettings())) == ["enabled", "lrs", "max_tokens", "rmu_steps", "rmu_lr",
                                                  "rmu_batch_size", "rmu_coeffs", "rmu_alphas", "optional"]
    assert asdict(RefusalSettings()) == {"enabled": True, "n_train": 300, "n_eval": 60, "steps": 120,
                                         "optional": False}
    assert RobustnessSettings().lrs is not RobustnessSettings().lrs  # no shared mutable default


def _defaults(fn) -> dict:
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()}


def test_functions_default_to_the_settings():
    r, f = RobustnessSettings(), RefusalSettings()
    attack = _defaults(finetune_attack)
    assert list(attack["lrs"]) == r.lrs and attack["max_tokens"] == r.max_tokens
    rmu = _defaults(rmu_unlearn)
    assert (rmu["steps"], rmu["lr"], rmu["batch_size"]) == (r.rmu_steps, r.rmu_lr, r.rmu_batch_size)
    assert list(rmu["coeffs"]) == r.rmu_coeffs and list(rmu["alphas"]) == r.rmu_alphas
    refusal = _defaults(refusal_train_and_eval)
    assert (refusal["n_train"], refusal["n_eval"], refusal["steps"]) == (f.n_train, f.n_eval, f.steps)


def test_cli_flags_default_to_the_settings():
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    r, f = RobustnessSettings(), RefusalSettings()
    attack = parser.parse_args(["attack", "finetune", "--model", "m", "--data", "d", "--eval", "e"])
    assert cli._floats(attack.lrs, "--lrs") == tuple(r.lrs) and attack.tokens == r.max_tokens
    assert attack.func is cli.run_attack
    rmu = parser.parse_args(["unlearn", "rmu", "--model", "m", "--forget", "f", "--retain", "r", "--out", "o"])
    assert (rmu.steps, rmu.lr, rmu.batch_size) == (r.rmu_steps, r.rmu_lr, r.rmu_batch_size)
    assert cli._floats(rmu.steering_coeff, "c") == tuple(r.rmu_coeffs)
    assert cli._floats(rmu.alpha, "a") == tuple(r.rmu_alphas)
    assert cli._floats(rmu.lrs, "--lrs") == tuple(r.lrs) and rmu.tokens == r.max_tokens
    align = parser.parse_args(["align", "refusal", "--model", "m", "--out", "o"])
    assert (align.n_train, align.n_eval, align.steps) == (f.n_train, f.n_eval, f.steps)
    assert parser.parse_args(["generate", "--model", "m"]).func is cli.run_generate


def test_settings_and_cli_import_no_torch():
    code = ("import sys, tokfilter.posthoc.settings, tokfilter.posthoc.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
