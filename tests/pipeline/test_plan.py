"""Your own corpus, first time: plain JSONL files (no `split` field, duplicate and missing ids) run end to end, the
plan is printed without training, and a plan the data cannot support fails before the first step, naming the
setting that fixes it."""

from __future__ import annotations

import json

import pytest

from tokfilter.cli import main
from tokfilter.corpus.demo import load_demo

BYO = """
name = "byo"
seed = 0

[data]
corpus = ["forget={root}/forget.jsonl", "retain={root}/retain.jsonl", "general={root}/general.jsonl"]
valid_frac = {valid_frac}
test_frac = 0.15
eval_docs_per_domain = 8

[classifier]
budget = "quick"
baselines = ["windowed"]

[classifier.settings]
pretrain_steps = 3
finetune_steps = 3
d_model = 32
n_head = 2
batch_size = 8

[pretrain]
sizes = ["tiny-0.1m"]
modes = ["none", "document", "remove"]
thresholds = [0.5]
doc_thresholds = [0.3]

[pretrain.train]
"budget.tokens" = 4000
"data.batch_size" = 8
"model.seq_len" = 64
"eval.max_tokens" = 1024

[eval]
mcq_limit = 4

[robustness]
lrs = [0.003]
max_tokens = 512
rmu_steps = 2
optional = {optional}

[refusal]
n_train = 4
n_eval = 2
steps = 2
"""


def write_plain_corpus(root, per_domain: int = 80) -> dict:
    """Real demo text as plain JSONL, the way a user's files come: no split field, one id missing per file, and
    duplicate ids (one with identical text, one with different text)."""
    counts = {}
    for domain in ("forget", "retain", "general"):
        docs = load_demo(domains=domain)[:per_domain]
        records = [{"id": d.id, "text": d.text} for d in docs]
        records[3] = {"text": records[3]["text"]}  # no id
        records.append(dict(records[5]))  # the same record twice
        records.append({"id": records[6]["id"], "text": records[7]["text"]})  # one id, two texts
        (root / f"{domain}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        counts[domain] = len(records)
    return counts


def experiment(root, valid_frac: float = 0.15, optional: str = "false"):
    path = root / "byo.toml"
    path.write_text(BYO.replace("{root}", str(root)).replace("{valid_frac}", str(valid_frac))
                    .replace("{optional}", optional))
    return path


def test_plan_prints_counts_and_trains_nothing(tmp_path, capsys):
    write_plain_corpus(tmp_path)
    assert main(["run", str(experiment(tmp_path)), "--plan", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    # 3 files x (80 records + the same record twice + one id with a second text)
    assert "246 documents read; 243 kept; 3 ids assigned; 3 duplicates dropped; 3 ids renamed" in out
    assert "243 splits assigned" in out
    for split in ("train", "valid", "test"):
        assert any(line.startswith(split) for line in out.splitlines()), split
    assert "remove-t0.5-tiny-0.1m" in out and "estimated wall time" in out and "nothing was trained" in out
    assert "label_fraction = 0.5" in out and "  label " in out and "  pretrain " in out
    assert not (tmp_path / "out").exists(), "--plan must not create the output directory"


def test_robustness_without_valid_forget_documents_fails_before_training(tmp_path, capsys):
    write_plain_corpus(tmp_path)
    path = experiment(tmp_path, valid_frac=0.0)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "valid split" in err and "[data] valid_frac" in err, err
    assert not (tmp_path / "out").exists(), "nothing may be written before the plan holds"


def test_optional_robustness_is_skipped_with_its_reason(tmp_path):
    from tokfilter.pipeline.experiment import load_experiment
    from tokfilter.pipeline.plan import make_plan

    write_plain_corpus(tmp_path)
    # valid_frac 0.03 of 80 documents per domain: a handful of valid documents, all used as splice donors
    plan = make_plan(load_experiment(experiment(tmp_path, valid_frac=0.03, optional="true")))
    assert "robustness" in plan.skipped and "valid split" in plan.skipped["robustness"]
    assert not [p for p in plan.problems if p.startswith("robustness")]


def test_plan_counts_the_label_and_pretrain_parts(tmp_path):
    from tokfilter.pipeline.experiment import load_experiment
    from tokfilter.pipeline.plan import make_plan

    write_plain_corpus(tmp_path)
    plan = make_plan(load_experiment(experiment(tmp_path)))
    label, pretrain = plan.parts["label"], plan.parts["pretrain"]
    assert label["documents"] > 0 and pretrain["documents"] > 0
    assert label["documents"] + pretrain["documents"] == sum(plan.benchmark["train"].values())
    assert label["forget_documents"] >= 20 and not plan.problems
    for run in plan.runs:  # the pretraining corpus is the pretrain part
        assert run["epochs"] == round(run["effective_tokens"] / pretrain["tokens"], 2)

    path = experiment(tmp_path)
    path.write_text(path.read_text().replace('budget = "quick"', 'budget = "quick"\nlabel_fraction = 0.1'))
    small = make_plan(load_experiment(path))
    assert small.parts["label"]["documents"] < label["documents"]
    assert any(p.startswith("classifier:") and "label part" in p and "label_fraction (now 0.1)" in p
               for p in small.problems), small.problems


@pytest.mark.slow
def test_plain_files_run_end_to_end(tmp_path):
    write_plain_corpus(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(experiment(tmp_path)), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (out / "report.html").is_file()
    report = results["corpus"]["report"]
    assert (report["duplicates_dropped"], report["ids_renamed"], report["ids_assigned"]) == (3, 3, 3)
    assert {run["mode"] for run in results["runs"]} == {"none", "document", "remove"}
    assert results["robustness"] and "skipped" not in results["robustness"]


def test_classifier_quality_gate_stops_before_pretraining(tmp_path, capsys):
    write_plain_corpus(tmp_path)
    path = experiment(tmp_path)
    path.write_text(path.read_text().replace('baselines = ["windowed"]', 'baselines = ["windowed"]\nmin_f1 = 0.999'))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "below [classifier] min_f1 = 0.999" in err.splitlines()[-1], err
    assert (out / "classifier").is_dir() and not (out / "runs").exists(), "the gate must stop before pretraining"
