"""Typed training configuration: TOML sections -> dataclasses, plus `--set section.key=value` overrides.

Configs are data, never code (PAPER.md lists `exec`-ed configs among the research code's bugs). Every key is checked:
an unknown section or key, or a value of the wrong type, is a `UserError` naming the key and, where one is close, the
key that was probably meant. Example:

    [model]
    preset = "tiny-1m"
    seq_len = 128
    [data]
    shards = "out/shards"
    batch_size = 32
    [filter]
    mode = "remove"
    threshold = 0.5
    [eval]
    shards = "out/val-shards"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from tokfilter.config import from_dict, load, set_dotted, suggest
from tokfilter.errors import UserError
from tokfilter.filtering import DOC_AGGREGATES, GRANULARITIES, MODES
from tokfilter.runtime import DEVICES

BATCH_TARGETS = ("fixed", "rows")  # data.batch_targets (see tokfilter.train.data)


@dataclass
class ModelSection:
    preset: str = "tiny-1m"  # a name from tokfilter.model.PRESETS, or "" to use n_layer / d_model / n_head
    n_layer: int = 0  # >0 overrides the preset
    d_model: int = 0
    n_head: int = 0
    seq_len: int = 128
    rope_base: float = 10000.0
    mup_base_width: int = 128
    init_std: float = 0.02


@dataclass
class DataSection:
    shards: str = ""  # training shard directory
    sampling: str = "random"  # random | sequential
    batch_size: int = 32  # sequences per optimizer step, all processes together (an unfiltered step)
    batch_targets: str = "fixed"  # fixed: every step has batch_size x seq_len loss-bearing targets (equal steps
    #                               across modes) | rows: batch_size sequences per step whatever is masked (old)
    micro_batch_size: int = 0  # sequences per forward pass per process; 0 = batch_size / processes


@dataclass
class FilterSection:
    mode: str = "none"  # none | document | mask | remove
    scores: str = "forget"  # score sidecar name: NNNNN.scores.<name>.npy
    threshold: float = 0.5  # token is forget when p(forget) >= threshold
    doc_threshold: float = 0.5  # document mode: drop when the aggregate >= doc_threshold
    doc_aggregate: str = "mean"  # mean (mean score) | frac (fraction of tokens >= threshold)
    noise: float = 0.0  # flip each decision with this probability
    delay: float = 0.0  # start filtering after this fraction of the token budget
    granularity: str = "token"  # mask/remove decide per token | sentence | document (mean score of the unit)


@dataclass
class OptimSection:
    lr: float = 3e-3  # peak learning rate at the muP base width
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.1  # cosine decays to min_lr_frac * lr
    grad_clip: float = 1.0  # 0 disables


@dataclass
class BudgetSection:
    tokens_per_param: float = 20.0  # effective-token budget = tokens_per_param * parameters ...
    tokens: int = 0  # ... unless this is > 0
    unit: str = "effective"  # effective (unmasked targets; the paper) | train (every token: equal compute)
    max_steps: int = 0  # optional hard cap on optimizer steps (0 = none)


@dataclass
class EvalSection:
    shards: str = ""  # held-out shard directory with per-document "domain"; "" disables evaluation
    labels: str = "truth"  # score sidecar defining each token's domain for own-domain losses ("" = none)
    threshold: float = 0.5
    forget_domain: str = "forget"  # the domain whose own tokens are the forget-labelled ones
    every: int = 0  # evaluate every N steps (0 = at the end only)
    max_tokens: int = 65536  # tokens per domain evaluated
    batch_size: int = 16


@dataclass
class RunSection:
    seed: int = 0
    out: str = ""  # output directory (the CLI's --out wins)
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | float32 | bfloat16
    compile: bool = False  # torch.compile the model
    log_every: int = 10
    save_every: int = 0  # checkpoint every N steps (0 = at the end only)
    progress: bool = True
    threads: int = 0  # torch.set_num_threads on CPU (0 = leave as is)


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    filter: FilterSection = field(default_factory=FilterSection)
    optim: OptimSection = field(default_factory=OptimSection)
    budget: BudgetSection = field(default_factory=BudgetSection)
    eval: EvalSection = field(default_factory=EvalSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> TrainConfig:
        return from_dict(cls, data, where)


def set_value(config: TrainConfig, dotted: str, value, where: str = "config") -> None:
    """Set `section.key` on a TrainConfig, checking that both exist and the type matches."""
    set_dotted(config, dotted, value, where)


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a TOML file (or start from defaults when path is None), apply `--set` overrides, validate."""
    config = load(TrainConfig, path, overrides)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Value checks that the types alone do not catch."""
    choices = {"data.sampling": ("random", "sequential"), "data.batch_targets": BATCH_TARGETS, "filter.mode": MODES,
               "filter.doc_aggregate": DOC_AGGREGATES, "filter.granularity": GRANULARITIES,
               "budget.unit": ("effective", "train"), "run.device": DEVICES, "run.dtype": ("auto", "float32", "bfloat16")}
    for dotted, allowed in choices.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if value not in allowed:
            raise UserError(f"config: {dotted} = {value!r} is not one of {', '.join(allowed)}"
                            f"{suggest(value, list(allowed))}")
    for dotted in ("filter.threshold", "filter.doc_threshold", "eval.threshold", "filter.noise", "filter.delay",
                   "optim.warmup_frac", "optim.min_lr_frac"):
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if not 0.0 <= value <= 1.0:
            raise UserError(f"config: {dotted} = {value} must be between 0 and 1")
    if config.data.batch_size <= 0 or config.model.seq_len <= 0:
        raise UserError("config: data.batch_size and model.seq_len must be positive")
    for dotted in ("model.n_layer", "model.d_model", "model.n_head", "data.micro_batch_size", "budget.tokens_per_param",
                   "budget.tokens", "budget.max_steps", "eval.every", "run.log_every", "run.save_every",
                   "run.threads"):  # where 0 means something, it keeps that meaning
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if value < 0:
            raise UserError(f"config: {dotted} must be >= 0, not {value}")
