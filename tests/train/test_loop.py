"""The training loop end to end: golden loss curve, kill-and-resume, 2-process DDP, the filtering effect."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tokfilter.tokenizer import load_tokenizer, train_tokenizer
from tokfilter.train import TrainConfig, load_config, load_model, train
from tokfilter.train.loop import lr_factor

from .conftest import _read, _splice, write_labelled_shards

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[2]


def tiny_config(train_dir, eval_dir=None, **sets) -> TrainConfig:
    overrides = [f"data.shards={str(train_dir)!r}", "model.preset=''", "model.n_layer=2", "model.d_model=64",
                 "model.n_head=2", "model.seq_len=64", "model.mup_base_width=64", "data.batch_size=8",
                 "filter.scores='truth'", "optim.lr=0.006", "run.progress=false", "run.threads=1",
                 "run.log_every=1", "eval.max_tokens=8192", "eval.batch_size=32"]
    if eval_dir is not None:
        overrides.append(f"eval.shards={str(eval_dir)!r}")
    overrides += [f"{k.replace('__', '.')}={json.dumps(v) if isinstance(v, str) else v}" for k, v in sets.items()]
    return load_config(None, overrides)


def losses(run_dir: Path) -> list[tuple[int, float]]:
    lines = [json.loads(ln) for ln in (run_dir / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in lines if "loss" in r]


def test_lr_schedule():
    assert lr_factor(0.0, 0.1, 0.1) == 0.0
    assert lr_factor(0.05, 0.1, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1, 0.1) == pytest.approx(0.55)
    assert lr_factor(1.0, 0.1, 0.1) == pytest.approx(0.1)


# ----- golden curve: pinned documents + tokenizer stored under tests/train/golden -----


def _golden_shards(tmp_path: Path):
    docs = [json.loads(ln) for ln in gzip.open(GOLDEN / "docs.jsonl.gz", "rt", encoding="utf-8")]
    tokenizer = load_tokenizer(GOLDEN / "tokenizer.json")
    return write_labelled_shards([(d["id"], d["text"], d["domain"], d["spans"]) for d in docs], tokenizer,
                                 tmp_path / "golden-shards")


def make_golden_inputs() -> None:
    """Regenerate the pinned inputs (run by hand: python -c 'from tests.train.test_loop import *; ...')."""
    rng = random.Random(0)
    records = {d: [r for r in _read(d) if r["split"] == "train"][:40] for d in ("forget", "retain", "general")}
    donors = [r["text"] for r in records["forget"]]
    docs = []
    for domain, recs in records.items():
        for r in recs:
            text, spans = (r["text"], [(0, len(r["text"]))]) if domain == "forget" else _splice(r["text"], donors,
                                                                                               rng)
            docs.append({"id": r["id"], "text": text, "domain": domain, "spans": spans})
    rng.shuffle(docs)
    GOLDEN.mkdir(exist_ok=True)
    with gzip.open(GOLDEN / "docs.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(d) + "\n" for d in docs)
    train_tokenizer([d["text"] for d in docs], 512, GOLDEN / "tokenizer.json")


def test_golden_loss_curve(tmp_path):
    """A fixed tiny config (remove filtering, so the filter path is pinned too) on pinned data reproduces the
    stored loss curve. Regenerate with TOKFILTER_REGENERATE_GOLDEN=1 after an intended numerical change."""
    shards = _golden_shards(tmp_path)
    cfg = tiny_config(shards.dir, filter__mode="remove", budget__tokens=9000, run__seed=7)
    cfg.model.d_model = cfg.model.mup_base_width = 32
    summary = train(cfg, tmp_path / "run")
    curve = [loss for _, loss in losses(tmp_path / "run")]
    golden_path = GOLDEN / "loss_curve.json"
    if os.environ.get("TOKFILTER_REGENERATE_GOLDEN"):
        config = {k: v for k, v in cfg.to_dict().items() if k != "data"}
        golden_path.write_text(json.dumps({"config": config, "losses": curve}, indent=1) + "\n")
    golden = json.loads(golden_path.read_text())["losses"]
    assert summary["steps"] == len(curve) == len(golden)
    assert curve[-1] < curve[0] - 0.5  # it learns
    assert curve == pytest.approx(golden, abs=2e-3)


# ----- resume -----


def _write_toml(cfg: TrainConfig, path: Path) -> Path:
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_kill_and_resume_continues_the_identical_loss_sequence(spliced_shards, tmp_path):
    train_set, _ = spliced_shards
    cfg = tiny_config(train_set.dir, filter__mode="mask", budget__tokens=12000,
                      run__save_every=5, data__sampling="sequential")
    reference = tmp_path / "reference"
    train(cfg, reference)
    toml = _write_toml(cfg, tmp_path / "run.toml")
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "tokfilter.train", "--config", str(toml), "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    deadline = time.time() + 120
    state = run / "checkpoint" / "train_state.json"
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["step"] >= 10:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert 10 <= killed_at < len(losses(reference))
    resumed = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert losses(run) == losses(reference)  # bit-identical, every step, including those after the kill
    model, tokenizer = load_model(run)
    assert tokenizer is not None and model.config.d_model == 64


# ----- distributed -----


def test_two_process_ddp_matches_single_process(spliced_shards, tmp_path):
    train_set, _ = spliced_shards
    cfg = tiny_config(train_set.dir, filter__mode="remove", budget__tokens=3000)
    single = tmp_path / "single"
    train(cfg, single)
    toml = _write_toml(cfg, tmp_path / "run.toml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(29500 + os.getpid() % 1000), "-m", "tokfilter.train",
                           "--config", str(toml), "--out", str(tmp_path / "ddp")],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2
    a, b = losses(single), losses(tmp_path / "ddp")
    assert [s for s, _ in a] == [s for s, _ in b]
    assert [loss for _, loss in b] == pytest.approx([loss for _, loss in a], abs=1e-4)


# ----- the effect the method exists for -----
# Compared at equal compute (budget.unit = "train": every run reads the same tokens), as in DESIGN.md's calibration.
# At the paper's equal *effective* tokens a masked run of this tiny size takes ~1.6x more steps, which at these
# budgets lowers every loss (retain too) and hides the selective effect; the paper's models are compute-optimal.


def _effect(spliced_shards, tmp_path, tokens: int) -> dict:
    train_set, valid_set = spliced_shards
    out = {}
    for mode in ("none", "mask", "remove"):
        cfg = tiny_config(train_set.dir, valid_set.dir, filter__mode=mode, budget__tokens=tokens,
                          budget__unit="train", data__batch_size=16, run__log_every=50)
        out[mode] = train(cfg, tmp_path / mode)
    return out


def _check_effect(runs: dict, margin: float) -> None:
    none = runs["none"]["loss_own"]
    for mode in ("mask", "remove"):
        own = runs[mode]["loss_own"]
        forget_gain = own["forget"] - none["forget"]
        retain_change = abs(own["retain"] - none["retain"])
        assert forget_gain > margin, (mode, own, none)
        assert retain_change < forget_gain / 3, (mode, own, none)
        assert runs[mode]["train_tokens"] == runs["none"]["train_tokens"]
        assert runs[mode]["effective_tokens"] < 0.8 * runs["none"]["effective_tokens"]
        assert 0.2 < runs[mode]["tokens_filtered_frac"] < 0.6


def test_mask_and_remove_raise_forget_loss_but_not_retain(spliced_shards, tmp_path):
    """Measured (2 cores, 80k tokens, d=64 x 2 layers, 1024 BPE): own-domain loss none forget 5.48 / retain 5.45,
    mask 5.75 / 5.51."""
    _check_effect(_effect(spliced_shards, tmp_path, tokens=80_000), margin=0.15)


@pytest.mark.slow
def test_effect_with_a_larger_budget(spliced_shards, tmp_path):
    runs = _effect(spliced_shards, tmp_path, tokens=300_000)
    print(json.dumps({m: r["loss_own"] for m, r in runs.items()}))
    _check_effect(runs, margin=0.3)


def test_delayed_document_filtering_and_noise_run(tmp_path):
    """Document mode with a delayed start: unfiltered steps first, then only kept documents; label noise on."""
    shards = _golden_shards(tmp_path)
    cfg = tiny_config(shards.dir, filter__mode="document", filter__doc_aggregate="frac", filter__doc_threshold=0.5,
                      filter__delay=0.5, filter__noise=0.05, data__sampling="sequential", budget__tokens=4096)
    cfg.model.d_model = cfg.model.mup_base_width = 32
    summary = train(cfg, tmp_path / "run")
    records = [json.loads(ln) for ln in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    flags = [r["filtered"] for r in records if "loss" in r]
    assert flags == sorted(flags) and flags[0] is False and flags[-1] is True
    steps = [r for r in records if "loss" in r]
    switch = flags.index(True)
    before = steps[switch - 1]["effective_tokens"] - 512  # effective tokens when each step started (512 per step)
    at = steps[switch]["effective_tokens"] - 512
    assert before < 0.5 * 4096 <= at  # filtering starts exactly once half the budget is spent
    assert summary["effective_tokens"] == summary["train_tokens"]  # document mode masks no targets
    assert 0.2 < summary["tokens_filtered_frac"] < 0.8
