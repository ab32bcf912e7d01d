"""Training config: TOML sections, --set overrides, unknown keys and bad values as one-line UserErrors."""

from __future__ import annotations

import pytest

from tokfilter.config import parse_override
from tokfilter.errors import UserError
from tokfilter.train.config import load_config


def test_toml_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\npreset = "tiny-3m"\n[filter]\nmode = "mask"\nthreshold = 0.3\n[optim]\nlr = 1\n')
    cfg = load_config(path, ["filter.mode=remove", "budget.tokens=1000", "run.compile=true", "data.shards=x/y"])
    assert cfg.model.preset == "tiny-3m" and cfg.filter.threshold == 0.3
    assert cfg.filter.mode == "remove" and cfg.budget.tokens == 1000 and cfg.run.compile is True
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.data.shards == "x/y"
    assert parse_override("eval.labels=") == ("eval.labels", "")


def test_unknown_key_suggests_the_close_one(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[filter]\nthreshhold = 0.3\n")
    with pytest.raises(UserError, match="filter.threshhold.*did you mean 'filter.threshold'"):
        load_config(path)
    with pytest.raises(UserError, match="unknown section 'fliter'.*'filter'"):
        load_config(None, ["fliter.mode=mask"])
    with pytest.raises(UserError, match="did you mean 'optim.lr'"):
        load_config(None, ["optim.lrr=3"])


def test_bad_values_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="filter.mode = 'masks'.*did you mean 'mask'"):
        load_config(None, ["filter.mode=masks"])
    with pytest.raises(UserError, match="budget.tokens .* should be of type int"):
        load_config(None, ["budget.tokens=lots"])
    with pytest.raises(UserError, match="filter.noise"):
        load_config(None, ["filter.noise=1.5"])
    with pytest.raises(UserError, match=r"budget.tokens must be >= 0, not -100"):
        load_config(None, ["budget.tokens=-100"])
    assert load_config(None, ["budget.tokens=0"]).budget.tokens == 0  # 0 = tokens_per_param x parameters
    with pytest.raises(UserError, match="data.batch_targets = 'row'.*did you mean 'rows'"):
        load_config(None, ["data.batch_targets=row"])
    assert load_config(None).data.batch_targets == "fixed"  # equal steps unless asked otherwise
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(UserError, match="invalid TOML"):
        load_config(bad)
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_cli_reports_unknown_key_as_one_line(tmp_path, capsys):
    from tokfilter.cli import main

    assert main(["train", "--set", "filter.mdoe=mask", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'filter.mode'" in err[0]
