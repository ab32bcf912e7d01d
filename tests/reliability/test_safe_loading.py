"""Safe loading: no code runs by loading a file, and the judge's API key never reaches an output.

- The package source never calls `torch.load` without weights_only=True, `pickle.load(s)`, `eval`/`exec`, or numpy
  loads with allow_pickle=True (a grep over src/tokfilter).
- Pickles planted where weights or arrays belong (a checkpoint's model.pt / pytorch_model.bin, a shard's .npy object
  array, a Hugging Face encoder's pytorch_model.bin) are refused, and the code inside them never runs: each pickle,
  when unpickled, would create a marker file, and the tests check that the marker never appears.
- A fake API key planted in the environment, `tokfilter generate --judge-url ...` run with a fake local transport
  (no network), once answering and once failing with the key in its error text: the key is in no output file, no
  stdout/stderr line and no log record.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tokfilter"
FAKE_KEY = "sk-reliability-PLANTED-0123456789abcdef"


def source_lines():
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.strip():
                yield f"{path.relative_to(SRC)}:{number}", code


UNSAFE_PATTERNS = [  # (what, regex) over code with comments stripped
    ("torch.load without weights_only=True", r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
    ("pickle-family load", r"\b(c?pickle|joblib|dill|cloudpickle)\.loads?\("),
    ("pickle-family import", r"\bimport (c?pickle|dill)\b"),
    ("eval / exec", r"(?<![\w.])(eval|exec)\("),
    ("numpy allow_pickle=True", r"allow_pickle\s*=\s*True"),
    ("yaml load", r"yaml\.(unsafe_)?load\("),
]


def unsafe_calls(code: str) -> list[str]:
    """The names of the unsafe patterns that `code` (one line, comment stripped) matches."""
    return [what for what, pattern in UNSAFE_PATTERNS if re.search(pattern, code)]


def test_source_has_no_unsafe_loading_calls():
    lines = list(source_lines())
    assert len(lines) > 1000, "the scanner read (almost) no source"
    bad = [(where, code.strip(), unsafe_calls(code)) for where, code in lines if unsafe_calls(code)]
    assert not bad, f"unsafe loading calls: {bad}"


def test_grep_would_catch_unsafe_calls():
    """The scanner's own patterns match the calls they forbid (a grep that cannot fail proves nothing), and leave
    the safe forms alone."""
    unsafe_torch_load = "x = torch." + "load(path)"  # split so repository greps for the call do not flag this test
    unsafe = {unsafe_torch_load: "torch.load without weights_only=True", "pickle." + "loads(blob)": "pickle-family load",
              "import " + "pickle": "pickle-family import", "ev" + "al(text)": "eval / exec",
              "ex" + "ec(code)": "eval / exec", "np.load(p, allow_" + "pickle=True)": "numpy allow_pickle=True",
              "yaml." + "load(f)": "yaml load"}
    for sample, what in unsafe.items():
        assert what in unsafe_calls(sample), sample
    assert {what for what, _ in UNSAFE_PATTERNS} == set(unsafe.values()), "every pattern has a sample it must catch"
    safe = ["model.eval()", "torch." + "load(path, weights_only=True)", "np.load(p)", "json.loads(text)",
            "executor.submit(x)"]
    for sample in safe:
        assert unsafe_calls(sample) == [], sample


class _Planted:
    """Unpickling this creates `marker` (stands in for arbitrary code in a stranger's pickle)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _cli(argv, capsys) -> tuple[int, str]:
    from tokfilter.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin"])
def test_pickled_checkpoint_is_refused_without_running_it(env, tmp_path, capsys, name):
    import shutil

    marker = tmp_path / "PWNED"
    ckpt = tmp_path / "ckpt"
    shutil.copytree(env["ckpt"], ckpt)
    (ckpt / "model.safetensors").unlink()
    (ckpt / name).write_bytes(pickle.dumps({"wte.weight": _Planted(marker)}))
    for argv in (["eval", "loss", "--model", str(ckpt), "--data", env["shards"], "--no-progress"],
                 ["attack", "finetune", "--model", str(ckpt), "--data", env["corpus"], "--eval", env["corpus"],
                  "--no-progress"]):
        code, err = _cli(argv, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert not marker.exists(), "the pickle was executed"


def test_pickled_classifier_is_refused_without_running_it(env, tmp_path, capsys):
    import shutil

    marker = tmp_path / "PWNED"
    clf, shards = tmp_path / "clf", tmp_path / "shards"
    shutil.copytree(env["clf"], clf)
    shutil.copytree(env["shards"], shards)
    (clf / "model.safetensors").unlink()
    (clf / "pytorch_model.bin").write_bytes(pickle.dumps(_Planted(marker)))
    code, err = _cli(["annotate", "--classifier", str(clf), "--shards", str(shards), "--quiet"], capsys)
    assert code == 2 and not marker.exists()
    assert not list(shards.glob("*.scores.*"))


def test_object_array_in_shards_is_refused_without_running_it(env, tmp_path, capsys):
    import shutil

    marker = tmp_path / "PWNED"
    shards = tmp_path / "shards"
    shutil.copytree(env["shards"], shards)
    np.save(shards / "00000.docs.npy", np.array([_Planted(marker)], dtype=object), allow_pickle=True)
    for argv in (["shards", "verify", str(shards)], ["shards", "verify", str(shards), "--no-hashes"],
                 ["export", "dolma", "--shards", str(shards), "--out", str(tmp_path / "o.jsonl"), "--quiet"]):
        code, err = _cli(argv, capsys)
        assert code == 2, err
        assert not marker.exists(), "the pickle was executed"


def test_hf_encoder_with_pickled_weights_does_not_run_them(tmp_path):
    """An encoder directory whose weights are a pickle: loading fails and the pickle's code never runs."""
    pytest.importorskip("transformers")
    from tokfilter.classify.encoder import _load_hf

    marker = tmp_path / "PWNED"
    model = tmp_path / "encoder"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "model_type": "bert", "vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 32}))
    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"bert.embeddings.word_embeddings.weight":
                                                            _Planted(marker)}))
    with pytest.raises(Exception):  # noqa: B017 (any refusal will do; what matters is the marker)
        _load_hf(model)
    assert not marker.exists(), "transformers unpickled the weights with code execution"


def _all_text(root: Path) -> str:
    chunks = []
    for path in root.rglob("*"):
        if path.is_file():
            chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


@pytest.mark.parametrize("failing", [False, True], ids=["answers", "fails-with-key-in-error"])
def test_planted_api_key_never_reaches_an_output(env, tmp_path, capsys, caplog, monkeypatch, failing):
    import urllib.error

    from tokfilter.cli import main
    from tokfilter.posthoc import judge

    monkeypatch.setenv("TOKFILTER_JUDGE_API_KEY", FAKE_KEY)
    requests = []

    def transport(url, headers, body, timeout):
        requests.append((url, headers))
        if failing:
            raise urllib.error.URLError(f"proxy refused Authorization: Bearer {FAKE_KEY}")
        text = body.decode()
        content = "REFUSAL" if "REFUSAL or ANSWER" in text else '{"correct": 3, "relevant": 4, "coherent": 5}'
        return json.dumps({"choices": [{"message": {"content": content}}]}).encode()

    monkeypatch.setattr(judge, "_urllib_transport", transport)
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": f"What causes fever {i}?", "answer": "An infection."}) + "\n"
                          for i in range(2)))
    out = tmp_path / "out"
    out.mkdir()
    code = main(["generate", "--model", env["ckpt"], "--qa", str(qa), "--n", "2", "--max-new-tokens", "4",
                 "--judge-url", "http://judge.invalid/v1", "--json-out", str(out / "generate.json"),
                 "--no-progress", "--threads", "1"])
    captured = capsys.readouterr()
    assert requests, "the judge was never called: the test exercised nothing"
    assert all(h["Authorization"] == f"Bearer {FAKE_KEY}" for _, h in requests)
    if failing:
        assert code == 2 and len(captured.err.strip().splitlines()) == 1, captured.err
    else:
        assert code == 0, captured.err
        assert (out / "generate.json").is_file()
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for where, text in (("stdout", captured.out), ("stderr", captured.err), ("logs", logs),
                        ("files", _all_text(tmp_path))):
        assert FAKE_KEY not in text, f"the API key leaked into {where}"
        assert FAKE_KEY[-12:] not in text, f"part of the API key leaked into {where}"


def test_planted_pickle_runs_when_unpickled(tmp_path):
    """The marker mechanism works: plain unpickling does run the planted code (so the tests above can fail)."""
    marker = tmp_path / "PWNED"
    pickle.loads(pickle.dumps({"w": _Planted(marker)}))
    assert marker.exists()
