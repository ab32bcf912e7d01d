"""Pretraining with document / token-mask / token-removal filtering (PAPER.md "Filtering during pretraining").

    from tokfilter.train import TrainConfig, load_config, train
    summary = train(load_config("run.toml", ["filter.mode=remove"]), "out/runs/remove")

`config` (typed TOML), `data` (batches + filtering, pure numpy), `loop` (optimizer, schedule, DDP, eval hook),
`checkpoint` (safetensors directories), `heldout` (per-domain losses), `cli` (`tokfilter train`).
"""

from tokfilter.train.checkpoint import load_model, save_checkpoint
from tokfilter.train.config import TrainConfig, load_config
from tokfilter.train.loop import train

__all__ = ["TrainConfig", "load_config", "load_model", "save_checkpoint", "train"]
