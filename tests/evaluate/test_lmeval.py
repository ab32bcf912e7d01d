"""lm-evaluation-harness adapter, offline: a local YAML task over a local JSONL file, and the LM methods directly."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

pytest.importorskip("lm_eval", reason="lm-eval not installed (optional extra: pip install 'tokfilter[lmeval]')")

TASK_YAML = """task: tokfilter_local_probe
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: choices
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture()
def offline_hf(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_local_yaml_task_runs_through_cli(tiny_checkpoint, tmp_path, offline_hf, capsys):
    from tokfilter.cli import main
    from tokfilter.evaluate.probes import probe_path

    rows = [json.loads(line) for line in probe_path("forget").read_text(encoding="utf-8").splitlines()[:12]]
    data = tmp_path / "probe.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "probe.yaml").write_text(TASK_YAML.format(data=data), encoding="utf-8")
    rc = main(["eval", "lmeval", "--model", str(tiny_checkpoint), "--tasks", "tokfilter_local_probe",
               "--include-path", str(tasks), "--device", "cpu", "--no-progress"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = result["results"]["tokfilter_local_probe"]
    acc = next(v for k, v in metrics.items() if k.startswith("acc,"))
    assert 0.0 <= acc <= 1.0
    assert result["n"]["tokfilter_local_probe"]["effective"] == 12


def test_adapter_matches_the_mcq_scorer(tiny_checkpoint):
    from tokfilter.evaluate.lmeval import TokfilterLM

    lm = TokfilterLM(pretrained=str(tiny_checkpoint), device="cpu")
    requests = [SimpleNamespace(args=("Question: what is a gene?\nAnswer:", " a unit of heredity")),
                SimpleNamespace(args=("Question: what is a gene?\nAnswer: ", "a unit of heredity"))]
    (lp1, _), (lp2, _) = lm.loglikelihood(requests, disable_tqdm=True)
    assert lp1 == pytest.approx(lp2, abs=1e-5)  # trailing context space moves to the continuation
    ctx = [lm.tok.eot_id] + lm.tok.encode_ids("Question: what is a gene?\nAnswer:")
    direct = lm.scorer.loglikelihoods([(ctx, lm.tok.encode_ids(" a unit of heredity"))])[0][0]
    assert lp1 == pytest.approx(direct, abs=1e-5)
    text = "Genes are made of DNA. " * 20  # longer than seq_len: several windows
    (rolling,) = lm.loglikelihood_rolling([SimpleNamespace(args=(text,))], disable_tqdm=True)
    n = len(lm.tok.encode_ids(text))
    assert n > lm.model.config.seq_len and rolling < 0
    assert -rolling / n == pytest.approx(math.log(lm.tok.vocab_size), rel=0.1)  # untrained: ~uniform
    (generated,) = lm.generate_until([SimpleNamespace(args=("Genes", {"until": ["\n"], "max_gen_toks": 5}))],
                                     disable_tqdm=True)
    assert isinstance(generated, str) and "\n" not in generated
