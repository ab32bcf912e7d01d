"""`tokfilter eval ...` and `tokfilter slowdown`: out-of-range options are one-line errors before any work."""

from __future__ import annotations

import pytest

from tokfilter.cli import main


@pytest.mark.parametrize("argv, message", [
    (["eval", "mcq", "--data", "{w}", "--batch-tokens", "0"], "--batch-tokens must be >= 1, not 0"),
    (["eval", "loss", "--data", "{w}", "--threshold", "9"], "--threshold must be in [0, 1], not 9.0"),
    (["eval", "loss", "--data", "{w}", "--threshold", "-1"], "--threshold must be in [0, 1], not -1.0"),
    (["eval", "probes", "build", "--out", "{w}/pb", "-n", "-5"], "-n must be >= 1, not -5"),
    (["slowdown", "--runs", "{w}", "--samples", "0"], "--samples must be >= 1, not 0"),
    (["slowdown", "--runs", "{w}", "--samples", "-1"], "--samples must be >= 1, not -1"),
])
def test_out_of_range_options_exit_2(tmp_path, capsys, argv, message):
    argv = [a.format(w=tmp_path) for a in argv]
    if argv[0] == "eval" and argv[1] != "probes":
        argv += ["--model", str(tmp_path / "no-model"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "pb").exists()
