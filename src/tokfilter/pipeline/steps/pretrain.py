"""pretrain: one GPT per size x mode x threshold (none / document / mask / remove) x seed, each its own cached step.

`[[pretrain.variants]]` (ablations: label noise, delayed filtering) train every filtered run once per variant, named
`{mode}-t{threshold}-{variant}-{size}`, with the variant's `tokfilter train` overrides applied last.
`plan(exp)` lists the runs, seed by seed (each seed a whole replicate of the grid): with one seed the names are
`{mode}[-t{threshold}]-{size}` as they always were; with several (`seeds` in the experiment) each gets `-s{seed}`.
Every run dict carries its `seed`; `run_one(ctx, run)` trains one into runs/<name>/ with the experiment's `[pretrain.train]`
settings and returns its results.json record (results.run_record).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict

from tokfilter.pipeline.context import Context
from tokfilter.pipeline.experiment import Experiment
from tokfilter.pipeline.results import run_record
from tokfilter.train.config import TrainConfig, set_value, validate

NAME = "pretrain"
GRID_KEYS = ("sizes", "modes", "thresholds", "doc_thresholds", "doc_token_threshold", "baseline_sizes", "variants")


def needs(exp: Experiment) -> list[str]:
    return ["shards", "annotate"] if exp.pretrain.scores == "forget" else ["shards"]


def config(ctx: Context, run: dict) -> dict:
    """A run's cache key: the shared settings (not the grid) plus this run's own entry."""
    shared = {k: v for k, v in asdict(ctx.exp.pretrain).items() if k not in GRID_KEYS}
    return {**shared, **run, "seed": run.get("seed", ctx.exp.seed)}


def grid(exp: Experiment) -> list[dict]:
    """The runs of one seed (names without a seed suffix)."""
    p = exp.pretrain
    runs = []
    for size in p.sizes:
        for mode in p.modes:
            thresholds = [None] if mode == "none" else (p.doc_thresholds if mode == "document" else p.thresholds)
            for threshold in thresholds:
                for variant in (p.variants or [None]) if threshold is not None else [None]:
                    tag = "" if variant is None else f"-{variant.name}"
                    name = f"{mode}-{size}" if threshold is None else f"{mode}-t{threshold:g}{tag}-{size}"
                    run = {"name": name, "size": size, "mode": mode, "threshold": threshold}
                    if mode == "document":  # the token threshold behind the fraction-of-forget-tokens aggregate
                        run["token_threshold"] = p.doc_token_threshold
                    if variant is not None:
                        run |= {"variant": variant.name, "variant_set": dict(variant.set)}
                    runs.append(run)
    for size in p.baseline_sizes:
        if size not in p.sizes:
            runs.append({"name": f"none-{size}", "size": size, "mode": "none", "threshold": None})
    return runs


def plan(exp: Experiment) -> list[dict]:
    """Every run of the experiment: the grid once per seed (module docstring), each with its `seed`."""
    seeds = exp.seed_list()
    return [{**run, "name": run["name"] if len(seeds) == 1 else f"{run['name']}-s{seed}", "seed": seed}
            for seed in seeds for run in grid(exp)]


def base_train_config(exp: Experiment) -> TrainConfig:
    """The `tokfilter train` config every run starts from: defaults plus `[pretrain.train]`."""
    config = TrainConfig()
    for key, value in exp.pretrain.train.items():
        set_value(config, key, value, where="pretrain.train")
    return config


def train_config(ctx: Context, run: dict) -> TrainConfig:
    p = ctx.exp.pretrain
    config = base_train_config(ctx.exp)
    config.model.preset = run["size"]
    config.data.shards = str(ctx.out / "shards")
    config.eval.shards = str(ctx.out / "eval-shards")
    config.eval.labels = "truth"
    config.filter.mode = run["mode"]
    config.filter.scores = p.scores
    if run["mode"] == "document":
        config.filter.doc_aggregate = p.doc_aggregate
        config.filter.doc_threshold = run["threshold"]
        config.filter.threshold = run["token_threshold"]
    elif run["threshold"] is not None:
        config.filter.threshold = run["threshold"]
    for key, value in (run.get("variant_set") or {}).items():
        set_value(config, key, value, where=f"pretrain.variants {run['variant']!r}")
    config.run.seed = run.get("seed", ctx.exp.seed)
    config.run.progress = False
    validate(config)
    return config


def run_one(ctx: Context, run: dict) -> dict:
    from tokfilter.train.loop import train  # torch

    config = train_config(ctx, run)
    run_dir = ctx.run_dir(run["name"])
    shutil.rmtree(run_dir, ignore_errors=True)
    return run_record(run, train(config, run_dir))
