"""How classifiers are trained: `ClassifierSettings` (typed), the named budgets, and the override check.

Light on purpose (no torch): the experiment loader validates `[classifier.settings]` up front with it, before any
stage runs. Budgets were measured on the demo exact-span benchmark, test split (docs/benchmarks.md
"classifier_f1"): quick -> biLM F1 0.899 (forward-only 0.850, windowed 0.867); full -> biLM F1 0.910.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tokfilter.config import from_dict
from tokfilter.errors import UserError


@dataclass
class ClassifierSettings:
    """How a classifier is trained: the `[classifier.settings]` table and `classifier train --set KEY=VALUE`.

    The defaults are the `quick` budget; `BUDGETS` holds the named presets. Unknown keys and wrong types are
    UserErrors with a did-you-mean (tokfilter.config)."""

    d_model: int = 96  # biLM width (each direction)
    n_layer: int = 2
    n_head: int = 4
    seq_len: int = 128
    batch_size: int = 32
    init: str = ""  # LM weights to start from: "" = random, "packaged" = the shipped broad-text LMs
    # (classify/pretrained, scripts/build_bilm_init.py), or a folder holding lm.safetensors + lm.json
    pretrain_steps: int = 30  # LM pretraining steps of each direction (on the training documents, after `init`)
    finetune_steps: int = 150  # end-to-end token-classification steps
    mix_fraction: float = 0.0  # sentence mixes added to the training documents, as a share of them (augment.py)
    mix_max_inserts: int = 3  # runs of sentences inserted per mix
    mix_max_sentences: int = 2  # sentences per run
    natural_copies: int = 0  # copies of the hand-labelled natural training documents added (classify/natural.py)
    teacher_copies: int = 0  # copies of the teacher-labelled broad documents added (classify/teacher, natural.py)
    lr: float = 3e-3  # LM pretraining peak lr
    finetune_lr: float = 1e-3
    lm_weight: float = 0.0  # weight of the LM loss kept during fine-tuning
    head: str = "conv"  # linear | mlp | conv
    head_hidden: int = 32
    conv_kernel: int = 7
    layers: list[int] = field(default_factory=lambda: [1, 2])  # hidden states fed to the head (0 = embeddings)
    encoder_steps: int = 0  # fine-tuning steps of the MiniLM encoder baseline (0 = skip it)
    doc_label: str = "domain"  # document classifier labels: domain (provenance) | fraction (of forget tokens)
    doc_fraction: float = 0.5  # with doc_label = fraction: forget when at least this share of tokens is labelled
    scoring: str = "window"  # biLM / forward-only scoring: window (document context, the paper's) | sentence-min
    # (the lower of the window score and the sentence read alone; docs/classifiers.md "Context bleeding")


HEADS = ("linear", "mlp", "conv")
DOC_LABELS = ("domain", "fraction")
SCORINGS = ("window", "sentence-min")  # how a biLM scores (classify.bilm.BiLMClassifier)

BUDGETS: dict[str, ClassifierSettings] = {
    "quick": ClassifierSettings(),
    "full": ClassifierSettings(pretrain_steps=50, finetune_steps=200, head_hidden=64, conv_kernel=9,
                               encoder_steps=300),
}


def budget_settings(budget: str | dict, overrides: dict | None = None) -> dict:
    """A budget's settings with `overrides` applied, checked against `ClassifierSettings`, as a plain dict."""
    if isinstance(budget, dict):
        base, overrides = BUDGETS["quick"], {**budget, **(overrides or {})}
    elif budget in BUDGETS:
        base = BUDGETS[budget]
    else:
        raise UserError(f"unknown classifier budget {budget!r} (expected {' or '.join(BUDGETS)})")
    settings = from_dict(ClassifierSettings, {**asdict(base), **(overrides or {})}, "classifier settings")
    problems = _problems(settings)
    if problems:
        raise UserError(f"classifier settings: {problems[0]}")
    return asdict(settings)


def _problems(s: ClassifierSettings) -> list[str]:
    """What makes these settings unusable, in words (empty when they are fine)."""
    problems = [f"{name} = {getattr(s, name)} (expected >= {low})" for name, low in (
        ("d_model", 1), ("n_layer", 1), ("n_head", 1), ("seq_len", 2), ("batch_size", 1), ("pretrain_steps", 0),
        ("finetune_steps", 0), ("encoder_steps", 0), ("mix_fraction", 0), ("mix_max_inserts", 1),
        ("mix_max_sentences", 1), ("natural_copies", 0), ("teacher_copies", 0),
        ("head_hidden", 1), ("conv_kernel", 1), ("lm_weight", 0))
        if getattr(s, name) < low]
    problems += [f"{name} = {getattr(s, name)} (expected > 0)" for name in ("lr", "finetune_lr") if getattr(s, name) <= 0]
    if s.n_head >= 1 and s.d_model % s.n_head:
        problems.append(f"d_model = {s.d_model} is not a multiple of n_head = {s.n_head}")
    if s.head not in HEADS:
        problems.append(f"head = {s.head!r} (expected one of {', '.join(HEADS)})")
    if not s.layers or any(not 0 <= layer <= s.n_layer for layer in s.layers):
        problems.append(f"layers = {s.layers} (expected hidden-state indices 0..n_layer = 0..{s.n_layer})")
    if s.doc_label not in DOC_LABELS:
        problems.append(f"doc_label = {s.doc_label!r} (expected one of {', '.join(DOC_LABELS)})")
    if s.scoring not in SCORINGS:
        problems.append(f"scoring = {s.scoring!r} (expected one of {', '.join(SCORINGS)})")
    if not 0 < s.doc_fraction <= 1:
        problems.append(f"doc_fraction = {s.doc_fraction} (expected in (0, 1])")
    return problems
