"""Experiment files: the shipped ones parse; unknown keys, wrong types and bad values are one-line errors."""

from __future__ import annotations

import pytest

from tokfilter.errors import UserError
from tokfilter.pipeline.experiment import load_experiment, shipped_experiment


@pytest.mark.parametrize("name", ["demo", "demo-quick"])
def test_shipped_experiments_parse(name):
    exp = load_experiment(shipped_experiment(name))
    assert set(exp.pretrain.modes) == {"none", "document", "mask", "remove"}
    assert len(exp.pretrain.thresholds) >= 2
    assert exp.canaries.enabled  # both demos measure the capability claim on planted facts (docs/canaries.md)


def test_repository_experiments_parse(repo_root):
    files = sorted((repo_root / "experiments").glob("*.toml"))
    assert files, "experiments/ should hold experiment files"
    for path in files:
        if path.name.startswith("train-"):  # a `tokfilter train` config, not an experiment
            from tokfilter.train.config import load_config

            load_config(path)
        else:
            load_experiment(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[pretrain]\nmodez = ['none']\n", "unknown key 'pretrain.modez' (did you mean 'pretrain.modes'?)"),
        ("[data]\ndocs_per_domain = 'many'\n", "data.docs_per_domain = 'many' should be of type int"),
        ("[pretrain]\nmodes = ['none', 'masking']\n", "pretrain.modes has 'masking' (did you mean 'mask'?)"),
        ("[pretrain]\nthresholds = [1.5]\n", "outside [0, 1]"),
        ("[pretrain]\ndoc_token_threshold = -0.2\n", "pretrain.doc_token_threshold has -0.2, outside [0, 1]"),
        ("[annotate]\nworkers = -1\n", "annotate.workers = -1"),
        ("[data]\ndocs_per_domain = -3\n", "data.docs_per_domain must be >= 0 (0 = all), not -3"),
        ("[pretrain.train]\n'budget.tokens' = -100\n", "pretrain.train: config: budget.tokens must be >= 0, not -100"),
        ("[classifier]\nlabel_fraction = 1.0\n", "classifier.label_fraction = 1.0 (expected 0 < x < 1"),
        ("[classifier]\nlabel_fraction = 0.0\n", "classifier.label_fraction = 0.0 (expected 0 < x < 1"),
        ("[pretrain]\nsizes = ['huge']\n", "unknown model size 'huge'"),
        ("[pretrain.train]\n'optim.lrr' = 0.1\n", "unknown key 'optim.lrr' (did you mean 'optim.lr'?)"),
        ("name = \n", "invalid TOML"),
    ],
)
def test_bad_experiment_files(tmp_path, text, message):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_experiment(path)
    assert message in str(err.value)


def test_set_overrides_are_checked_like_the_file(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text("[classifier]\nbudget = 'quick'\n")
    exp = load_experiment(path, sets=['classifier.labels="document"', "seeds=[0, 1]", "pretrain.train.optim.lr=0.003"])
    assert exp.classifier.labels == "document" and exp.seeds == [0, 1]
    assert exp.pretrain.train == {"optim.lr": 0.003}
    with pytest.raises(UserError, match="did you mean 'classifier.labels'"):
        load_experiment(path, sets=["classifier.labelz=exact"])
    with pytest.raises(UserError, match="classifier.labels = 'oracle' is not one of"):
        load_experiment(path, sets=["classifier.labels=oracle"])
    with pytest.raises(UserError, match=r"data.docs_per_domain must be >= 0 \(0 = all\), not -3"):
        load_experiment(path, sets=["data.docs_per_domain=-3"])
