"""The paper's Pareto claim, checked on a set of runs: does token filtering remove as much as document filtering
while keeping more of the retain domain?

For each size, every run's change against that size's unfiltered run is (forget loss increase, retain loss increase).
For each document-filtered run D and each token mode (mask, remove), the best token run R is the one with the largest
forget increase among those whose retain increase is lower than D's. The claim holds against D when
forget_increase(R) >= `ratio` x forget_increase(D) (0.9 by default) with D's forget increase positive.
With several seeds (`seed` on the runs), runs are compared within (size, seed): each seed's filtered runs against
that seed's unfiltered run (the size's first unfiltered run when that seed has none), so seed noise is not mistaken
for a filtering effect; each comparison names its `seed`.

    summary = pareto_summary(results["runs"])   # results.json["pareto"]
"""

from __future__ import annotations

from collections.abc import Sequence

TOKEN_MODES = ("remove", "mask")


def _delta(run: dict, base: dict, domain: str) -> float | None:
    a, b = (run.get("loss") or {}).get(domain), (base.get("loss") or {}).get(domain)
    return None if a is None or b is None else float(a) - float(b)


def pareto_summary(runs: Sequence[dict], ratio: float = 0.9) -> dict:
    """{"ratio", "comparisons": [...], "holds": {mode: [document run names]}} (see module docstring)."""
    comparisons = []
    holds: dict[str, list[str]] = {mode: [] for mode in TOKEN_MODES}
    for size, seed in dict.fromkeys((run["size"], run.get("seed")) for run in runs):
        same = [run for run in runs if run["size"] == size and run.get("seed") == seed]
        base = next((run for run in same if run["mode"] == "none"), None)
        if base is None:
            base = next((run for run in runs if run["size"] == size and run["mode"] == "none"), None)
            if base is None:
                continue
            same = [base, *same]
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
