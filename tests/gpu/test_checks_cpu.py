"""The GPU checks' own code, run on the CPU: every helper of tests/gpu/checks.py with device="cpu", the DDP probe
over gloo, and benchmarks/gpu_mfu.py --dry-run. So a GPU session finds these pieces working and only the CUDA side
is new (the CUDA tests are in test_cuda_path.py, marked `gpu`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tokfilter.testing import build_shards
from tokfilter.train.loop import train

from .checks import (
    bilm_docs,
    bilm_scores,
    checkpoint_roundtrip,
    gpt_train_losses,
    loss_curve,
    record,
    score_differences,
    small_gpt_config,
    tail_mean,
    tiny_train_config,
    write_toml,
)

REPO = Path(__file__).resolve().parents[2]


def test_bilm_scores_on_cpu_are_probabilities_and_repeatable():
    docs = bilm_docs("tiny")
    a, b = bilm_scores("tiny", "cpu", docs), bilm_scores("tiny", "cpu", docs)
    assert [len(s) for s in a] == [len(d) for d in docs]
    diff = score_differences(a, b, margin=0.02)
    assert diff["max_abs_diff"] == 0.0 and diff["decision_flips_outside_margin"] == 0
    assert all(((s >= 0) & (s <= 1)).all() for s in a)


def test_score_differences_counts_only_clear_flips():
    a = [np.array([0.1, 0.49, 0.9], dtype=np.float32)]
    b = [np.array([0.1, 0.51, 0.3], dtype=np.float32)]
    diff = score_differences(a, b, margin=0.02)
    assert diff["decision_flips_outside_margin"] == 1  # 0.9 -> 0.3; 0.49 -> 0.51 lies inside the margin
    assert diff["max_abs_diff"] == pytest.approx(0.6)
    with pytest.raises(ValueError):
        score_differences(a, [np.zeros(2)])


def test_train_steps_on_cpu_are_finite_and_deterministic():
    cfg = small_gpt_config(vocab_size=256, seq_len=32)
    a = gpt_train_losses("cpu", steps=3, cfg=cfg)
    b = gpt_train_losses("cpu", steps=3, cfg=cfg)
    assert len(a) == 3 and all(math.isfinite(v) for v in a)
    assert a == b
    assert a[-1] < a[0]


def test_checkpoint_round_trip_on_cpu(tmp_path):
    result = checkpoint_roundtrip("cpu", tmp_path / "ckpt")
    assert result == {"device": "cpu", "weights_equal": True, "fp32_logits_equal": True}


def test_tiny_config_curve_and_record(tmp_path, monkeypatch):
    shards = build_shards(tmp_path / "shards", n_docs=30, shard_tokens=20_000)
    cfg = tiny_train_config(shards.dir, "cpu", steps=6)
    assert cfg.run.device == "cpu" and cfg.filter.mode == "mask" and cfg.budget.tokens == 6 * 8 * 64
    write_toml(cfg, tmp_path / "run.toml")
    assert "[model]" in (tmp_path / "run.toml").read_text()
    summary = train(cfg, tmp_path / "run")
    curve = loss_curve(tmp_path / "run")
    assert summary["steps"] == len(curve) == 6
    assert tail_mean(curve, 3) == pytest.approx(sum(curve[-3:]) / 3)
    assert math.isnan(tail_mean([]))
    monkeypatch.delenv("TOKFILTER_GPU_OUT", raising=False)
    assert record("x", {"a": 1}) is None
    monkeypatch.setenv("TOKFILTER_GPU_OUT", str(tmp_path / "out"))
    record("x", {"a": 1})
    path = record("y", {"b": [1.5]})
    assert json.loads(path.read_text()) == {"x": {"a": 1}, "y": {"b": [1.5]}}


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=240)


def test_ddp_probe_runs_over_gloo_on_cpu():
    proc = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                 "--master_port", str(29700 + os.getpid() % 1000), str(REPO / "tests" / "gpu" / "ddp_probe.py"),
                 "--backend", "gloo", "--device", "cpu", "--steps", "2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == "gloo" and result["world_size"] == 1 and result["all_reduce"] == 1.0
    assert result["plain"] == pytest.approx(result["ddp"], abs=1e-5)


def test_gpu_mfu_dry_run_prints_the_json_shape(tmp_path):
    out = tmp_path / "mfu.json"
    proc = _run([sys.executable, str(REPO / "benchmarks" / "gpu_mfu.py"), "--dry-run", "--json-out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == json.loads(out.read_text())
    assert result["benchmark"] == "gpu_mfu" and result["dry_run"] is True
    assert isinstance(result["ratio"], float) and result["ratio"] > 0
    for key in ("peak_tflops", "train", "scoring", "encoder", "device"):
        assert key in result
    assert set(result["train"]) == {"61m", "224m"}
    for entry in result["train"].values():
        assert {"params", "flops_per_token", "tokens_per_s", "mfu", "step_ms"} <= set(entry)
    assert set(result["scoring"]) == {"demo", "2x61m"}
    for entry in result["scoring"].values():
        assert {"tokens_per_s", "gpu_hours_per_100b_tokens", "params"} <= set(entry)


def test_gpu_mfu_without_cuda_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the no-GPU message is not shown")
    proc = _run([sys.executable, str(REPO / "benchmarks" / "gpu_mfu.py")])
    assert proc.returncode == 2
    assert "needs a CUDA GPU" in proc.stderr and "--dry-run" in proc.stderr
