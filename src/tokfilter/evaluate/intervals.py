"""Means over seeds with a t-interval: what results.json's `aggregates` report for every number repeated per seed.

With n seeds of one configuration, the interval is mean +- t_{(1+confidence)/2, n-1} * sd / sqrt(n) (sd with n - 1
in the denominator). With n = 1 there is no spread to estimate: the interval and sd are null and `n` says 1. The
interval covers the *mean over seeds* at that confidence if seed effects are roughly normal; with two or three seeds
it is wide (t_{0.975,1} = 12.7, t_{0.975,2} = 4.30), which is the honest width.

    mean_interval([5.1, 5.3, 5.2])  # {"mean": 5.2, "ci": [4.95, 5.45], "sd": 0.1, "n": 3}
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# runs equal on these are seeds of one configuration (`variant`: an experiment's named variant, e.g. label noise)
CONFIG_KEYS = ("mode", "size", "threshold", "doc_threshold", "variant")


def config_of(run: dict) -> dict:
    """The configuration of a run record: {mode, size, threshold, doc_threshold, variant}."""
    return {key: run.get(key) for key in CONFIG_KEYS}


def naming_threshold(entry: dict) -> float | None:
    """The threshold a run is named and drawn by: `doc_threshold` for document runs (older results without it:
    `threshold`), `threshold` for token modes, none for unfiltered runs."""
    if entry.get("mode") == "none":
        return None
    if entry.get("mode") == "document" and entry.get("doc_threshold") is not None:
        return entry["doc_threshold"]
    return entry.get("threshold")


def config_name(entry: dict) -> str:
    """`mode-size`, `mode-tTHRESHOLD-size` or `mode-tTHRESHOLD-VARIANT-size`, the way run names are made."""
    shown = naming_threshold(entry)
    variant = f"-{entry['variant']}" if entry.get("variant") else ""
    return f"{entry.get('mode')}-{entry.get('size')}" if shown is None else \
        f"{entry.get('mode')}-t{shown:g}{variant}-{entry.get('size')}"


def config_key(run: dict) -> tuple:
    return tuple(run.get(key) for key in CONFIG_KEYS)


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom."""
    from scipy.stats import t  # scipy comes with scikit-learn, a dependency

    return float(t.ppf(p, df))


def mean_interval(values: Iterable[float | None], confidence: float = 0.95) -> dict | None:
    """{"mean", "ci": [lo, hi] or None, "sd" (None for n = 1), "n"} of the non-null values; None when there are none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return None
    mean = math.fsum(xs) / n
    if n == 1:
        return {"mean": mean, "ci": None, "sd": None, "n": 1}
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile((1.0 + confidence) / 2.0, n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "ci": [mean - half, mean + half], "sd": sd, "n": n}


def share(flags: Iterable[bool | None]) -> dict | None:
    """{"share": fraction of True among the non-null flags, "n"}; None when there are none."""
    xs = [bool(f) for f in flags if f is not None]
    return {"share": sum(xs) / len(xs), "n": len(xs)} if xs else None


def format_stat(stat: dict | None, spec: str = ".3f", missing: str = "-") -> str:
    """A STAT as text: "5.123 [5.010, 5.240]", or just the mean when there is no interval (one seed)."""
    if not stat:
        return missing
    if stat.get("ci") is None:
        return format(stat["mean"], spec)
    return f"{format(stat['mean'], spec)} [{format(stat['ci'][0], spec)}, {format(stat['ci'][1], spec)}]"


def deltas_vs_unfiltered(runs: list[dict], domains: tuple[str, ...] = ("forget", "retain", "general")) -> list[dict]:
    """Per filtered configuration: the loss change against the unfiltered run of the same size and seed, as STATs
    over seeds (paired by seed, so seed noise shared by both runs cancels), plus the share of tokens filtered.

    Each entry: {mode, size, threshold, doc_threshold, variant, name (config_name), params, n, seeds,
    tokens_filtered_frac, <domain>: STAT}. Configurations without an unfiltered run of their size are left out."""
    base = {(r.get("size"), r.get("seed")): r for r in runs if r.get("mode") == "none"}
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        if run.get("mode") != "none" and (run.get("size"), run.get("seed")) in base:
            groups.setdefault(config_key(run), []).append(run)
    out = []
    for group in groups.values():
        first = group[0]
        entry = {**config_of(first), "name": config_name(first), "params": first.get("params"), "n": len(group),
                 "seeds": [r.get("seed") for r in group],
                 "tokens_filtered_frac": mean_interval(r.get("tokens_filtered_frac") for r in group)}
        for domain in domains:
            entry[domain] = mean_interval(
                (r.get("loss") or {}).get(domain, math.nan) - (base[(r.get("size"), r.get("seed"))].get("loss")
                                                               or {}).get(domain, math.nan) for r in group)
        out.append(entry)
    return out
