"""The CUDA path, measured on a real GPU: scorer parity, compiled bf16 steps, checkpoints, DDP/NCCL, loss parity.

Every test here is marked `gpu` and skips with its reason on a machine without CUDA (tests/conftest.py). Run them
with `pytest -m gpu tests/gpu -rs` (scripts/gpu_check.sh does, on the GPU machine). The measuring code lives in
tests/gpu/checks.py and runs on the CPU in the ordinary suite too (tests/gpu/test_checks_cpu.py). With
TOKFILTER_GPU_OUT set, each test adds what it measured to $TOKFILTER_GPU_OUT/gpu_tests.json.

Tolerances (docs/gpu.md "Measuring the GPU path" says why):
  (a) scores CPU fp32 vs CUDA bf16 autocast: max |diff| <= 2e-2 in probability, no decision flip at 0.5 for a token
      farther than that from 0.5;
  (b) train_step, bf16 autocast, torch.compile vs eager: every step's loss finite and within 1e-2 nats;
  (c) checkpoint save/load on the GPU: weights and logits bitwise identical;
  (d) torchrun --nproc_per_node 1 -m tokfilter.train on CUDA vs train() in-process: every step within 1e-3; DDP
      over an NCCL process group vs the bare model: every step within 1e-3;
  (e) 200 steps CPU fp32 vs CUDA bf16: mean loss of the last 20 steps within 0.05 nats.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

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
    tail_mean,
    tiny_train_config,
    write_toml,
)

pytestmark = pytest.mark.gpu

REPO = Path(__file__).resolve().parents[2]
SCORE_TOL = 2e-2
COMPILE_TOL = 1e-2
DDP_TOL = 1e-3
PARITY_STEPS = 200
PARITY_TOL = 0.05


@pytest.fixture(scope="module")
def gpu_shards(tmp_path_factory):
    """Small real shards (demo corpus, default 4,096-token BPE) with an exact `truth` forget score."""
    return build_shards(tmp_path_factory.mktemp("gpu-shards"), n_docs=150, shard_tokens=40_000)


@pytest.mark.parametrize("shape", ["tiny", "demo"])
def test_bilm_scores_match_cpu_within_bf16_precision(shape):
    docs = bilm_docs(shape)
    cpu = bilm_scores(shape, "cpu", docs)
    cuda = bilm_scores(shape, "cuda", docs)
    diff = score_differences(cpu, cuda, margin=SCORE_TOL)
    record(f"bilm_parity_{shape}", {**diff, "tolerance": SCORE_TOL})
    assert diff["tokens"] == sum(len(d) for d in docs) > 0
    assert diff["max_abs_diff"] <= SCORE_TOL, diff
    assert diff["decision_flips_outside_margin"] == 0, diff
    again = bilm_scores(shape, "cuda", docs)  # fixed-size batches: the same bytes on a second call
    assert all((a == b).all() for a, b in zip(cuda, again, strict=True))


def test_compiled_bf16_train_steps_match_eager():
    import torch

    eager = gpt_train_losses("cuda", steps=5, compile=False, autocast=torch.bfloat16)
    compiled = gpt_train_losses("cuda", steps=5, compile=True, autocast=torch.bfloat16)
    fp32 = gpt_train_losses("cuda", steps=5, compile=False, autocast=None)
    diffs = [abs(a - b) for a, b in zip(eager, compiled, strict=True)]
    record("compile_vs_eager_bf16", {"eager": eager, "compiled": compiled, "fp32_eager": fp32,
                                     "max_abs_diff": max(diffs), "tolerance": COMPILE_TOL})
    assert all(math.isfinite(v) for v in eager + compiled + fp32)
    assert compiled[-1] < compiled[0]  # it learns (the batches repeat a shifted copy of the input)
    assert max(diffs) <= COMPILE_TOL, (eager, compiled)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_checkpoint_round_trip_on_gpu_gives_identical_logits(tmp_path, compile):
    result = checkpoint_roundtrip("cuda", tmp_path / "ckpt", compile=compile)
    record(f"checkpoint_roundtrip_{'compiled' if compile else 'eager'}", result)
    assert result["device"].startswith("cuda")
    assert result["weights_equal"] and result["fp32_logits_equal"] and result["autocast_logits_equal"], result


def _torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                           "--master_port", str(29600 + os.getpid() % 1000), *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=240)


def test_torchrun_one_process_on_cuda_matches_a_plain_run(gpu_shards, tmp_path):
    cfg = tiny_train_config(gpu_shards.dir, "cuda", steps=30)
    toml = write_toml(cfg, tmp_path / "run.toml")
    proc = _torchrun(["-m", "tokfilter.train", "--config", str(toml), "--set", "run.device=cuda",
                      "--out", str(tmp_path / "torchrun")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    train(cfg, tmp_path / "single")
    a, b = loss_curve(tmp_path / "single"), loss_curve(tmp_path / "torchrun")
    diffs = [abs(x - y) for x, y in zip(a, b, strict=True)]
    record("torchrun_1proc_vs_plain", {"plain": a, "torchrun": b, "max_abs_diff": max(diffs),
                                       "tolerance": DDP_TOL, "world_size": summary["world_size"]})
    assert summary["world_size"] == 1 and summary["steps"] == len(a) == 30
    assert max(diffs) <= DDP_TOL


def test_ddp_over_nccl_matches_the_bare_model(tmp_path):
    proc = _torchrun([str(REPO / "tests" / "gpu" / "ddp_probe.py"), "--backend", "nccl", "--device", "cuda"],
                     tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    diffs = [abs(x - y) for x, y in zip(result["plain"], result["ddp"], strict=True)]
    record("ddp_nccl_vs_plain", {**result, "max_abs_diff": max(diffs), "tolerance": DDP_TOL})
    assert result["backend"] == "nccl" and result["world_size"] == 1 and result["all_reduce"] == 1.0
    assert all(math.isfinite(v) for v in result["ddp"])
    assert max(diffs) <= DDP_TOL, result


def test_cpu_fp32_and_cuda_bf16_loss_curves_agree(gpu_shards, tmp_path):
    curves = {}
    for device in ("cpu", "cuda"):
        train(tiny_train_config(gpu_shards.dir, device, steps=PARITY_STEPS), tmp_path / device)
        curves[device] = loss_curve(tmp_path / device)
    tails = {d: tail_mean(c) for d, c in curves.items()}
    record("loss_parity_cpu_fp32_vs_cuda_bf16", {"steps": PARITY_STEPS, "tail_mean_last_20": tails,
                                                  "tolerance": PARITY_TOL, "curves": curves})
    assert len(curves["cpu"]) == len(curves["cuda"]) == PARITY_STEPS
    assert all(math.isfinite(v) for c in curves.values() for v in c)
    assert curves["cuda"][-1] < curves["cuda"][0] - 1.0  # it learns
    assert abs(tails["cpu"] - tails["cuda"]) <= PARITY_TOL, tails
