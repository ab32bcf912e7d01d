"""Finetuning attack: eval schedule, interpolated crossing, pretraining-token lookup, the attack on tiny demo models,
and the CLI's JSON and bad-input handling."""

from __future__ import annotations

import json

import pytest

from tokfilter.cli import main
from tokfilter.errors import UserError
from tokfilter.posthoc.attack import baseline_loss_of, crossing_tokens, eval_steps, finetune_attack
from tokfilter.posthoc.provenance import pretraining_tokens
from tokfilter.posthoc.texts import read_texts

from .robust_models import demo_texts


def test_eval_steps_are_geometric_and_end_at_max():
    steps = eval_steps(100)
    assert steps[:5] == [0, 1, 2, 3, 4]
    assert steps[-1] == 100
    assert all(b > a for a, b in zip(steps, steps[1:]))
    ratios = [b / a for a, b in zip(steps[5:], steps[6:-1])]
    assert all(1.2 < r < 1.6 for r in ratios)


def test_crossing_is_interpolated_between_eval_points():
    curve = [[0, 5.0], [100, 4.5], [300, 3.5], [700, 3.0]]
    assert crossing_tokens(curve, 4.0) == pytest.approx(200.0)  # halfway from 4.5 to 3.5 between 100 and 300
    assert crossing_tokens(curve, 3.0) == pytest.approx(700.0)
    assert crossing_tokens(curve, 5.5) == 0.0  # already below the target
    assert crossing_tokens(curve, 2.0) is None  # never reached


def test_pretraining_tokens_from_run_summary(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "config.json").write_text("{}")
    assert pretraining_tokens(tmp_path) is None
    (tmp_path / "summary.json").write_text(json.dumps({"train_tokens": 12345}))
    assert pretraining_tokens(tmp_path) == 12345
    assert pretraining_tokens(tmp_path / "checkpoint") == 12345


def test_read_texts_demo_spec_and_empty_input():
    texts = read_texts("demo:forget:valid", "--data")
    assert texts and all(isinstance(t, str) and t for t in texts)
    with pytest.raises(UserError):
        finetune_attack("unused", [], ["x"], 1.0)
    with pytest.raises(UserError):
        finetune_attack("unused", ["  "], ["x"], 1.0)


def test_attack_recovers_filtered_model_to_full_model_loss(robust_models):
    held = demo_texts("forget", "valid", 12)
    train = demo_texts("forget", "train", 400)[200:]
    target = baseline_loss_of(robust_models["full"], held, eval_max_tokens=2048)
    start = baseline_loss_of(robust_models["filtered"], held, eval_max_tokens=2048)
    assert start > target + 0.05  # filtering removed something the attack has to win back
    result = finetune_attack(robust_models["filtered"], train, held, target, lrs=(3e-3, 1e-2), max_tokens=24_000,
                             batch_size=8, eval_max_tokens=2048, progress=False)
    assert result["reached"] and result["recovery_tokens"] > 0
    assert result["curve"][0][1] == pytest.approx(start)
    assert result["curve"][-1][1] <= target
    assert result["lr"] in (3e-3, 1e-2) and len(result["sweep"]) == 2
    assert result["recovery_fraction"] == pytest.approx(result["recovery_tokens"] / (80 * 8 * 64))
    # the reported lr is the fastest one
    reached = [r["recovery_tokens"] for r in result["sweep"] if r["recovery_tokens"] is not None]
    assert result["recovery_tokens"] == min(reached)


def test_cli_attack_json_and_bad_input(robust_models, tmp_path, capsys):
    data = tmp_path / "forget.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in demo_texts("forget", "train", 40)))
    rc = main(["attack", "finetune", "--model", str(robust_models["filtered"]), "--data", str(data),
               "--eval", "demo:forget:valid", "--lrs", "3e-3", "--tokens", "2048", "--baseline-loss", "0.5",
               "--eval-tokens", "1024", "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert {"recovery_tokens", "recovery_fraction", "curve", "lr"} <= set(out)
    assert out["recovery_tokens"] is None and out["reached"] is False  # 0.5 nats is out of reach
    assert out["curve"][-1][0] >= 2048
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    rc = main(["attack", "finetune", "--model", str(robust_models["filtered"]), "--data", str(empty),
               "--eval", "demo:forget:valid", "--baseline-loss", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no text" in err
    rc = main(["attack", "finetune", "--model", str(robust_models["filtered"]), "--data", str(data),
               "--eval", str(data), "--lrs", "fast"])
    assert rc == 2
