"""Pretraining with document / token-mask / token-removal filtering (PAPER.md "Filtering during pretraining").

    from tokfilter.train import TrainConfig, load_config, train
    summary = train(load_config("run.toml", ["filter.mode=remove"]), "out/runs/remove")

`config` (typed TOML), `data` (batches + filtering, pure numpy), `loop` (optimizer, schedule, DDP, eval hook),
`checkpoint` (safetensors directories), `heldout` (per-domain losses), `cli` (`tokfilter train`).
"""

from tokfilter.train.config import TrainConfig, load_config

# checkpoint and loop load torch: imported on first use, so reading a config (the experiment loader, --plan) is light.
_LAZY = {"load_model": "checkpoint", "save_checkpoint": "checkpoint", "train": "loop"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"tokfilter.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tokfilter.train' has no attribute {name!r}")


__all__ = ["TrainConfig", "load_config", *_LAZY]
