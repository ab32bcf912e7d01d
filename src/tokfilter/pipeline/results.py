"""The results.json schema (DESIGN.md, a contract), written in one place: run records, the whole file, the summary.

`run_record` turns a training summary into one `runs[]` entry; `build_results` assembles the file from the steps'
results; `seed_aggregates` its `aggregates` (means and t-intervals over seeds); `print_summary` prints the runs side
by side and the headline comparisons on stdout.

Seeds. `runs` keeps one record per seed (with `seeds = [...]` in the experiment, names end in `-s{seed}`), and every
section keyed by run name (`slowdown`, `robustness`, `refusal`) holds every seed's runs. `aggregates` (always
present; with one seed every `n` is 1 and every interval null):

    {"seeds": [0, 1, 2], "n_seeds": 3, "confidence": 0.95, "interval": "t", "runs": [
       {"mode", "size", "threshold", "doc_threshold", "doc_aggregate", "params", "n", "seeds", "runs",
        "loss": {"forget" | "retain" | "general": STAT}, "mcq": {"<set>": {"accuracy": STAT}},
        "tokens_filtered_frac": STAT, "canaries": {"forget" | "retain": {"accuracy": STAT, "by_placement": {PLACEMENT: STAT},
        "by_exposures": {COUNT: STAT}}} (canaries enabled),
        "slowdown": {"forget": x, "retain": x, "ci": {...}} (n >= 2 only)}],
     "pareto": evaluate.pareto.pareto_aggregates (pairs and verdicts over seeds),
     "robustness": {"<mode>" | "rmu": {"n", "seeds", "runs", "recovery_tokens": STAT, "recovery_fraction": STAT,
                                       "reached_share", "canaries": {"before" | "after": {"forget" | "retain": STAT}}
                                       (canary accuracy around the attack, where measured)}},
     "refusal": {"<mode>": {"n", "seeds", "runs", "forget_refusal_rate": STAT, "general_refusal_rate": STAT}}}

STAT = evaluate.intervals.mean_interval: {"mean", "ci": [lo, hi] | null, "sd" | null, "n"}, the interval being
mean +- t_{0.975, n-1} sd / sqrt(n). A configuration is (mode, size, threshold, doc_threshold). The slowdown entry
comes from the slowdown section's own `aggregates` (a bootstrap that redraws seeds, evaluate/slowdown.py), not from
the t-interval; recovery tokens average over the seeds whose attack reached the baseline (`reached_share` says how
many did).
"""

from __future__ import annotations

import time

from tokfilter import __version__
from tokfilter.evaluate.intervals import config_key, config_name, config_of, format_stat, mean_interval
from tokfilter.evaluate.pareto import describe, describe_aggregates, pareto_aggregates, pareto_summary

DOMAINS = ("forget", "retain", "general")
CONFIDENCE = 0.95


def run_record(run: dict, summary: dict) -> dict:
    """One `runs[]` entry of results.json from a training summary.

    `flops` is flops per token x *effective* tokens for every mode (the compute every fit and table uses);
    `flops_processed` counts every position that went through the model. `threshold` is the token threshold
    (p(forget) >= threshold; for document runs the one behind the `frac` aggregate), `doc_threshold` and
    `doc_aggregate` the document rule (null for token modes)."""
    return {
        "name": run["name"], "mode": run["mode"], "threshold": summary.get("threshold"), "size": run["size"],
        "doc_threshold": summary.get("doc_threshold"), "doc_aggregate": summary.get("doc_aggregate"),
        **({"variant": run["variant"], "variant_set": run.get("variant_set")} if run.get("variant") else {}),
        "seed": summary.get("seed"), "steps": summary.get("steps"),
        "params": summary.get("params"), "train_tokens": summary.get("train_tokens"),
        "effective_tokens": summary.get("effective_tokens"), "flops": summary.get("flops"),
        "flops_processed": summary.get("flops_processed"),
        "tokens_filtered_frac": summary.get("tokens_filtered_frac"),
        "loss": summary.get("loss", {}), "loss_own": summary.get("loss_own", {}), "bpb": summary.get("bpb", {}),
        "seconds": summary.get("seconds"),
    }


def _config_groups(runs: list[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(config_key(run), []).append(run)
    return list(groups.values())


def section_by_mode(section: dict, runs: list[dict], keys: tuple[str, ...]) -> dict:
    """A per-run-name section (robustness / refusal) averaged over seeds per mode (`rmu` for *-rmu entries); where
    entries carry canary accuracy before / after the attack, `canaries.{before,after}.{forget,retain}` too."""
    if not isinstance(section, dict) or "skipped" in section:
        return {}
    modes = {run["name"]: run["mode"] for run in runs}
    seeds = {run["name"]: run.get("seed") for run in runs}
    by_mode: dict[str, list[tuple[str, dict]]] = {}
    for name, entry in section.items():
        if not isinstance(entry, dict):
            continue
        base = name[: -len("-rmu")] if name.endswith("-rmu") else name
        mode = "rmu" if name.endswith("-rmu") else modes.get(name)
        if mode is not None:
            by_mode.setdefault(mode, []).append((name, {**entry, "_seed": seeds.get(base)}))
    out = {}
    for mode, entries in by_mode.items():
        out[mode] = {"n": len(entries), "seeds": [e["_seed"] for _, e in entries], "runs": [n for n, _ in entries],
                     **{key: mean_interval((e.get(key) for _, e in entries), CONFIDENCE) for key in keys}}
        if "recovery_tokens" in keys:
            out[mode]["reached_share"] = sum(bool(e.get("reached", e.get("recovery_tokens") is not None))
                                             for _, e in entries) / len(entries)
        measured = [e["canaries"] for _, e in entries if (e.get("canaries") or {}).get("after")]
        if measured:
            out[mode]["canaries"] = {when: {d: mean_interval(((m.get(when) or {}).get(d, {}).get("accuracy")
                                                              for m in measured), CONFIDENCE)
                                            for d in ("forget", "retain")}
                                     for when in ("before", "after")}
    return out


def _canary_aggregate(per_seed: list[dict]) -> dict:
    """Canary accuracy of one domain over seeds: overall, per placement and per mention count (seen templates)."""
    def stat(values) -> dict:
        return mean_interval(values, CONFIDENCE)

    out = {"accuracy": stat(c.get("accuracy") for c in per_seed)}
    for key in ("by_placement", "by_exposures"):
        names = dict.fromkeys(name for c in per_seed for name in (c.get(key) or {}))
        if names:
            out[key] = {name: stat((c.get(key) or {}).get(name, {}).get("accuracy") for c in per_seed)
                        for name in names}
    return out


def seed_aggregates(seeds: list[int], runs: list[dict], slowdown: dict, robustness: dict, refusal: dict,
                    pareto: dict | None = None) -> dict:
    """results.json's `aggregates` (module docstring)."""
    slow = {}
    for entry in (slowdown or {}).get("aggregates") or []:
        slow[config_key(entry)] = entry
    configurations = []
    for group in _config_groups(runs):
        first = group[0]
        entry = {**config_of(first), "doc_aggregate": first.get("doc_aggregate"), "params": first.get("params"),
                 "n": len(group), "seeds": [run.get("seed") for run in group], "runs": [run["name"] for run in group],
                 "loss": {d: mean_interval(((run.get("loss") or {}).get(d) for run in group), CONFIDENCE)
                          for d in DOMAINS if any((run.get("loss") or {}).get(d) is not None for run in group)},
                 "mcq": {name: {"accuracy": mean_interval(((run.get("mcq") or {}).get(name, {}).get("accuracy")
                                                           for run in group), CONFIDENCE)}
                         for name in dict.fromkeys(n for run in group for n in (run.get("mcq") or {}))},
                 "tokens_filtered_frac": mean_interval((run.get("tokens_filtered_frac") for run in group),
                                                       CONFIDENCE)}
        canary_domains = [d for d in ("forget", "retain") if any(d in (run.get("canaries") or {}) for run in group)]
        if canary_domains:
            entry["canaries"] = {d: _canary_aggregate([(run.get("canaries") or {}).get(d) or {} for run in group])
                                 for d in canary_domains}
        match = slow.get(config_key({**first, "size": None if first.get("size") is None else str(first["size"])}))
        if match is not None and len(group) > 1:
            entry["slowdown"] = {**{d: match[d] for d in match.get("ci", {}) if d in match}, "ci": match.get("ci", {})}
        configurations.append(entry)
    return {"seeds": list(seeds), "n_seeds": len(seeds), "confidence": CONFIDENCE, "interval": "t",
            "runs": configurations,
            "pareto": pareto_aggregates(runs, confidence=CONFIDENCE, summary=pareto),
            "robustness": section_by_mode(robustness, runs, ("recovery_tokens", "recovery_fraction")),
            "refusal": section_by_mode(refusal, runs, ("forget_refusal_rate", "general_refusal_rate"))}


def build_results(exp, started: float, classifier: dict, runs: list[dict], slowdown: dict, robustness: dict,
                  refusal: dict, corpus: dict, stages) -> dict:
    """results.json as a dict (keys in the documented order; `seeds` and `aggregates` added for several seeds)."""
    pareto = pareto_summary(runs)
    return {
        "tokfilter_version": __version__, "experiment": exp.name, "seed": exp.seed, "seeds": exp.seed_list(),
        "wall_seconds": round(time.time() - started, 2),
        "classifier": classifier, "runs": runs, "pareto": pareto, "slowdown": slowdown,
        "robustness": robustness,
        "refusal": refusal,
        "aggregates": seed_aggregates(exp.seed_list(), runs, slowdown, robustness, refusal, pareto),
        "corpus": corpus,
        "stages": {"seconds": stages.timings, "cached": stages.cached},
        "config": exp.to_dict(),
    }


def print_summary(results: dict) -> None:
    """The runs' losses side by side, the classifier and the headline comparisons, on stdout."""
    c = results.get("classifier") or {}
    if c:
        print(f"classifier {c.get('kind')}: F1 {c.get('f1', 0):.3f}  AUROC {c.get('auroc', 0):.3f}  "
              f"threshold {c.get('threshold', 0):.2f}")
        natural = (c.get("natural") or {}).get("all")
        if natural:
            print(f"  natural-text dev set F1 {natural['f1']:.3f} (hand-labelled real documents; docs/classifiers.md)")
        teacher = c.get("teacher")
        if teacher:
            print(f"  trained on '{teacher['labels']}' labels of {teacher['documents']:,} documents; that teacher's "
                  f"F1 on the test split {teacher['test']['f1']:.3f} (weak-to-strong: the student's is above)")
        for b in c.get("baselines", []):
            print(f"  baseline {b.get('kind'):<10} F1 {b.get('f1', 0):.3f}")
    print(f"{'run':<28}{'forget':>9}{'retain':>9}{'general':>9}{'filtered':>10}")
    for run in results.get("runs", []):
        loss = run.get("loss", {})
        print(f"{run['name']:<28}{loss.get('forget', float('nan')):>9.3f}{loss.get('retain', float('nan')):>9.3f}"
              f"{loss.get('general', float('nan')):>9.3f}{run.get('tokens_filtered_frac') or 0:>10.1%}")
    canaried = [run for run in results.get("runs", []) if run.get("canaries")]
    if canaried:
        print("canary facts, accuracy on seen templates (medical / biology; chance "
              f"{canaried[0]['canaries']['forget'].get('chance', 0.25):.2f}):")
        for run in canaried:
            c = run["canaries"]
            print(f"  {run['name']:<26}{c['forget'].get('accuracy', float('nan')):>7.3f}"
                  f"{c['retain'].get('accuracy', float('nan')):>7.3f}")
    lines = describe(results.get("pareto") or {})
    if lines:
        print("token removal vs document filtering (loss change against the unfiltered run of the same size):")
        for line in lines:
            print(f"  {line}")
    aggregates = results.get("aggregates")
    if not aggregates:
        return
    if (aggregates.get("n_seeds") or 1) < 2:
        print("one seed: no interval (set `seeds = [0, 1, 2]` in the experiment for means and 95% intervals)")
        return
    print(f"over {aggregates['n_seeds']} seeds: mean [95% t-interval]")
    print(f"{'configuration':<28}{'n':>3}{'forget':>22}{'retain':>22}")
    for entry in aggregates.get("runs", []):
        print(f"{config_name(entry):<28}{entry['n']:>3}{_stat(entry['loss'].get('forget')):>22}"
              f"{_stat(entry['loss'].get('retain')):>22}")
    for line in describe_aggregates(aggregates.get("pareto") or {}):
        print(f"  {line}")


def _stat(stat: dict | None) -> str:
    return format_stat(stat, ".3f")
