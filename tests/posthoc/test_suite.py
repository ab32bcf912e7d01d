"""The builders of results.json's `robustness` and `refusal` sections: exactly the shape `tokfilter run` / `demo`
write (Pipeline.robustness / .refusal return these builders' output unchanged), and their PNG figures."""

from __future__ import annotations

import json

import pytest

from tokfilter.errors import UserError
from tokfilter.posthoc.attack import baseline_loss_of
from tokfilter.posthoc.settings import RefusalSettings, RobustnessSettings
from tokfilter.posthoc.suite import plot_recovery, plot_refusal, refusal_section, rmu_name, robustness_section

from .robust_models import demo_texts

ATTACK_ENTRY = ["recovery_tokens", "recovery_fraction", "curve", "lr", "baseline_loss", "initial_loss", "reached"]
SMALL = RobustnessSettings(lrs=[3e-3], max_tokens=2048, rmu_steps=5, rmu_batch_size=4, rmu_coeffs=[8.0],
                           rmu_alphas=[10.0])


def test_robustness_section_has_the_results_json_shape_and_plots(robust_models, tmp_path):
    models = {"document": robust_models["filtered"], "none": robust_models["full"]}
    forget_eval = demo_texts("forget", "valid", 8)
    section = robustness_section(models, "none", demo_texts("forget", "train", 60), demo_texts("retain", "train", 60),
                                 forget_eval, tmp_path / rmu_name("none"), SMALL, seed=0)
    # one entry per model but the baseline, in order, then the RMU-unlearned baseline; exactly these keys
    assert list(section) == ["document", "none-rmu"]
    assert list(section["document"]) == ATTACK_ENTRY
    assert list(section["none-rmu"]) == [*ATTACK_ENTRY, "unlearning"]
    unlearning = section["none-rmu"]["unlearning"]
    assert list(unlearning) == ["layer", "before", "after", "chosen", "sweep"]
    assert set(unlearning["before"]) == set(unlearning["after"]) == {"forget", "retain"}
    assert len(unlearning["sweep"]) == 1 and unlearning["chosen"]["alpha"] == 10.0
    assert (tmp_path / "none-rmu" / "provenance.json").is_file()
    # every attack aims at the baseline's own held-out forget loss, measured the same way
    target = baseline_loss_of(robust_models["full"], forget_eval)
    assert len(section) >= 2
    for entry in section.values():
        assert entry["baseline_loss"] == target
        assert entry["lr"] == 3e-3 and entry["curve"][0][0] == 0
        assert entry["initial_loss"] == entry["curve"][0][1]
        assert entry["reached"] == (entry["recovery_tokens"] is not None)
    assert json.loads(json.dumps(section)) == section  # results.json round-trips it unchanged
    png = plot_recovery(section, tmp_path / "recovery.png",
                        runs=[{"name": "document", "mode": "document"}, {"name": "none", "mode": "none"}])
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_robustness_section_needs_the_baseline_among_the_models(robust_models, tmp_path):
    with pytest.raises(UserError, match="baseline run"):
        robustness_section({"document": robust_models["filtered"]}, "none", ["a"], ["b"], ["c"], tmp_path / "rmu",
                           SMALL, seed=0)
    assert not (tmp_path / "rmu").exists()


def test_refusal_section_has_the_results_json_shape_and_plots(robust_models, tmp_path):
    section = refusal_section({"full": robust_models["full"]}, RefusalSettings(n_train=16, n_eval=4, steps=4), seed=0)
    assert list(section) == ["full"]
    assert list(section["full"]) == ["forget_refusal_rate", "general_refusal_rate", "counts"]
    counts = section["full"]["counts"]
    assert counts["forget_n"] == counts["general_n"] == 4
    assert section["full"]["forget_refusal_rate"] == counts["forget_refused"] / 4
    assert json.loads(json.dumps(section)) == section
    table = {"none": {"forget_refusal_rate": 0.4, "general_refusal_rate": 0.1},
             "remove": {"forget_refusal_rate": 0.8, "general_refusal_rate": 0.1}}
    png = plot_refusal(table, tmp_path / "refusal.png")
    assert png.stat().st_size > 1000
    assert plot_refusal({}, tmp_path / "none.png") is None
