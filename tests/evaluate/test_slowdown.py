"""Compute slowdown: recovery of a known power law and known slowdowns, input formats, CLI, figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tokfilter.cli import main
from tokfilter.errors import UserError
from tokfilter.evaluate.slowdown import Run, compute_slowdowns, fit_power_law, load_runs

A, B = math.log(9.0), -0.048  # synthetic ln L = A + B ln C


def synthetic_runs(noise: float = 0.003, seed: int = 0) -> tuple[list[Run], dict[str, float]]:
    rng = np.random.default_rng(seed)
    compute = np.logspace(15, 19, 6)
    runs = [Run(f"none-{i}", "none", float(c),
                {"forget": float(math.exp(A + B * math.log(c) + rng.normal(0, noise))),
                 "retain": float(math.exp(A + 0.2 + B * math.log(c) + rng.normal(0, noise)))})
            for i, c in enumerate(compute)]
    truth = {}
    for mode, factor in [("document", 30.0), ("mask", 400.0), ("remove", 7000.0)]:
        for i, c in enumerate(compute[1::2]):
            name = f"{mode}-{i}"
            truth[name] = factor
            # the filtered run is as good at medicine as a baseline with `factor` times less compute
            runs.append(Run(name, mode, float(c), {"forget": float(math.exp(A + B * math.log(c / factor))),
                                                   "retain": float(math.exp(A + 0.2 + B * math.log(c)))}))
    return runs, truth


def test_recovers_synthetic_exponent_and_slowdowns_within_2_percent():
    runs, truth = synthetic_runs()
    result = compute_slowdowns(runs, samples=300)
    assert result["fit"]["domain"] == "forget"
    assert result["fit"]["b"] == pytest.approx(B, rel=0.02)
    assert result["fit"]["r2"] > 0.99 and "warnings" not in result
    for name, factor in truth.items():
        # a 1% error in b becomes a log-slowdown error of ~|ln(factor)| %, so compare in log space
        assert math.log(result[name]["forget"]) == pytest.approx(math.log(factor), rel=0.02)
        lo, hi = result[name]["ci"]["forget"]
        assert lo <= result[name]["forget"] <= hi
        assert result[name]["retain"] == pytest.approx(1.0, rel=0.1)
    # remove > mask > document at the largest compute
    assert result["remove-2"]["forget"] > result["mask-2"]["forget"] > result["document-2"]["forget"]


def test_exact_fit_without_noise():
    compute = np.logspace(10, 14, 4)
    fit = fit_power_law(compute, np.exp(A + B * np.log(compute)))
    assert fit.b == pytest.approx(B, rel=1e-9) and fit.a == pytest.approx(A, rel=1e-9) and fit.r2 == pytest.approx(1)


def test_poor_fit_is_flagged():
    runs = [Run("a", "none", 1e15, {"forget": 3.0}), Run("b", "none", 1e16, {"forget": 2.9}),
            Run("c", "none", 1e17, {"forget": 3.05}), Run("m", "mask", 1e16, {"forget": 3.5})]
    result = compute_slowdowns(runs, samples=20)
    assert len(result["warnings"]) == 1 and "forget" in result["warnings"][0]


def test_residual_bootstrap_and_errors():
    runs, _ = synthetic_runs()
    result = compute_slowdowns(runs, samples=200, method="residuals")
    assert result["bootstrap"]["method"] == "residuals"
    assert result["remove-0"]["ci"]["forget"][0] < result["remove-0"]["ci"]["forget"][1]
    with pytest.raises(UserError, match="two unfiltered"):
        compute_slowdowns([r for r in runs if r.mode != "none"][:3] + runs[:1])
    with pytest.raises(UserError, match="two or more compute"):
        compute_slowdowns([Run("a", "none", 1e15, {"forget": 3.0}), Run("b", "none", 1e15, {"forget": 3.1})])


def test_cli_reads_run_dirs_and_results_json(tmp_path, capsys):
    runs, truth = synthetic_runs()
    dirs = []
    for run in runs[:8]:  # run directories with summary.json, as `tokfilter train` writes them (no "name")
        d = tmp_path / "runs" / run.name
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"mode": run.mode, "flops": run.flops, "loss": run.loss}))
        dirs.append(str(d))
    results = tmp_path / "results.json"  # the rest as a results.json runs list
    results.write_text(json.dumps({"runs": [{"name": r.name, "mode": r.mode, "flops": r.flops, "loss": r.loss}
                                            for r in runs[8:]]}))
    out = tmp_path / "slowdown.json"
    assert main(["slowdown", "--runs", *dirs, str(results), "--out", str(out), "--samples", "100"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert set(truth) <= set(printed)
    assert (tmp_path / "slowdown.png").stat().st_size > 1000
    assert len(load_runs(dirs + [str(results)])) == len(runs)


def test_cli_bad_input_exit_2(tmp_path, capsys):
    d = tmp_path / "run"
    d.mkdir()
    (d / "summary.json").write_text(json.dumps({"mode": "none", "loss": {"forget": 3.0}}))
    assert main(["slowdown", "--runs", str(d)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "flops" in err[0]


def test_cli_unknown_forget_domain_and_bad_out_exit_2(tmp_path, capsys):
    runs, _ = synthetic_runs()
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": [{"name": r.name, "mode": r.mode, "flops": r.flops, "loss": r.loss}
                                            for r in runs]}))
    assert main(["slowdown", "--runs", str(results), "--samples", "10", "--forget-domain", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--forget-domain 'bogus'" in err[0] and "(forget, retain)" in err[0], err
    out = tmp_path / "adir"
    out.mkdir()
    assert main(["slowdown", "--runs", str(results), "--samples", "10", "--out", str(out)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert not (tmp_path / "adir.png").exists() and not list(tmp_path.glob(".tmp-*"))
    assert compute_slowdowns(runs, samples=10, forget_domain="retain")["fit"]["domain"] == "retain"


def test_slowdown_for_results_dict():
    from tokfilter.evaluate.slowdown import slowdown_for_results

    runs, truth = synthetic_runs()
    results = {"runs": [{"name": r.name, "mode": r.mode, "flops": r.flops, "loss": r.loss} for r in runs]}
    out = slowdown_for_results(results, samples=50)
    assert set(truth) <= set(out) and out["fit"]["b"] == pytest.approx(B, rel=0.02)


def test_threshold_is_carried_and_plotted_per_threshold(tmp_path):
    """Two thresholds of one mode are two series: the result keeps each run's threshold, the figure draws both."""
    import matplotlib.pyplot as plt

    from tokfilter.evaluate.slowdown import slowdown_for_results
    from tokfilter.report.figures import plot_slowdowns

    runs, _ = synthetic_runs()
    records = [{"name": r.name, "mode": r.mode, "flops": r.flops, "loss": r.loss,
                "threshold": None if r.mode == "none" else (0.3 if r.name.endswith(("-0", "-2")) else 0.5)}
               for r in runs]
    out = slowdown_for_results({"runs": records}, samples=20)
    assert out["remove-0"]["threshold"] == 0.3 and out["remove-1"]["threshold"] == 0.5
    drawn = []
    original = plt.Axes.errorbar
    try:
        plt.Axes.errorbar = lambda self, x, y, *a, **k: drawn.append((k.get("label"), list(x))) or original(
            self, x, y, *a, **k)
        plot_slowdowns(out, tmp_path / "s.png")
    finally:
        plt.Axes.errorbar = original
    forget = drawn[:len(drawn) // 2]  # the first panel: forget
    assert sorted(label for label, _ in forget) == ["document 0.3", "document 0.5", "mask 0.3", "mask 0.5",
                                                    "remove 0.3", "remove 0.5"]
    assert dict(forget)["remove 0.3"] == sorted(dict(forget)["remove 0.3"]) and len(dict(forget)["remove 0.3"]) == 2
    with pytest.raises(UserError, match="threshold"):
        slowdown_for_results({"runs": [{**records[0], "threshold": "high"}]})


# ----- series per (mode, threshold, doc_threshold), and several seeds -----


def test_document_runs_are_grouped_by_doc_threshold(tmp_path, capsys):
    """Summaries as `tokfilter train` writes them: document runs share the token threshold and differ in
    doc_threshold; they are two series, not one."""
    runs, _ = synthetic_runs()
    dirs = []
    for run in runs:
        record = {"mode": run.mode, "flops": run.flops, "loss": run.loss, "seed": 0, "threshold": None,
                  "doc_threshold": None, "doc_aggregate": None}
        if run.mode == "document":
            record.update(threshold=0.5, doc_aggregate="frac",
                          doc_threshold=0.1 if run.name.endswith(("-0", "-2")) else 0.3)
        elif run.mode != "none":
            record["threshold"] = 0.5
        d = tmp_path / "runs" / run.name
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(record))
        dirs.append(str(d))
    assert main(["slowdown", "--runs", *dirs, "--samples", "50", "--out", str(tmp_path / "s.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    series = [(s["mode"], s["threshold"], s["doc_threshold"], s["runs"]) for s in result["series"]]
    assert series == [("document", 0.5, 0.1, ["document-0", "document-2"]), ("document", 0.5, 0.3, ["document-1"]),
                      ("mask", 0.5, None, ["mask-0", "mask-1", "mask-2"]),
                      ("remove", 0.5, None, ["remove-0", "remove-1", "remove-2"])]
    assert result["document-1"]["doc_threshold"] == 0.3 and result["document-1"]["doc_aggregate"] == "frac"
    assert "aggregates" not in result  # one seed per configuration


def seeded_runs(seed_noise: float, seeds: int = 4) -> list[Run]:
    """Baselines at 4 sizes and one removal configuration at 2 sizes, each with `seeds` seeds whose log loss
    varies by `seed_noise` (the fit itself is exact)."""
    rng = np.random.default_rng(1)
    runs = []
    for i, c in enumerate(np.logspace(15, 18, 4)):
        for s in range(seeds):
            loss = math.exp(A + B * math.log(c) + rng.normal(0, seed_noise))
            runs.append(Run(f"none-{i}-s{s}", "none", float(c), {"forget": loss}, seed=s, size=f"m{i}"))
    for i, c in enumerate(np.logspace(16, 17, 2)):
        for s in range(seeds):
            loss = math.exp(A + B * math.log(c / 100.0) + rng.normal(0, seed_noise))
            runs.append(Run(f"remove-{i}-s{s}", "remove", float(c), {"forget": loss}, threshold=0.5, seed=s,
                            size=f"m{i + 1}"))
    return runs


def _width(result: dict, name: str) -> float:
    lo, hi = result[name]["ci"]["forget"]
    return math.log(hi) - math.log(lo)


def test_seed_resampling_widens_intervals_by_the_seed_noise():
    runs = seeded_runs(seed_noise=0.01)
    with_seeds = compute_slowdowns(runs, samples=400)
    fit_only = compute_slowdowns(runs, samples=400, resample_seeds=False)
    assert with_seeds["bootstrap"]["seeds"] and not fit_only["bootstrap"]["seeds"]
    for name in ("remove-0-s0", "remove-1-s2"):
        assert with_seeds[name]["forget"] == fit_only[name]["forget"]  # same point estimate
        assert with_seeds[name]["seeds"] == 4
        assert _width(with_seeds, name) > 2 * _width(fit_only, name)  # the seed noise shows in the interval
    # seeds of one configuration share one interval (it is the configuration's seed distribution)
    assert with_seeds["remove-0-s0"]["ci"] == with_seeds["remove-0-s3"]["ci"]
    (agg0, agg1) = with_seeds["aggregates"]
    assert agg0["runs"] == [f"remove-0-s{s}" for s in range(4)] and agg0["seeds"] == [0, 1, 2, 3]
    assert math.log(agg0["forget"]) == pytest.approx(math.log(100.0), abs=0.15 * math.log(100.0))
    lo, hi = agg0["ci"]["forget"]
    assert lo < agg0["forget"] < hi
    assert math.log(hi / lo) < _width(with_seeds, "remove-0-s0")  # a mean over seeds is surer than one seed
    # without seed noise the two bootstraps agree closely
    quiet = seeded_runs(seed_noise=1e-6)
    a, b = compute_slowdowns(quiet, samples=200), compute_slowdowns(quiet, samples=200, resample_seeds=False)
    assert _width(a, "remove-0-s0") < 1e-3 and _width(b, "remove-0-s0") < 1e-3


def test_one_seed_per_configuration_is_the_fit_only_bootstrap():
    runs, _ = synthetic_runs()
    seeded = [Run(r.name, r.mode, r.flops, r.loss, seed=0) for r in runs]
    for method in ("runs", "residuals"):
        a = compute_slowdowns(seeded, samples=100, method=method)
        b = compute_slowdowns(runs, samples=100, method=method, resample_seeds=False)
        assert all(a[name]["ci"] == b[name]["ci"] for name in a if isinstance(a[name], dict) and "ci" in a[name])
