"""The demo-facing suites: results.json-shaped robustness and refusal tables, and their PNG figures."""

from __future__ import annotations

import pytest

from tokfilter.errors import UserError
from tokfilter.evaluate.robustness import plot_recovery, plot_refusal, refusal_suite, robustness_suite

from .robust_models import demo_texts, one_thread, robust_models  # noqa: F401 (fixtures)


def test_robustness_suite_shapes_results_and_plots(robust_models, tmp_path):  # noqa: F811
    runs = {"none": robust_models["full"], "document": robust_models["filtered"]}
    table = robustness_suite(runs, "none", demo_texts("forget", "train", 60), demo_texts("forget", "valid", 8),
                             demo_texts("retain", "train", 60), tmp_path, lrs=(3e-3,), max_tokens=2048,
                             rmu_hp={"steps": 5, "coeffs": (8.0,), "alphas": (10.0,)}, eval_max_tokens=1024,
                             progress=False)
    assert set(table) == {"document", "none-rmu"}
    for entry in table.values():
        assert {"recovery_tokens", "curve", "baseline_loss", "lr"} <= set(entry)
        assert entry["curve"][0][0] == 0
    assert table["document"]["baseline_loss"] == table["none-rmu"]["baseline_loss"]
    # the target is the baseline's own loss, measured the same way as RMU's "before"
    assert table["none-rmu"]["rmu"]["before"]["forget"] == pytest.approx(table["document"]["baseline_loss"])
    png = plot_recovery(table, tmp_path / "recovery.png",
                        runs=[{"name": "document", "mode": "document"}, {"name": "none", "mode": "none"}])
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserError, match="baseline run"):
        robustness_suite(runs, "missing", ["a"], ["b"], ["c"], tmp_path)


def test_refusal_plot_and_suite_arguments(robust_models, tmp_path):  # noqa: F811
    table = {"none": {"forget_refusal_rate": 0.4, "general_refusal_rate": 0.1},
             "remove": {"forget_refusal_rate": 0.8, "general_refusal_rate": 0.1}}
    png = plot_refusal(table, tmp_path / "refusal.png")
    assert png.stat().st_size > 1000
    assert plot_refusal({}, tmp_path / "none.png") is None
    result = refusal_suite({"full": robust_models["full"]}, None, n_train=16, n_eval=4, steps=4, batch_size=4,
                           max_new_tokens=4, progress=False)
    assert set(result["full"]) >= {"forget_refusal_rate", "general_refusal_rate", "counts"}
    assert result["full"]["counts"]["forget_n"] == 4
