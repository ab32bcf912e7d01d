"""The one config loader: unknown keys anywhere are a one-line error (exit 2) with a did-you-mean, for every kind of
config tokfilter reads: experiment files (every section), training configs and their --set, classifier settings
(experiment table and `classifier train --set`), post-hoc settings, and the model configs stored in checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tokfilter.cli import main
from tokfilter.config import apply_overrides, from_dict, parse_override, set_dotted
from tokfilter.errors import UserError


@dataclass
class _Inner:
    rate: float = 0.1
    names: list[str] = field(default_factory=list)


@dataclass
class _Outer:
    inner: _Inner = field(default_factory=_Inner)
    steps: int = 3
    extra: dict = field(default_factory=dict)


def test_from_dict_types_nesting_and_errors():
    obj = from_dict(_Outer, {"inner": {"rate": 1, "names": ["a"]}, "steps": 5})
    assert obj.inner.rate == 1.0 and isinstance(obj.inner.rate, float) and obj.inner.names == ["a"]
    with pytest.raises(UserError, match=r"unknown key 'inner.rat' \(did you mean 'inner.rate'\?\)"):
        from_dict(_Outer, {"inner": {"rat": 1}})
    with pytest.raises(UserError, match=r"unknown section 'iner' \(did you mean 'inner'\?\)"):
        from_dict(_Outer, {"iner": {"rate": 1}})
    with pytest.raises(UserError, match="steps = True should be of type int"):
        from_dict(_Outer, {"steps": True})
    with pytest.raises(UserError, match=r"inner.names\[0\] = 3 should be of type str"):
        from_dict(_Outer, {"inner": {"names": [3]}})


def test_set_dotted_and_overrides():
    obj = apply_overrides(_Outer(), ["inner.rate=0.5", "steps=7", "extra.anything=[1, 2]"])
    assert (obj.inner.rate, obj.steps, obj.extra) == (0.5, 7, {"anything": [1, 2]})
    with pytest.raises(UserError, match=r"unknown key 'inner.rte' \(did you mean 'inner.rate'\?\)"):
        set_dotted(_Outer(), "inner.rte", 1.0)
    with pytest.raises(UserError, match=r"unknown section 'innr' \(did you mean 'inner'\?\)"):
        set_dotted(_Outer(), "innr.rate", 1.0)
    assert parse_override("a.b=3e-4") == ("a.b", 3e-4)
    assert parse_override("a.b=hello") == ("a.b", "hello")
    with pytest.raises(UserError):
        parse_override("novalue")


EXPERIMENT_TYPOS = [
    ("[data]\ndocs_per_domian = 3\n", "did you mean 'data.docs_per_domain'"),
    ("[tokenizer]\nvocab = 4096\n", "did you mean 'tokenizer.vocab_size'"),
    ("[classifier]\nbaseline = ['windowed']\n", "did you mean 'classifier.baselines'"),
    ("[classifier.settings]\nfinetune_step = 3\n", "did you mean 'finetune_steps'"),
    ("[annotate]\nworker = 2\n", "did you mean 'annotate.workers'"),
    ("[pretrain]\nsize = ['tiny-0.1m']\n", "did you mean 'pretrain.sizes'"),
    ("[pretrain.train]\n'optim.lrr' = 0.1\n", "did you mean 'optim.lr'"),
    ("[eval]\nmcq_limt = 3\n", "did you mean 'eval.mcq_limit'"),
    ("[robustness]\nrmu_step = 3\n", "did you mean 'robustness.rmu_steps'"),
    ("[refusal]\nn_trian = 3\n", "did you mean 'refusal.n_train'"),
    ("[pretrian]\nsizes = ['tiny-0.1m']\n", "unknown section 'pretrian' (did you mean 'pretrain'?)"),
]


@pytest.mark.parametrize("text,message", EXPERIMENT_TYPOS, ids=[t.split("]")[0][1:] for t, _ in EXPERIMENT_TYPOS])
def test_experiment_typos_exit_2_with_a_suggestion(tmp_path, capsys, text, message):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists(), "a bad experiment must not start writing output"


def test_train_config_and_set_typos_exit_2(tmp_path, capsys):
    path = tmp_path / "train.toml"
    path.write_text("[budget]\ntokens_per_parm = 2.0\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "did you mean 'budget.tokens_per_param'" in capsys.readouterr().err
    assert main(["train", "--set", "filter.treshold=0.3", "--out", str(tmp_path / "r")]) == 2
    assert "did you mean 'filter.threshold'" in capsys.readouterr().err


def test_classifier_train_set_typo_exits_2(tmp_path, capsys):
    assert main(["classifier", "train", "--data", "demo", "--labels", str(tmp_path / "none.jsonl"), "--out",
                 str(tmp_path / "c"), "--set", "finetune_step=3"]) == 2
    assert "did you mean 'finetune_steps'" in capsys.readouterr().err


def test_model_configs_refuse_unknown_keys():
    from tokfilter.classify.bilm import BiLMConfig
    from tokfilter.model import GPTConfig

    with pytest.raises(UserError, match="did you mean 'n_layer'"):
        GPTConfig.from_dict({"vocab_size": 64, "n_layers": 2})
    with pytest.raises(UserError, match="did you mean 'd_model'"):
        BiLMConfig.from_dict({"d_modle": 32})


def test_posthoc_settings_refuse_unknown_keys():
    from tokfilter.posthoc.settings import RefusalSettings, RobustnessSettings

    with pytest.raises(UserError, match="did you mean 'max_tokens'"):
        from_dict(RobustnessSettings, {"max_token": 10})
    with pytest.raises(UserError, match="did you mean 'n_eval'"):
        from_dict(RefusalSettings, {"n_evl": 10})
