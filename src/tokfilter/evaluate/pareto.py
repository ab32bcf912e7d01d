"""The paper's Pareto claim, checked on a set of runs: does token filtering remove as much as document filtering
while keeping more of the retain domain?

For each size, every run's change against that size's unfiltered run is (forget loss increase, retain loss increase).
For each document-filtered run D and each token mode (mask, remove), the best token run R is the one with the largest
forget increase among those whose retain increase is lower than D's. The claim holds against D when
forget_increase(R) >= `ratio` x forget_increase(D) (0.9 by default) with D's forget increase positive.
With several seeds (`seed` on the runs), runs are compared within (size, seed): each seed's filtered runs against
that seed's unfiltered run (the size's first unfiltered run when that seed has none), so seed noise is not mistaken
for a filtering effect; each comparison names its `seed`.

`pareto_aggregates` summarises the seeds: for every (document run configuration, token run configuration) pair of
a size, the share of seeds where the token run meets the claim against the document run (retain increase lower,
forget increase >= `ratio` x the document run's, which is positive) and the mean and t-interval over seeds of both
runs' forget and retain increases; and per (document configuration, token mode) the share of seeds where
`pareto_summary`'s verdict (the best cheaper token run) holds. A configuration is (mode, size, threshold,
doc_threshold) (evaluate.intervals.CONFIG_KEYS).

    summary = pareto_summary(results["runs"])      # results.json["pareto"]
    seeds = pareto_aggregates(results["runs"])     # results.json["aggregates"]["pareto"]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tokfilter.evaluate.intervals import config_key, config_of, mean_interval

TOKEN_MODES = ("remove", "mask")


def _delta(run: dict, base: dict, domain: str) -> float | None:
    a, b = (run.get("loss") or {}).get(domain), (base.get("loss") or {}).get(domain)
    return None if a is None or b is None else float(a) - float(b)


def _replicates(runs: Sequence[dict]) -> Iterator[tuple[str, int | None, dict, list[dict]]]:
    """(size, seed, unfiltered run, that size and seed's runs) for every (size, seed) with a baseline."""
    for size, seed in dict.fromkeys((run.get("size"), run.get("seed")) for run in runs):
        same = [run for run in runs if run.get("size") == size and run.get("seed") == seed]
        base = next((run for run in same if run["mode"] == "none"), None)
        if base is None:
            base = next((run for run in runs if run.get("size") == size and run["mode"] == "none"), None)
            if base is None:
                continue
            same = [base, *same]
        yield size, seed, base, same


def _holds(doc: tuple, token: tuple, ratio: float) -> bool:
    """The claim for one pair of (forget increase, retain increase)."""
    return token[1] < doc[1] and doc[0] > 0 and token[0] / doc[0] >= ratio


def pareto_summary(runs: Sequence[dict], ratio: float = 0.9) -> dict:
    """{"ratio", "comparisons": [...], "holds": {mode: [document run names]}} (see module docstring)."""
    comparisons = []
    holds: dict[str, list[str]] = {mode: [] for mode in TOKEN_MODES}
    for size, seed, base, same in _replicates(runs):
        changes = {run["name"]: (_delta(run, base, "forget"), _delta(run, base, "retain")) for run in same}
        for doc in (run for run in same if run["mode"] == "document"):
            doc_forget, doc_retain = changes[doc["name"]]
            if doc_forget is None or doc_retain is None:
                continue
            entry = {"size": size, "seed": seed, "document_run": doc["name"],
                     "document": {"forget_increase": round(doc_forget, 4), "retain_increase": round(doc_retain, 4),
                                  "filtered_frac": doc.get("tokens_filtered_frac")}}
            for mode in TOKEN_MODES:
                candidates = [(changes[r["name"]], r) for r in same if r["mode"] == mode
                              and None not in changes[r["name"]] and changes[r["name"]][1] < doc_retain]
                if not candidates:
                    entry[mode] = None
                    continue
                (forget, retain), best = max(candidates, key=lambda c: c[0][0])
                share = forget / doc_forget if doc_forget > 0 else None
                ok = share is not None and share >= ratio
                entry[mode] = {"run": best["name"], "forget_increase": round(forget, 4),
                               "retain_increase": round(retain, 4), "forget_ratio": None if share is None
                               else round(share, 4), "filtered_frac": best.get("tokens_filtered_frac"), "holds": ok}
                if ok:
                    holds[mode].append(doc["name"])
            comparisons.append(entry)
    return {"ratio": ratio, "comparisons": comparisons, "holds": holds}


def pareto_aggregates(runs: Sequence[dict], ratio: float = 0.9, confidence: float = 0.95,
                      summary: dict | None = None) -> dict:
    """{"ratio", "confidence", "pairs": [...], "verdicts": [...]} over seeds (module docstring).

    pairs[]: {"size", "n", "seeds", "holds_share", "document": {config, "runs", "forget_increase",
    "retain_increase"}, "token": {...the same}} with each increase a mean_interval ({"mean", "ci", "sd", "n"});
    verdicts[]: {"size", "document": {config}, "mode", "n", "seeds", "holds_share", "chosen": {token run name:
    times chosen}} from `summary` (pareto_summary(runs, ratio) when not given)."""
    pairs: dict[tuple, dict] = {}
    by_name = {run["name"]: run for run in runs}
    for size, seed, base, same in _replicates(runs):
        changes = {run["name"]: (_delta(run, base, "forget"), _delta(run, base, "retain")) for run in same}
        for doc in (run for run in same if run["mode"] == "document" and None not in changes[run["name"]]):
            for token in (run for run in same if run["mode"] in TOKEN_MODES and None not in changes[run["name"]]):
                entry = pairs.setdefault((size, config_key(doc), config_key(token)), {
                    "size": size, "document": config_of(doc), "token": config_of(token), "seeds": [],
                    "document_runs": [], "token_runs": [], "doc": [], "tok": [], "holds": []})
                entry["seeds"].append(seed)
                entry["document_runs"].append(doc["name"])
                entry["token_runs"].append(token["name"])
                entry["doc"].append(changes[doc["name"]])
                entry["tok"].append(changes[token["name"]])
                entry["holds"].append(_holds(changes[doc["name"]], changes[token["name"]], ratio))
    out_pairs = []
    for entry in pairs.values():
        n = len(entry["holds"])
        sides = {}
        for side, key, names in (("document", "doc", "document_runs"), ("token", "tok", "token_runs")):
            sides[side] = {**entry[side], "runs": entry[names],
                           "forget_increase": mean_interval((c[0] for c in entry[key]), confidence),
                           "retain_increase": mean_interval((c[1] for c in entry[key]), confidence)}
        out_pairs.append({"size": entry["size"], "n": n, "seeds": entry["seeds"],
                          "holds_share": sum(entry["holds"]) / n, **sides})
    verdicts: dict[tuple, dict] = {}
    for comparison in (summary or pareto_summary(runs, ratio))["comparisons"]:
        doc = by_name.get(comparison["document_run"])
        if doc is None:
            continue
        for mode in TOKEN_MODES:
            if mode not in comparison:
                continue
            verdict = comparison[mode]
            entry = verdicts.setdefault((comparison["size"], config_key(doc), mode), {
                "size": comparison["size"], "document": config_of(doc), "mode": mode, "n": 0, "seeds": [],
                "holds_share": 0.0, "chosen": {}, "_holds": 0})
            entry["n"] += 1
            entry["seeds"].append(comparison.get("seed"))
            entry["_holds"] += bool(verdict and verdict["holds"])
            if verdict:
                entry["chosen"][verdict["run"]] = entry["chosen"].get(verdict["run"], 0) + 1
    for entry in verdicts.values():
        entry["holds_share"] = entry.pop("_holds") / entry["n"]
    return {"ratio": ratio, "confidence": confidence, "pairs": out_pairs, "verdicts": list(verdicts.values())}


def describe_aggregates(aggregates: dict) -> list[str]:
    """One line per (document configuration, removal) verdict over seeds, for the terminal summary."""
    lines = []
    for v in aggregates.get("verdicts", []):
        if v["mode"] == "remove":
            threshold = v["document"].get("doc_threshold")
            name = "document" if threshold is None else f"document >= {threshold:g}"
            lines.append(f"{name} ({v['size']}) vs the best cheaper removal run: the claim holds in "
                         f"{round(v['holds_share'] * v['n'])}/{v['n']} seeds")
    return lines


def describe(summary: dict) -> list[str]:
    """One line per (document run, removal) comparison, for the terminal summary."""
    lines = []
    for entry in summary.get("comparisons", []):
        d, r = entry["document"], entry.get("remove")
        head = (f"{entry['document_run']}: forget {d['forget_increase']:+.3f} retain {d['retain_increase']:+.3f}")
        if r is None:
            lines.append(f"{head}; no removal run costs less retain loss")
        else:
            share = "n/a" if r["forget_ratio"] is None else f"{r['forget_ratio']:.0%}"
            lines.append(f"{head}; best {r['run']}: forget {r['forget_increase']:+.3f} ({share}) retain "
                         f"{r['retain_increase']:+.3f} -> {'holds' if r['holds'] else 'does not hold'}")
    return lines
