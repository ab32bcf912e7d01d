"""annotate: score layout, resumability (markers, SIGKILL + rerun), worker-count determinism, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tokfilter.annotate import annotate
from tokfilter.annotate.score import marker_path, sha256_file
from tokfilter.cli import main
from tokfilter.shards import ShardSet
from tokfilter.testing import LOADER, load_standin


def score_bytes(directory: Path, name: str = "forget") -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(directory).glob(f"*.scores.{name}.npy"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, source_shards, classifier_dir) -> dict[str, bytes]:
    """Score files of one uninterrupted in-process run (1 worker)."""
    target = tmp_path_factory.mktemp("ref") / "shards"
    shutil.copytree(source_shards, target)
    annotate(classifier_dir, target, loader=LOADER, progress=False)
    return score_bytes(target)


def test_scores_layout_and_values(fresh_shards, classifier_dir):
    summary = annotate(classifier_dir, fresh_shards, loader=LOADER, progress=False, thresholds=(0.5,))
    shards = ShardSet(fresh_shards)
    assert shards.num_shards >= 4 and shards.has_scores("forget")
    assert summary["scored_shards"] == shards.num_shards and summary["tokens"] == shards.num_tokens
    classifier = load_standin(classifier_dir)
    above = total = 0
    for s in range(shards.num_shards):
        tokens, scores = np.asarray(shards.tokens(s)), np.asarray(shards.scores(s, "forget"))
        assert scores.dtype == np.float16 and scores.shape == tokens.shape
        assert np.all(scores[tokens == shards.eot_id] == 0)
        assert 0.05 < float((scores[tokens != shards.eot_id] > 0.5).mean()) < 0.95  # not constant
        for a, b in shards.documents(s)[:3]:  # per-document scoring agrees with the classifier itself
            direct = classifier.score_tokens(tokens[a:b].astype(np.int64))
            np.testing.assert_allclose(scores[a:b].astype(np.float32), direct, atol=2e-3)
        marker = json.loads(marker_path(fresh_shards, s, "forget").read_text())
        assert marker["sha256"] == sha256_file(shards.score_path(s, "forget"))
        assert marker["tokens"] == len(tokens)
        content = scores[tokens != shards.eot_id].astype(np.float32)
        above += int((content >= 0.5).sum())
        total += len(content)
    assert summary["frac_above"]["0.5"] == pytest.approx(above / total)
    assert main(["shards", "verify", str(fresh_shards)]) == 0


def test_rerun_skips_finished_and_redoes_unfinished(fresh_shards, classifier_dir, reference):
    annotate(classifier_dir, fresh_shards, loader=LOADER, progress=False)
    again = annotate(classifier_dir, fresh_shards, loader=LOADER, progress=False)
    assert again["scored_shards"] == 0 and again["skipped_shards"] == again["num_shards"]
    # a missing marker, a corrupted score file and a leftover temporary: those two shards are redone
    marker_path(fresh_shards, 1, "forget").unlink()
    corrupt = ShardSet(fresh_shards).score_path(2, "forget")
    data = bytearray(corrupt.read_bytes())
    data[-1] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    (fresh_shards / ".tmp-00003.scores.forget.npy-xyz.npy").write_bytes(b"partial")
    third = annotate(classifier_dir, fresh_shards, loader=LOADER, progress=False)
    assert third["scored_shards"] == 2
    assert sorted(r["shard"] for r in third["per_shard"] if not r["skipped"]) == [1, 2]
    assert not list(fresh_shards.glob(".tmp-*"))
    assert score_bytes(fresh_shards) == reference


def test_worker_pool_gives_identical_bytes(fresh_shards, classifier_dir, reference):
    summary = annotate(classifier_dir, fresh_shards, loader=LOADER, progress=False, workers=2)
    assert summary["scored_shards"] == summary["num_shards"]
    assert score_bytes(fresh_shards) == reference


def test_sigkill_then_rerun_gives_identical_bytes(fresh_shards, classifier_dir, reference):
    cmd = [sys.executable, "-m", "tokfilter.cli", "annotate", "--classifier", str(classifier_dir), "--shards",
           str(fresh_shards), "--loader", LOADER, "--quiet"]
    env = {**os.environ, "STANDIN_DELAY": "0.4"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(fresh_shards.glob("*.done.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shards = ShardSet(fresh_shards)
    finished = list(fresh_shards.glob("*.scores.forget.done.json"))
    assert 1 <= len(finished) < shards.num_shards, "the kill should land mid-run"
    for s in range(shards.num_shards):  # whatever has a marker is complete and matches it
        if marker_path(fresh_shards, s, "forget").is_file():
            marker = json.loads(marker_path(fresh_shards, s, "forget").read_text())
            assert marker["sha256"] == sha256_file(shards.score_path(s, "forget"))
        elif shards.score_path(s, "forget").is_file():  # renamed into place but not marked: complete anyway
            assert np.load(shards.score_path(s, "forget")).shape == shards.tokens(s).shape
    rerun = subprocess.run(cmd[:-1] + ["--quiet"], capture_output=True, text=True, env=os.environ, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped_shards"] == len(finished)
    assert score_bytes(fresh_shards) == reference
    assert not list(fresh_shards.glob(".tmp-*"))


def _fails_with_one_line(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tokfilter: error:") and "\n" not in err
    return err


def test_bad_input_exits_2_and_writes_nothing(fresh_shards, classifier_dir, tmp_path, capsys, monkeypatch):
    base = ["annotate", "--classifier", str(classifier_dir), "--shards", str(fresh_shards), "--loader", LOADER,
            "--quiet"]
    before = sorted(p.name for p in fresh_shards.iterdir())

    other = tmp_path / "other-clf"
    shutil.copytree(classifier_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["tokenizer_hash"] = "0" * 64  # a classifier trained for another tokenizer
    (other / "config.json").write_text(json.dumps(config))
    err = _fails_with_one_line(["annotate", "--classifier", str(other), "--shards", str(fresh_shards), "--loader",
                                LOADER, "--quiet"], capsys)
    assert "another tokenizer" in err

    missing = fresh_shards / "00001.docs.npy"
    saved = missing.read_bytes()
    missing.unlink()
    assert "00001.docs.npy" in _fails_with_one_line(base, capsys)
    missing.write_bytes(saved)

    os.chmod(fresh_shards, 0o555)
    try:
        assert "read-only" in _fails_with_one_line(base, capsys)
    finally:
        os.chmod(fresh_shards, 0o755)

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.time()
    err = _fails_with_one_line(base + ["--executor", "ray", "--ray-address", f"127.0.0.1:{port}"], capsys)
    assert time.time() - t0 < 30 and ("does not answer" in err or "needs Ray" in err)
    monkeypatch.setattr("tokfilter.annotate.executors.RAY_CONNECT_TIMEOUT", 1.0)
    with socket.socket() as silent:  # accepts connections but never speaks: ray.init would wait for minutes
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        err = _fails_with_one_line(base + ["--executor", "ray", "--ray-address",
                                           f"127.0.0.1:{silent.getsockname()[1]}"], capsys)
    assert "Ray address" in err or "needs Ray" in err

    assert _fails_with_one_line(["annotate", "--classifier", str(tmp_path / "nope"), "--shards", str(fresh_shards)],
                                capsys)
    assert sorted(p.name for p in fresh_shards.iterdir()) == before


def test_real_bilm_classifier_through_the_cli(fresh_shards, bilm_classifier, tmp_path, capsys):
    """The real classifier (default loader): CLI run, then a 2-process run on a copy gives the same bytes."""
    copy = tmp_path / "copy"
    shutil.copytree(fresh_shards, copy)
    assert main(["annotate", "--classifier", str(bilm_classifier), "--shards", str(fresh_shards), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["classifier_kind"] == "bilm" and summary["scored_shards"] == summary["num_shards"]
    assert main(["annotate", "--classifier", str(bilm_classifier), "--shards", str(copy), "--workers", "2",
                 "--quiet"]) == 0
    assert score_bytes(copy) == score_bytes(fresh_shards)
    assert len(score_bytes(copy)) == ShardSet(copy).num_shards
