"""`[[pretrain.variants]]`: every filtered run once per named set of train overrides (the ablations' axis), kept apart
as configurations in the grid, the train config, aggregates and slowdown series."""

from __future__ import annotations

import pytest

from tokfilter.errors import UserError
from tokfilter.evaluate.slowdown import Run, compute_slowdowns
from tokfilter.pipeline.experiment import load_experiment

VARIANTS = """
[pretrain]
sizes = ["tiny-0.1m"]
modes = ["none", "document", "remove"]
thresholds = [0.3]
doc_thresholds = [0.1]

[[pretrain.variants]]
name = "noise0.2"
set = {"filter.noise" = 0.2}

[[pretrain.variants]]
name = "delay0.4"
set = {"filter.delay" = 0.4}
"""


def _load(tmp_path, text: str):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return load_experiment(path)


def test_filtered_runs_once_per_variant_and_the_unfiltered_run_once(tmp_path):
    from tokfilter.pipeline.steps import pretrain

    names = [run["name"] for run in pretrain.grid(_load(tmp_path, VARIANTS))]
    assert names == ["none-tiny-0.1m", "document-t0.1-noise0.2-tiny-0.1m", "document-t0.1-delay0.4-tiny-0.1m",
                     "remove-t0.3-noise0.2-tiny-0.1m", "remove-t0.3-delay0.4-tiny-0.1m"]


def test_the_variant_reaches_the_train_config_and_the_cache_key(tmp_path):
    from tokfilter.pipeline.cache import Stages
    from tokfilter.pipeline.context import Context
    from tokfilter.pipeline.steps import pretrain

    exp = _load(tmp_path, VARIANTS)
    ctx = Context(exp, tmp_path, Stages(tmp_path, []))
    runs = {run["name"]: run for run in pretrain.grid(exp)}
    noisy, late = runs["remove-t0.3-noise0.2-tiny-0.1m"], runs["remove-t0.3-delay0.4-tiny-0.1m"]
    assert (pretrain.train_config(ctx, noisy).filter.noise, pretrain.train_config(ctx, noisy).filter.delay) == (0.2, 0)
    assert (pretrain.train_config(ctx, late).filter.noise, pretrain.train_config(ctx, late).filter.delay) == (0, 0.4)
    assert pretrain.train_config(ctx, late).filter.mode == "remove"
    assert pretrain.config(ctx, noisy) != pretrain.config(ctx, late)


@pytest.mark.parametrize("extra, message", [
    ('[[pretrain.variants]]\nname = "a b"\n', "letters, digits and dots"),
    ('[[pretrain.variants]]\nname = "x"\nset = {"filter.noize" = 0.1}\n', "filter.noize"),
    ('[[pretrain.variants]]\nname = "x"\n[[pretrain.variants]]\nname = "x"\n', "unique"),
])
def test_bad_variants_are_one_line_errors(tmp_path, extra, message):
    with pytest.raises(UserError, match=message):
        _load(tmp_path, extra)


def test_aggregates_and_slowdown_series_keep_variants_apart():
    from tokfilter.pipeline.results import seed_aggregates

    runs = [{"name": f"remove-t0.3-{v}-tiny-0.1m-s{s}", "mode": "remove", "size": "tiny-0.1m", "threshold": 0.3,
             "doc_threshold": None, "variant": v, "seed": s, "loss": {"forget": 5.0 + s / 10 + (v == "b")},
             "tokens_filtered_frac": 0.2} for v in ("a", "b") for s in (0, 1)]
    configs = seed_aggregates([0, 1], runs, {}, {}, {})["runs"]
    assert [(c["variant"], c["n"]) for c in configs] == [("a", 2), ("b", 2)]
    assert configs[1]["loss"]["forget"]["mean"] == pytest.approx(configs[0]["loss"]["forget"]["mean"] + 1)

    base = [Run(f"none-{k}", "none", 10.0 ** k, {"forget": 6.0 - 0.3 * k}) for k in range(3)]
    filtered = [Run(f"remove-{v}", "remove", 10.0, {"forget": 6.0}, threshold=0.3, variant=v) for v in ("a", "b")]
    result = compute_slowdowns(base + filtered, samples=50)
    assert [s.get("variant") for s in result["series"]] == ["a", "b"]
    assert result["remove-a"]["variant"] == "a"
