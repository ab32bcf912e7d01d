"""The one builder of results.json's `robustness` and `refusal` sections, plus their figures.

`tokfilter run` / `tokfilter demo` (pipeline/steps/robustness.py, refusal.py) choose the models and the texts and
call these builders; the tests call the same builders, so what is tested is what the demo writes.

`robustness_section` is the paper's comparison (PAPER.md, "Robustness"): the unfiltered baseline's held-out forget
loss is the target; RMU unlearns the baseline (hyperparameters swept, rmu.py); then the same finetuning attack
(attack.py) runs on every other model and on the RMU model. `refusal_section` runs refusal SFT + evaluation
(refusal.py) on each model. The shapes (DESIGN.md; results.json keys are a contract):

    robustness: {"<model>": {"recovery_tokens", "recovery_fraction", "curve", "lr", "baseline_loss",
                             "initial_loss", "reached"},
                 "<baseline>-rmu": {... the same keys, plus "unlearning": {"before", "after", "chosen", "layer",
                                                                          "sweep"}}}
    refusal:    {"<model>": {"forget_refusal_rate", "general_refusal_rate", "counts"}}

The calls, their order and their seeds are fixed: the baseline's loss, RMU, then the attacks in the order of
`models` with the RMU model last; one refusal SFT per model in order. Changing them changes the demo's numbers.

`plot_recovery` / `plot_refusal` draw the figures with the report's own functions (tokfilter.report.figures), so the
demo's report and these PNGs look the same.
"""

from __future__ import annotations

from pathlib import Path

from tokfilter.errors import UserError
from tokfilter.posthoc.attack import baseline_loss_of, finetune_attack
from tokfilter.posthoc.refusal import refusal_train_and_eval
from tokfilter.posthoc.rmu import rmu_unlearn
from tokfilter.posthoc.settings import RefusalSettings, RobustnessSettings

ATTACK_KEYS = ("recovery_tokens", "recovery_fraction", "curve", "lr", "baseline_loss", "initial_loss", "reached")
UNLEARNING_KEYS = ("layer", "before", "after", "chosen", "sweep")  # in the RMU report's order
REFUSAL_KEYS = ("forget_refusal_rate", "general_refusal_rate", "counts")


def rmu_name(baseline: str) -> str:
    """The robustness entry (and run directory name) of the RMU-unlearned baseline."""
    return f"{baseline}-rmu"


def robustness_section(models: dict[str, Path], baseline: str, forget_train: list[str], retain_train: list[str],
                       forget_eval: list[str], rmu_dir: Path, settings: RobustnessSettings, seed: int,
                       progress: bool = False, device: str = "auto", probes: dict | None = None) -> dict:
    """results.json's `robustness`: {model: attack summary} for every model but the baseline, then
    `<baseline>-rmu` (see the module docstring).

    models: {name: checkpoint or run directory}, the baseline (unfiltered) among them; forget_train / retain_train:
    finetuning and RMU text; forget_eval: held-out forget text for every loss; rmu_dir: where the RMU model is saved.
    RMU holds out every 10th forget / retain training text for its own before/after losses. `probes` ({key: model ->
    JSON}, e.g. canary accuracy) are measured on every attacked model before and after the attack and stored under
    their key: {"before": ..., "after": ...} (for the RMU model "before" is after unlearning).
    """
    if baseline not in models:
        raise UserError(f"robustness: baseline run {baseline!r} is not among the runs ({', '.join(models)})")
    target = baseline_loss_of(models[baseline], forget_eval, device=device)
    rmu = rmu_unlearn(models[baseline], forget_train, retain_train, rmu_dir, steps=settings.rmu_steps,
                      lr=settings.rmu_lr, batch_size=settings.rmu_batch_size, coeffs=tuple(settings.rmu_coeffs),
                      alphas=tuple(settings.rmu_alphas), seed=seed, device=device, progress=progress)
    attacked = {name: Path(path) for name, path in models.items() if name != baseline}
    attacked[rmu_name(baseline)] = Path(rmu_dir)
    section: dict = {}
    for name, model_dir in attacked.items():
        attack = finetune_attack(model_dir, forget_train, forget_eval, baseline_loss=target, lrs=tuple(settings.lrs),
                                 max_tokens=settings.max_tokens, seed=seed, device=device, progress=progress,
                                 probes=probes)
        section[name] = {key: attack[key] for key in ATTACK_KEYS} | attack.get("probes", {})
    section[rmu_name(baseline)]["unlearning"] = {key: value for key, value in rmu.items() if key in UNLEARNING_KEYS}
    return section


def refusal_section(models: dict[str, Path], settings: RefusalSettings, seed: int, progress: bool = False,
                    device: str = "auto") -> dict:
    """results.json's `refusal`: {model: refusal rates and counts} after refusal SFT of each model (not saved)."""
    section = {}
    for name, model_dir in models.items():
        result = refusal_train_and_eval(model_dir, None, n_train=settings.n_train, n_eval=settings.n_eval,
                                        steps=settings.steps, seed=seed, device=device, progress=progress)
        section[name] = {key: result[key] for key in REFUSAL_KEYS}
    return section


def plot_recovery(robustness: dict, path: str | Path, runs: list[dict] | None = None) -> Path | None:
    """Recovery curves (held-out forget loss vs finetuning tokens) of RMU vs the filtered runs, as a PNG.

    `runs` (results.json's run list) colours each curve by its filtering mode; names ending in -rmu are dashed."""
    from tokfilter.report.figures import recovery

    return recovery({"robustness": robustness, "runs": runs or []}, Path(path))


def plot_refusal(refusal: dict, path: str | Path) -> Path | None:
    """Refusal-rate bars (held-out medical vs general prompts) per model, as a PNG."""
    from tokfilter.report.figures import refusal as draw

    return draw({"refusal": refusal}, Path(path))
