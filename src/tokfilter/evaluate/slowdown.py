"""Relative compute slowdown (PAPER.md, "Evaluation"): how much more compute an unfiltered model needs to be as bad.

Per domain, the unfiltered (`mode = none`) runs' final loss is fitted against training compute as a power law
ln L = a + b ln C by ordinary least squares (r2 reported; b < 0 when more compute helps). A filtered run with compute
C_f and loss L_f matches the baseline curve at C_b* = exp((ln L_f - a) / b), and its slowdown is C_f / C_b*: > 1 when
filtering made the domain worse than an unfiltered model of the same compute (on the forget domain, the paper reports
~30x for document filtering and ~7000x for token removal at 1.8B). Everything is computed in log space, so slowdowns
far outside the fitted range are still finite (`log10` is reported beside each value); such extrapolations are only
as good as the power law.

Confidence intervals come from a bootstrap over the fit: `runs` (default) resamples the baseline runs with
replacement (resamples with fewer than two distinct compute values are redrawn); `residuals` keeps the compute values
and resamples the fit's residuals. Each replicate refits (a, b) and recomputes every slowdown; the interval is the
percentile interval of the replicates (replicates with b >= 0 have no finite inverse and are dropped and counted).
With three baseline sizes the interval mostly reflects which sizes were drawn; more sizes give tighter intervals.

Several seeds. Runs that carry a `seed` and share a configuration -- (mode, size, threshold, doc_threshold,
doc_aggregate, variant), size being the record's `size`, else its `params`, else its compute -- are seeds of one
configuration. The point fit uses every baseline run (each seed is a point). The bootstrap then also resamples seeds:
with `runs`, a replicate draws baseline *sizes* with replacement and, for each size drawn, one of its seeds' runs;
and for a filtered run it draws one of its configuration's seeds' runs (its loss and compute) in place of the run
itself. So a run's interval reflects seed noise on both sides, not only the fit (`residuals`: the residuals of all
baseline seeds, plus the filtered draw). Configurations with two or more seeds also get an entry in `aggregates`:
the slowdown of the mean log loss at the mean log compute over seeds, with an interval that redraws the seeds with
replacement. With one seed per configuration (or runs without `seed`) all this reduces to the fit-only bootstrap
above, draw for draw; `resample_seeds=False` forces it.

Input: run directories holding `summary.json` (as `tokfilter train` writes it: `mode`, `flops`, `loss` {domain:
nats}, optionally `loss_own`, `name`, `seed`, `params`, `threshold`, `doc_threshold`, `doc_aggregate`; a missing
`name` is the directory name) or `results.json` files/directories whose `runs` list has the same fields (DESIGN.md;
`size` there). `flops` is flops per token x *effective* tokens for every mode (DESIGN.md). The output follows
results.json's `slowdown` entry: `{"fit": {a, b, r2} of the forget domain, "fits": {domain: ...}, "<run name>":
{domain: slowdown, "ci": ..., "mode", "threshold", "doc_threshold", ...}, "series": [...], "aggregates": [...]}`.
`series` lists the filtered runs as one series per (mode, threshold, doc_threshold, variant), each in compute order (see
`series_key`): two document filters with different `doc_threshold`s are two series, as are two token thresholds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokfilter.errors import UserError

BASELINE_MODE = "none"
MIN_R2 = 0.8  # below this the fit is flagged in `warnings` (the numbers are still reported)


@dataclass
class Run:
    name: str
    mode: str
    flops: float
    loss: dict[str, float]
    threshold: float | None = None  # the token threshold; runs of a mode are plotted per threshold
    doc_threshold: float | None = None  # document runs: the document threshold (a series of its own)
    doc_aggregate: str | None = None
    seed: int | None = None  # runs of one configuration with different seeds are resampled together
    size: str | None = None  # the model size (results.json `size`, else the parameter count)
    variant: str | None = None  # an experiment's named variant (label noise, delayed filtering): its own series

    def config_key(self) -> tuple:
        """Runs with equal keys and different seeds are seeds of one configuration."""
        size = self.size if self.size is not None else f"flops={self.flops:.6g}"
        return (self.mode, size, self.threshold, self.doc_threshold, self.doc_aggregate, self.variant)


def series_key(entry: dict | Run) -> tuple:
    """(mode, threshold, doc_threshold, variant): the series a run or slowdown entry is drawn in."""
    get = entry.get if isinstance(entry, dict) else lambda k: getattr(entry, k, None)
    return (get("mode"), get("threshold"), get("doc_threshold"), get("variant"))


@dataclass
class Fit:
    a: float
    b: float
    r2: float
    n: int

    def log_compute_at(self, loss: float | np.ndarray) -> float | np.ndarray:
        """ln C_b*: the log compute at which the baseline curve reaches `loss`."""
        return (np.log(loss) - self.a) / self.b

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "r2": self.r2, "n": self.n}


def _run_from_record(record: dict, where: str, default_name: str, metric: str) -> Run:
    if not isinstance(record, dict):
        raise UserError(f"{where}: a run must be a JSON object")
    missing = [k for k in ("mode", "flops", metric) if k not in record]
    if missing:
        raise UserError(f"{where}: run lacks {', '.join(missing)}")
    losses = record[metric]
    if not isinstance(losses, dict) or not losses:
        raise UserError(f"{where}: '{metric}' must be an object {{domain: loss}}")
    try:
        flops = float(record["flops"])
        loss = {str(d): float(v) for d, v in losses.items() if v is not None}
        threshold = None if record.get("threshold") is None else float(record["threshold"])
        doc_threshold = None if record.get("doc_threshold") is None else float(record["doc_threshold"])
        seed = None if record.get("seed") is None else int(record["seed"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: flops, losses, thresholds and seed must be numbers") from None
    if flops <= 0 or any(not v > 0 for v in loss.values()):
        raise UserError(f"{where}: flops and losses must be positive")
    size = record.get("size") if record.get("size") is not None else record.get("params")
    aggregate = record.get("doc_aggregate")
    variant = record.get("variant")
    return Run(str(record.get("name") or default_name), str(record["mode"]), flops, loss, threshold, doc_threshold,
               None if aggregate is None else str(aggregate), seed, None if size is None else str(size),
               None if variant is None else str(variant))


def load_runs(paths: list[str | Path], metric: str = "loss") -> list[Run]:
    """Runs from run directories (summary.json), results.json files, or directories holding results.json."""
    runs: list[Run] = []
    for path in map(Path, paths):
        if path.is_dir() and (path / "summary.json").is_file():
            file = path / "summary.json"
        elif path.is_dir() and (path / "results.json").is_file():
            file = path / "results.json"
        elif path.is_file():
            file = path
        else:
            raise UserError(f"{path}: no summary.json or results.json here")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{file}: not JSON ({err})") from None
        if isinstance(data, dict) and isinstance(data.get("runs"), list):
            for k, record in enumerate(data["runs"]):
                runs.append(_run_from_record(record, f"{file}: runs[{k}]", f"{file.parent.name}-{k}", metric))
        else:  # one run's summary
            runs.append(_run_from_record(data, str(file), path.name if path.is_dir() else path.stem, metric))
    names = [r.name for r in runs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"run names must be unique; repeated: {', '.join(dupes)}")
    return runs


def slowdown_for_results(results: dict, metric: str = "loss", **kwargs) -> dict:
    """The `slowdown` entry of a results.json dict, from its `runs` list (see `compute_slowdowns` for kwargs)."""
    records = results.get("runs") or []
    runs = [_run_from_record(r, f"results.json: runs[{k}]", f"run-{k}", metric) for k, r in enumerate(records)]
    return compute_slowdowns(runs, **kwargs)


def fit_power_law(compute: np.ndarray, loss: np.ndarray) -> Fit:
    """OLS of ln L on ln C."""
    x, y = np.log(np.asarray(compute, dtype=np.float64)), np.log(np.asarray(loss, dtype=np.float64))
    if len(x) < 2 or np.ptp(x) == 0:
        raise UserError("the power-law fit needs unfiltered ('none') runs at two or more compute values")
    b, a = np.polyfit(x, y, 1)
    residual = y - (a + b * x)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual ** 2).sum()) / total if total > 0 else 1.0
    return Fit(float(a), float(b), r2, len(x))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _groups(runs: list[Run], resample_seeds: bool) -> list[list[int]]:
    """Indices of `runs` grouped into configurations (seeds of one configuration together), in first-seen order."""
    groups: dict = {}
    for k, run in enumerate(runs):
        key = run.config_key() if (resample_seeds and run.seed is not None) else ("run", k)
        groups.setdefault(key, []).append(k)
    return list(groups.values())


def _interval(reps: np.ndarray, alpha: float) -> list[float]:
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return [math.exp(min(lo, 700.0)), math.exp(min(hi, 700.0))]


def compute_slowdowns(runs: list[Run], samples: int = 2000, method: str = "runs", seed: int = 0,
                      confidence: float = 0.95, forget_domain: str | None = None,
                      resample_seeds: bool = True) -> dict:
    """The slowdown of every filtered run on every domain the baselines share, with bootstrap intervals that
    resample seeds where a configuration has several (module docstring)."""
    if method not in ("runs", "residuals"):
        raise UserError(f"unknown bootstrap method {method!r}; choose runs or residuals")
    baselines = [r for r in runs if r.mode == BASELINE_MODE]
    filtered = [r for r in runs if r.mode != BASELINE_MODE]
    if len(baselines) < 2:
        raise UserError(f"need at least two unfiltered (mode 'none') runs to fit, got {len(baselines)}")
    domains = sorted(set.intersection(*(set(r.loss) for r in baselines)))
    if not domains:
        raise UserError("the unfiltered runs share no loss domain")
    if forget_domain is None:
        forget_domain = "forget" if "forget" in domains else domains[0]
    if forget_domain not in domains:
        raise UserError(f"--forget-domain {forget_domain!r} is not a domain of the unfiltered runs "
                        f"({', '.join(domains)})")
    rng = np.random.default_rng(seed)
    C = np.array([r.flops for r in baselines])
    base_groups = _groups(baselines, resample_seeds)
    alpha = (1.0 - confidence) / 2.0
    fits: dict[str, Fit] = {}
    out: dict = {"fits": {}, "bootstrap": {"method": method, "samples": samples, "confidence": confidence,
                                           "seeds": resample_seeds and any(len(g) > 1 for g in base_groups),
                                           "dropped": {}}}
    per_run: dict[str, dict] = {r.name: {"mode": r.mode, "threshold": r.threshold, "doc_threshold": r.doc_threshold,
                                         "doc_aggregate": r.doc_aggregate, "seed": r.seed, "size": r.size,
                                         **({"variant": r.variant} if r.variant is not None else {}),
                                         "flops": r.flops, "ci": {}, "log10": {}} for r in filtered}
    aggregates: dict[tuple, dict] = {}
    for domain in domains:
        L = np.array([r.loss[domain] for r in baselines])
        fit = fits[domain] = fit_power_law(C, L)
        out["fits"][domain] = fit.to_dict()
        runs_here = [r for r in filtered if domain in r.loss]
        log_cf = np.log([r.flops for r in runs_here])
        log_lf = np.log([r.loss[domain] for r in runs_here])
        boot_fits = _bootstrap_fits(np.log(C), np.log(L), fit, samples, method, rng, base_groups)
        good = np.array([f for f in boot_fits if f[1] < 0]).reshape(-1, 2)
        out["bootstrap"]["dropped"][domain] = samples - len(good)
        a_rep, b_rep = good[:, 0], good[:, 1]
        for k, run in enumerate(runs_here):
            log_s = log_cf[k] - (log_lf[k] - fit.a) / fit.b if fit.b != 0 else math.nan
            per_run[run.name][domain] = _finite(math.exp(min(log_s, 700.0))) if math.isfinite(log_s) else None
            per_run[run.name]["log10"][domain] = _finite(log_s / math.log(10))
        for members in _groups(runs_here, resample_seeds):
            if len(members) > 1:
                for m in members:
                    per_run[runs_here[m].name]["seeds"] = len(members)
            if not len(good):
                continue
            idx = np.array(members)
            if len(members) == 1:  # the run itself in every replicate (the fit-only bootstrap)
                picks = np.full(len(good), idx[0])
            else:  # one of the configuration's seeds per replicate
                picks = idx[rng.integers(0, len(idx), len(good))]
            reps = log_cf[picks] - (log_lf[picks] - a_rep) / b_rep
            for m in members:
                per_run[runs_here[m].name]["ci"][domain] = _interval(reps, alpha)
            if len(members) > 1:
                first = runs_here[members[0]]
                entry = aggregates.setdefault(first.config_key(), {
                    "mode": first.mode, "threshold": first.threshold, "doc_threshold": first.doc_threshold,
                    "doc_aggregate": first.doc_aggregate, "size": first.size,
                    **({"variant": first.variant} if first.variant is not None else {}),
                    "runs": [runs_here[m].name for m in members], "seeds": [runs_here[m].seed for m in members],
                    "flops": float(np.exp(log_cf[idx].mean())), "ci": {}, "log10": {}})
                log_s = log_cf[idx].mean() - (log_lf[idx].mean() - fit.a) / fit.b if fit.b != 0 else math.nan
                entry[domain] = _finite(math.exp(min(log_s, 700.0))) if math.isfinite(log_s) else None
                entry["log10"][domain] = _finite(log_s / math.log(10))
                draws = idx[rng.integers(0, len(idx), (len(good), len(idx)))]  # seeds redrawn with replacement
                reps = log_cf[draws].mean(1) - (log_lf[draws].mean(1) - a_rep) / b_rep
                entry["ci"][domain] = _interval(reps, alpha)
    warnings = [f"{d}: b = {f.b:.4g} >= 0, more compute does not lower the loss; slowdowns are meaningless"
                if f.b >= 0 else f"{d}: poor power-law fit (r2 = {f.r2:.2f}); slowdowns are unreliable"
                for d, f in fits.items() if f.b >= 0 or f.r2 < MIN_R2]
    if warnings:
        out["warnings"] = warnings
    out["fit"] = {**fits[forget_domain].to_dict(), "domain": forget_domain}
    series: dict[tuple, list[Run]] = {}
    for run in sorted(filtered, key=lambda r: r.flops):
        series.setdefault(series_key(run), []).append(run)
    out["series"] = [{"mode": m, "threshold": t, "doc_threshold": d, **({"variant": v} if v is not None else {}),
                      "runs": [r.name for r in rs]}
                     for (m, t, d, v), rs in sorted(series.items(), key=lambda kv: (
                         kv[0][0], -1.0 if kv[0][1] is None else kv[0][1], -1.0 if kv[0][2] is None else kv[0][2],
                         kv[0][3] or ""))]
    if aggregates:
        out["aggregates"] = list(aggregates.values())
    for name in per_run:
        if name in out:
            raise UserError(f"a run may not be named {name!r} (reserved key in the slowdown output)")
    out.update(per_run)
    return {"fit": out.pop("fit"), **out}


def _bootstrap_fits(x: np.ndarray, y: np.ndarray, fit: Fit, samples: int, method: str,
                    rng: np.random.Generator, groups: list[list[int]] | None = None) -> list[tuple[float, float]]:
    """(a, b) per replicate. `groups` (seeds of one size together): `runs` draws groups, then one seed of each."""
    fits = []
    n = len(x)
    residuals = y - (fit.a + fit.b * x)
    seeded = groups is not None and any(len(g) > 1 for g in groups)
    attempts = 0
    while len(fits) < samples and attempts < samples * 20:
        attempts += 1
        if method == "runs" and seeded:
            drawn = rng.integers(0, len(groups), len(groups))
            pick = np.array([groups[g][rng.integers(0, len(groups[g]))] for g in drawn])
            xs, ys = x[pick], y[pick]
            if np.ptp(xs) == 0:
                continue
        elif method == "runs":
            pick = rng.integers(0, n, n)
            xs, ys = x[pick], y[pick]
            if np.ptp(xs) == 0:
                continue
        else:
            xs, ys = x, fit.a + fit.b * x + residuals[rng.integers(0, n, n)]
        b, a = np.polyfit(xs, ys, 1)
        fits.append((float(a), float(b)))
    return fits
