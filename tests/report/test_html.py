"""report.html: regenerated from results.json alone, offline, and every figure loads in headless Chromium."""

from __future__ import annotations

import json
import re

import pytest

from tokfilter.cli import main

RESULTS = {
    "tokfilter_version": "test", "experiment": "unit", "seed": 0, "wall_seconds": 1.0,
    "classifier": {"kind": "bilm", "params": 1000, "f1": 0.9, "auroc": 0.97, "threshold": 0.4,
                   "pr_curve": {"precision": [1.0, 0.9, 0.5], "recall": [0.1, 0.8, 1.0]},
                   "baselines": [{"kind": "windowed", "params": 4096, "f1": 0.85,
                                  "pr_curve": {"precision": [1.0, 0.8, 0.5], "recall": [0.1, 0.7, 1.0]}}]},
    "runs": [
        {"name": f"{mode}-t{t}", "mode": mode, "threshold": t, "params": 10_000, "flops": 1e12 * (1 + i),
         "effective_tokens": 1000, "tokens_filtered_frac": 0.1 * i,
         "loss": {"forget": 5 + i * 0.5, "retain": 5 + i * 0.05, "general": 5.5},
         "mcq": {"hpo-medical": {"n": 100, "accuracy": 0.3, "chance": 0.25}}}
        for i, (mode, t) in enumerate([("none", None), ("document", 0.1), ("mask", 0.5), ("remove", 0.5)])
    ],
    "slowdown": {"fit": {"a": 3.0, "b": -0.05, "r2": 0.99}, "mask-t0.5": {"mode": "mask", "forget": 40.0, "retain": 1.2,
                                                                         "ci": {"forget": [20.0, 80.0]}},
                 "remove-t0.5": {"mode": "remove", "forget": 90.0, "retain": 1.3}},
    "robustness": {"mask-t0.5": {"recovery_tokens": 5000, "curve": [[0, 7.0], [1000, 6.0], [5000, 5.0]]},
                   "none-rmu": {"recovery_tokens": 300, "curve": [[0, 9.0], [300, 5.0]]}},
    "refusal": {"remove-t0.5": {"forget_refusal_rate": 0.6, "general_refusal_rate": 0.05}},
}


def test_report_regenerates_offline_and_figures_load(tmp_path, run_chromium):
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # offline: no CDN, no remote asset
    assert "20 – 80" in page  # the slowdown table shows the bootstrap interval
    images = re.findall(r"<img src='([^']+)'", page)
    assert {name.split("/")[-1] for name in images} == {"frontier.png", "slowdown.png", "recovery.png",
                                                        "classifier_pr.png", "refusal.png", "mcq.png"}
    dom = run_chromium("--virtual-time-budget=5000", "--dump-dom", (tmp_path / "report.html").as_uri()).stdout
    assert f'data-figures="{len(images)}/{len(images)}"' in dom


def test_report_without_results_is_a_clean_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "results.json: not found" in capsys.readouterr().err
    (tmp_path / "results.json").write_text("{broken")
    assert main(["report", str(tmp_path)]) == 2
    (tmp_path / "results.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "figures").exists()
    assert main(["report", str(tmp_path / "results.json")]) == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("drop", ["runs", "slowdown", "robustness", "refusal", "classifier"])
def test_partial_results_still_render(tmp_path, drop):
    partial = {k: v for k, v in RESULTS.items() if k != drop}
    (tmp_path / "results.json").write_text(json.dumps(partial))
    assert main(["report", str(tmp_path)]) == 0


def _seeded_results() -> dict:
    from tokfilter.pipeline.results import seed_aggregates

    runs = []
    for seed, shift in ((0, 0.0), (1, 0.2)):
        for run in RESULTS["runs"]:
            runs.append({**run, "name": f"{run['name']}-s{seed}", "seed": seed, "size": "tiny-0.1m",
                         "doc_threshold": 0.1 if run["mode"] == "document" else None,
                         "loss": {d: v + shift for d, v in run["loss"].items()}})
    return {**RESULTS, "runs": runs, "seeds": [0, 1],
            "aggregates": seed_aggregates([0, 1], runs, {}, {}, {"remove-t0.5-s0": {"forget_refusal_rate": 0.5,
                                                                                   "general_refusal_rate": 0.0},
                                                                "remove-t0.5-s1": {"forget_refusal_rate": 0.7,
                                                                                   "general_refusal_rate": 0.1}})}


def test_report_shows_means_and_intervals_over_seeds(tmp_path):
    from tokfilter.report.figures import _seed_means

    results = _seeded_results()
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "Over seeds" in page and "One seed: no interval" not in page
    assert "5.1 [3.829, 6.371]" in page  # none: forget 5.0 and 5.2 -> 5.1 +- 12.706 * 0.1414 / 1.414
    assert "Refusal over seeds" in page and "Token filtering vs document filtering, per seed" in page
    points = _seed_means(results)  # the frontier draws these: one point per configuration with interval bars
    assert len(points) == 4 and all(p["seeds"] == 2 for p in points)
    assert points[0]["yerr"] == pytest.approx([1.27062, 1.27062], abs=1e-4)
    assert (tmp_path / "figures" / "frontier.png").stat().st_size > 0


def test_report_of_one_seed_says_there_is_no_interval(tmp_path):
    from tokfilter.pipeline.results import seed_aggregates
    from tokfilter.report.figures import _seed_means

    results = {**RESULTS, "aggregates": seed_aggregates([0], RESULTS["runs"], {}, {}, {})}
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert main(["report", str(tmp_path)]) == 0
    assert "One seed: no interval" in (tmp_path / "report.html").read_text()
    assert _seed_means(results) is None  # the frontier draws every run as before


def test_variant_runs_get_the_ablation_figure(tmp_path):
    from tokfilter.report.figures import variant_deltas

    runs = [{"name": f"none-s{s}", "mode": "none", "size": "a", "seed": s, "params": 10_000, "flops": 1e12,
             "loss": {"forget": 5.0 + s / 10, "retain": 5.0, "general": 5.0}} for s in (0, 1)]
    runs += [{"name": f"remove-t0.3-noise{r}-a-s{s}", "mode": "remove", "size": "a", "seed": s, "threshold": 0.3,
              "variant": f"noise{r}", "params": 10_000, "flops": 1e12, "tokens_filtered_frac": 0.2,
              "loss": {"forget": 5.5 - r + s / 10, "retain": 5.0 + r / 10, "general": 5.0}}
             for r in (0, 0.4) for s in (0, 1)]
    deltas = {d["variant"]: d for d in variant_deltas({"runs": runs})}
    assert deltas["noise0"]["forget"]["mean"] == pytest.approx(0.5) and deltas["noise0"]["n"] == 2
    assert deltas["noise0.4"]["forget"]["mean"] == pytest.approx(0.1)
    (tmp_path / "results.json").write_text(json.dumps({**RESULTS, "runs": RESULTS["runs"] + runs}))
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "figures" / "variants.png").stat().st_size > 0
    assert "Ablation variants" in (tmp_path / "report.html").read_text()
