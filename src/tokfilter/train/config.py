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

import difflib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from tokfilter.errors import UserError


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
    batch_size: int = 32  # sequences per optimizer step, all processes together
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
        config = cls()
        for section, values in data.items():
            if not isinstance(values, dict):
                raise UserError(f"{where}: '{section}' must be a [section] table{suggest(section, _sections())}")
            for key, value in values.items():
                set_value(config, f"{section}.{key}", value, where)
        return config


def _sections() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_type(value, annotation, key: str, where: str):
    kind = {"int": int, "float": float, "str": str, "bool": bool}[annotation]  # annotations are strings here
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise UserError(f"{where}: {key} = {value!r} should be of type {kind.__name__}")
    return value


def set_value(config: TrainConfig, dotted: str, value, where: str = "config") -> None:
    """Set `section.key` on a TrainConfig, checking that both exist and the type matches."""
    if "." not in dotted:
        raise UserError(f"{where}: '{dotted}' must be section.key{suggest(dotted, _all_keys())}")
    section, key = dotted.split(".", 1)
    if section not in _sections():
        raise UserError(f"{where}: unknown section '{section}'{suggest(section, _sections())}")
    obj = getattr(config, section)
    names = {f.name: f for f in fields(obj)}
    if key not in names:
        raise UserError(f"{where}: unknown key '{dotted}'{suggest(dotted, _all_keys())}")
    setattr(obj, key, _check_type(value, names[key].type, dotted, where))


def _all_keys() -> list[str]:
    sections = {f.name: f.default_factory() for f in fields(TrainConfig)}
    return [f"{name}.{f.name}" for name, obj in sections.items() for f in fields(obj)]


def parse_override(text: str) -> tuple[str, object]:
    """`section.key=value`; the value is read as a TOML value (`3e-4`, `true`, `"x"`), else as a bare string."""
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected section.key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a TOML file (or start from defaults when path is None) and apply `--set` overrides."""
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as err:
            raise UserError(f"{path}: invalid TOML ({err})") from None
        config = TrainConfig.from_dict(data, where=str(path))
    for text in overrides:
        key, value = parse_override(text)
        set_value(config, key, value, where=f"--set {text}")
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Value checks that the types alone do not catch."""
    choices = {"data.sampling": ("random", "sequential"), "filter.mode": ("none", "document", "mask", "remove"),
               "filter.doc_aggregate": ("mean", "frac"), "budget.unit": ("effective", "train"), "run.device": ("auto", "cpu", "cuda"),
               "run.dtype": ("auto", "float32", "bfloat16")}
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
