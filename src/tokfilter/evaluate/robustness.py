"""The robustness and refusal experiments as one call each, shaped for results.json, plus their figures.

`robustness_suite` runs the paper's comparison (PAPER.md, "Robustness"): the unfiltered baseline's held-out forget
loss is the target; RMU unlearns the baseline (hyperparameters swept, rmu.py); then the same finetuning attack
(attack.py) runs on every filtered model and on the RMU model. `refusal_suite` runs refusal SFT + evaluation
(refusal.py) on each model. Both return dicts ready for results.json's `robustness` and `refusal` keys (DESIGN.md):

    robustness: {"<run name>": {"recovery_tokens", "recovery_fraction", "curve", "lr", "baseline_loss", "reached",
                                "initial_loss"}, "<baseline>-rmu": {... plus "rmu": before/after losses}}
    refusal:    {"<run name>": {"forget_refusal_rate", "general_refusal_rate", "counts", "rule_rate_on_references"}}

`plot_recovery` / `plot_refusal` draw the figures with the report's own functions (tokfilter.report.figures), so the
demo's report and these PNGs look the same.
"""

from __future__ import annotations

from pathlib import Path

from tokfilter.posthoc.attack import as_texts, baseline_loss_of, finetune_attack
from tokfilter.posthoc.refusal import refusal_train_and_eval
from tokfilter.posthoc.rmu import rmu_unlearn

ATTACK_KEYS = ("recovery_tokens", "recovery_fraction", "curve", "lr", "baseline_loss", "reached", "initial_loss",
               "max_tokens")


def robustness_suite(runs: dict[str, str | Path], baseline: str, forget_train, forget_eval, retain_train,
                     out_dir: str | Path, retain_eval=None, lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3),
                     max_tokens: int = 200_000, rmu_hp: dict | None = None, eval_max_tokens: int = 16384,
                     seed: int = 0, device: str = "auto", progress: bool = True) -> dict:
    """{run name: attack summary} for every run except the baseline, plus "<baseline>-rmu" (see module docstring).

    runs: {name: checkpoint or run directory}; `baseline` names the unfiltered run among them.
    """
    from tokfilter.errors import UserError

    if baseline not in runs:
        raise UserError(f"robustness: baseline run {baseline!r} is not among the runs ({', '.join(runs)})")
    forget_train = as_texts(forget_train, "robustness forget training data")
    forget_eval = as_texts(forget_eval, "robustness forget held-out data")
    target = baseline_loss_of(runs[baseline], forget_eval, eval_max_tokens, device)
    rmu_dir = Path(out_dir) / f"{baseline}-rmu"
    rmu = rmu_unlearn(runs[baseline], forget_train, retain_train, rmu_dir, forget_eval_docs=forget_eval,
                      retain_eval_docs=retain_eval, eval_max_tokens=eval_max_tokens, seed=seed, device=device,
                      progress=progress, **(rmu_hp or {}))
    models = {name: path for name, path in runs.items() if name != baseline}
    models[f"{baseline}-rmu"] = rmu_dir
    table = {}
    for name, path in models.items():
        result = finetune_attack(path, forget_train, forget_eval, target, lrs, max_tokens, seed=seed,
                                 eval_max_tokens=eval_max_tokens, device=device, progress=progress)
        table[name] = {k: result[k] for k in ATTACK_KEYS}
    table[f"{baseline}-rmu"]["rmu"] = {k: rmu[k] for k in ("layer", "chosen", "before", "after", "steps", "lr")}
    return table


def refusal_suite(runs: dict[str, str | Path], out_dir: str | Path | None = None, **kwargs) -> dict:
    """{run name: refusal summary} after refusal SFT of each run (kwargs go to `refusal_train_and_eval`)."""
    table = {}
    for name, path in runs.items():
        target = None if out_dir is None else Path(out_dir) / f"{name}-refusal"
        result = refusal_train_and_eval(path, target, **kwargs)
        table[name] = {k: result[k] for k in ("forget_refusal_rate", "general_refusal_rate", "counts",
                                              "rule_rate_on_references")}
        if "judge" in result:
            table[name]["judge"] = result["judge"]
    return table


def plot_recovery(robustness: dict, path: str | Path, runs: list[dict] | None = None) -> Path | None:
    """Recovery curves (held-out forget loss vs finetuning tokens) of RMU vs the filtered runs, as a PNG.

    `runs` (results.json's run list) colours each curve by its filtering mode; names ending in -rmu are dashed."""
    from tokfilter.report.figures import recovery

    return recovery({"robustness": robustness, "runs": runs or []}, Path(path))


def plot_refusal(refusal: dict, path: str | Path) -> Path | None:
    """Refusal-rate bars (held-out medical vs general prompts) per model, as a PNG."""
    from tokfilter.report.figures import refusal as draw

    return draw({"refusal": refusal}, Path(path))
