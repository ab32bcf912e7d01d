"""Fault injection: SIGKILL the real CLI at seeded random moments, rerun it, and compare with an uninterrupted run.

For each of `tokenize`, `annotate` and `train`: one uninterrupted reference run, then TRIALS trials, each killing a
fresh run (its whole process group) as soon as a seeded random amount of work is on disk (tokenize: k finished
shards, annotate: k score files, train: k logged steps), so every kill lands mid-job whatever the machine's speed
or load (a wall-clock delay did not: once tokenize got fast, most of its 0.7 s was interpreter start-up), at
whatever point of the next shard or step the 10 ms poll happens to catch, then rerunning the same command to
completion. Outputs must match the reference:
  tokenize  every file byte for byte, the manifest minus its timing field ("seconds"); no temporaries left;
  annotate  every score file byte for byte (markers minus timing fields);
  train     the per-step losses in log.jsonl equal the uninterrupted run's, step for step, and the final weights
            are byte-identical.
Inputs are small (a few seconds per run) so the file takes a few minutes on 2 busy cores; kills that land after a
run finished are counted, and each test asserts that most kills interrupted real work. Marked slow.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TRIALS = 10
SEED = 1234


def _env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONHASHSEED="0")
    return env


def _cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tokfilter.cli", *args]


def run_to_end(args: list[str]) -> None:
    proc = subprocess.run(_cmd(args), env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def run_and_kill_when(args: list[str], ready, timeout: float = 300.0) -> bool:
    """Start the command, SIGKILL its process group as soon as `ready()` is true; True if it was still running."""
    proc = subprocess.Popen(_cmd(args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    proc.wait()
    return False


def _count(directory: Path, pattern: str) -> int:
    return len(list(directory.glob(pattern))) if directory.is_dir() else 0


def files(directory: Path, drop_timing: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Relative path -> contents; JSON files listed in drop_timing lose their timing keys."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        rel = str(path.relative_to(directory))
        data = path.read_bytes()
        if path.name in drop_timing or any(path.name.endswith(s) for s in drop_timing):
            obj = json.loads(data)
            for key in ("seconds", "cpu_seconds", "wall_seconds", "started", "finished"):
                obj.pop(key, None)
            data = json.dumps(obj, sort_keys=True).encode()
        out[rel] = data
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from tokfilter.corpus.demo import load_demo

    path = tmp_path_factory.mktemp("fi") / "corpus.jsonl"
    docs = load_demo("train")[::6][:400]
    path.write_text("".join(json.dumps({"id": d.id, "text": d.text, "domain": d.domain}) + "\n" for d in docs))
    return path


@pytest.fixture(scope="module")
def reference_shards(tmp_path_factory, corpus) -> tuple[Path, list[str]]:
    from tokfilter.tokenizer.core import default_tokenizer_spec

    out = tmp_path_factory.mktemp("fi-ref") / "shards"
    args = [str(corpus), "--tokenizer", default_tokenizer_spec(), "--workers", "1", "--shard-tokens", "8000",
            "--quiet"]
    run_to_end(["tokenize", *args, "--out", str(out)])
    return out, args


def test_tokenize_survives_sigkill(reference_shards, tmp_path):
    ref, args = reference_shards
    expected = files(ref, ("manifest.json",))
    n_shards = len([n for n in expected if n.endswith(".tokens.npy")])
    assert n_shards >= 5, "want several shards to kill between"
    rng = random.Random(SEED)
    interrupted = midway = 0
    for trial in range(TRIALS):
        out = tmp_path / f"t{trial}"
        kill_at = rng.randint(1, n_shards - 2)
        interrupted += run_and_kill_when(["tokenize", *args, "--out", str(out)],
                                         lambda out=out, k=kill_at: _count(out, "*.tokens.npy") >= k)
        midway += out.is_dir() and any(out.glob("*.tokens.npy")) and not (out / "manifest.json").exists()
        run_to_end(["tokenize", *args, "--out", str(out)])
        assert files(out, ("manifest.json",)) == expected, f"trial {trial}: output differs from the reference"
    print(f"tokenize: {TRIALS}/{TRIALS} identical; {interrupted} kills hit a running job, {midway} between shards")
    assert interrupted >= TRIALS // 2
    assert midway >= TRIALS // 2


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    import torch

    from tokfilter.classify.bilm import BiLM, BiLMConfig
    from tokfilter.classify.interface import save_classifier
    from tokfilter.tokenizer import load_tokenizer
    from tokfilter.tokenizer.core import default_tokenizer_spec

    tok = load_tokenizer(default_tokenizer_spec())
    torch.manual_seed(0)
    cfg = BiLMConfig(vocab_size=tok.vocab_size, d_model=32, n_layer=1, n_head=2, seq_len=64)
    return save_classifier(tmp_path_factory.mktemp("fi-clf") / "clf", "bilm", tok, BiLM(cfg).state_dict(),
                           {"bilm": cfg.to_dict()}, 0.5)


@pytest.fixture(scope="module")
def reference_scores(tmp_path_factory, reference_shards, classifier) -> Path:
    import shutil

    out = tmp_path_factory.mktemp("fi-ann") / "shards"
    shutil.copytree(reference_shards[0], out)
    run_to_end(["annotate", "--classifier", str(classifier), "--shards", str(out), "--workers", "1", "--threads", "1",
                "--batch-tokens", "2048", "--quiet"])
    return out


def test_annotate_survives_sigkill(reference_shards, reference_scores, classifier, tmp_path):
    import shutil

    ref = reference_scores
    expected = {k: v for k, v in files(ref, (".done.json",)).items() if ".scores." in k}
    n_scored = len([k for k in expected if k.endswith(".forget.npy")])
    assert n_scored >= 5
    rng = random.Random(SEED + 1)
    interrupted = midway = 0
    for trial in range(TRIALS):
        out = tmp_path / f"t{trial}"
        shutil.copytree(reference_shards[0], out)
        args = ["annotate", "--classifier", str(classifier), "--shards", str(out), "--workers", "1", "--threads",
                "1", "--batch-tokens", "2048", "--quiet"]
        kill_at = rng.randint(1, n_scored - 2)
        interrupted += run_and_kill_when(args, lambda out=out, k=kill_at: _count(out, "*.scores.forget.npy") >= k)
        midway += 0 < _count(out, "*.scores.forget.npy") < n_scored
        run_to_end(args)
        got = {k: v for k, v in files(out, (".done.json",)).items() if ".scores." in k}
        assert got == expected, f"trial {trial}: scores differ from the reference"
        assert not list(out.glob(".tmp-*"))
    print(f"annotate: {TRIALS}/{TRIALS} identical; {interrupted} kills hit a running job, {midway} between shards")
    assert interrupted >= TRIALS // 2
    assert midway >= TRIALS // 2


TRAIN_SETTINGS = ["model.preset=tiny-0.1m", "model.seq_len=32", "data.batch_size=8", "budget.max_steps=30",
                  "budget.tokens=1000000", "run.save_every=3", "run.log_every=1", "run.threads=1",
                  "run.progress=false", "run.device=cpu", "filter.mode=mask", "filter.threshold=0.5"]


def _train_args(shards: Path, out: Path) -> list[str]:
    args = ["train", "--out", str(out), "--set", f"data.shards={shards}"]
    for setting in TRAIN_SETTINGS:
        args += ["--set", setting]
    return args


def losses(run: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def _logged_steps(run: Path) -> int:
    try:
        return (run / "log.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_train_survives_sigkill(reference_scores, tmp_path):
    shards = reference_scores
    ref = tmp_path / "ref"
    run_to_end(_train_args(shards, ref))
    expected = losses(ref)
    assert [s for s, _ in expected] == list(range(1, 31))
    weights = (ref / "checkpoint" / "model.safetensors").read_bytes()
    rng = random.Random(SEED + 2)
    interrupted = midway = 0
    for trial in range(TRIALS):
        out = tmp_path / f"t{trial}"
        kill_at = rng.randint(1, 29)  # a step: kills land mid-training whatever the machine's load
        interrupted += run_and_kill_when(_train_args(shards, out), lambda out=out, k=kill_at: _logged_steps(out) >= k)
        midway += (out / "checkpoint").is_dir() and not (out / "summary.json").exists()
        run_to_end(_train_args(shards, out))
        assert losses(out) == expected, f"trial {trial}: losses differ from the uninterrupted run"
        assert (out / "checkpoint" / "model.safetensors").read_bytes() == weights, f"trial {trial}: weights differ"
    print(f"train: {TRIALS}/{TRIALS} loss-identical; {interrupted} kills hit a running job, {midway} after a "
          "checkpoint")
    assert interrupted >= TRIALS // 2
