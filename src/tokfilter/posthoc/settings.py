"""The one set of defaults of the post-hoc experiments (attack, RMU, refusal SFT).

`RobustnessSettings` and `RefusalSettings` are the experiment file's `[robustness]` and `[refusal]` sections: the
pipeline reads them, `tokfilter attack / unlearn / align` take their flag defaults from them, and the low-level
functions (attack.finetune_attack, rmu.rmu_unlearn, refusal.refusal_train_and_eval) default to the same values.
Their field names and order are part of the stage cache key and of results.json's `config`, so keep them stable.

Knobs the experiment file does not expose (batch sizes of the attack and of SFT, the held-out token budget, the
sampling settings, ...) are the module constants below, defined once here for the functions and the CLI alike.

This module imports nothing heavy (no torch), so the experiment loader and the CLI can read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ----- the finetuning attack (attack.py)
ATTACK_BATCH_SIZE = 8  # sequences per attack step
EVAL_MAX_TOKENS = 16384  # held-out tokens per loss evaluation (attack and RMU)

# ----- RMU (rmu.py)
RMU_C_SCALE = "norm"  # c in units of the layer's mean activation norm ("absolute": as given)
RMU_MAX_RETAIN_INCREASE = 0.1  # nats of retain-loss rise a setting may cost and still be chosen

# ----- refusal SFT and sampling (refusal.py, generate.py)
SFT_LR = 3e-3
SFT_BATCH_SIZE = 16
REFUSAL_MAX_NEW_TOKENS = 48
TEMPERATURE = 0.8
GENERATE_MAX_NEW_TOKENS = 128


@dataclass
class RobustnessSettings:
    """Finetuning attack on each filtered model and on the RMU-unlearned baseline (experiment `[robustness]`)."""

    enabled: bool = True
    lrs: list[float] = field(default_factory=lambda: [3e-4, 1e-3])  # attack lrs; 3e-4 won on every demo model
    max_tokens: int = 60_000  # attack finetuning tokens per learning rate
    rmu_steps: int = 60
    rmu_lr: float = 0.01
    rmu_batch_size: int = 16  # windows per RMU step (forget and retain each)
    rmu_coeffs: list[float] = field(default_factory=lambda: [4.0, 8.0])  # c, in units of the mean activation norm
    rmu_alphas: list[float] = field(default_factory=lambda: [10.0, 30.0])  # retain weights swept
    optional: bool = False  # true: skip (reason recorded) when the data cannot support it, instead of failing


@dataclass
class RefusalSettings:
    """Refusal SFT and evaluation of each mode's model (experiment `[refusal]`)."""

    enabled: bool = True
    n_train: int = 300  # training examples of each kind (medical refusals, general answers)
    n_eval: int = 60  # held-out prompts of each kind
    steps: int = 120  # SFT steps
    optional: bool = False  # true: skip (reason recorded) when the data cannot support it, instead of failing


ROBUSTNESS_DEFAULTS = RobustnessSettings()
REFUSAL_DEFAULTS = RefusalSettings()
