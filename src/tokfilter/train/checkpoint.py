"""Checkpoints: a directory, no pickles, written atomically.

    config.json          {"model": GPTConfig, "train": TrainConfig, "tokenizer": {spec, hash, ...}, "version"}
    model.safetensors    model weights (the tied embedding stored once, as `wte.weight`)
    optimizer.safetensors  AdamW moments and step counts (for resuming; optional)
    train_state.json     step, token counters, data RNG state and cursor, optimizer param-group settings
    tokenizer.json / *.tiktoken   a copy of the tokenizer file, when the training shards had one

The directory is built under a temporary name beside the target and renamed into place, so a kill never leaves a
half-written checkpoint; an older checkpoint at the same path is replaced only once the new one is complete.
`load_model(path)` is what evaluation and the demo use; `load_training_state(path)` is what resume uses.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tokfilter import __version__
from tokfilter.atomic import UMASK, cannot_write, read_json
from tokfilter.errors import UserError
from tokfilter.model import GPT, GPTConfig

# what a checkpoint folder holds (besides the tokenizer file its config.json names); provenance.json: posthoc/
CHECKPOINT_FILES = {"config.json", "model.safetensors", "optimizer.safetensors", "train_state.json", "provenance.json"}


def unwrap(model: torch.nn.Module) -> GPT:
    """The GPT inside DDP and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    state = optimizer.state_dict()
    tensors = {}
    for pid, entries in state["state"].items():
        for name, value in entries.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{pid}.{name}"] = value.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def save_checkpoint(path: str | Path, model: torch.nn.Module, train_config: dict | None = None,
                    optimizer: torch.optim.Optimizer | None = None, train_state: dict | None = None,
                    tokenizer=None) -> Path:
    """Write a checkpoint directory atomically; returns its path. An existing checkpoint there is replaced; anything
    else there is refused (`check_target`)."""
    path = check_target(path)
    gpt = unwrap(model)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    except OSError as err:
        raise cannot_write(path, err) from None
    os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp creates 0700; give the folder the usual permissions
    try:
        config = {"tokfilter_version": __version__, "model": gpt.config.to_dict(), "train": train_config,
                  "tokenizer": None}
        if tokenizer is not None:
            config["tokenizer"] = {**tokenizer.manifest(), "file": tokenizer.save_to(tmp)}
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        weights = {k: v.detach().cpu().contiguous() for k, v in gpt.state_dict().items()}
        save_file(weights, tmp / "model.safetensors")
        if optimizer is not None:
            tensors, groups = _optimizer_tensors(optimizer)
            save_file(tensors, tmp / "optimizer.safetensors")
            train_state = {**(train_state or {}), "optimizer_param_groups": groups}
        if train_state is not None:
            (tmp / "train_state.json").write_text(json.dumps(train_state, indent=2) + "\n", encoding="utf-8")
        for child in tmp.iterdir():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(child, 0o666 & ~UMASK)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{path.name}-", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def check_target(path: str | Path) -> Path:
    """`path` as a Path once a checkpoint may be written there: nothing there yet, or an earlier checkpoint (only
    checkpoint files) that the new one replaces; its parent folder is made. A file, or a folder holding anything else,
    is a one-line UserError, so a mistyped --out never deletes a user's files. Commands call it before training."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: is a file; a checkpoint is written as a folder (choose a new --out)")
    if path.is_dir():
        try:
            tokenizer_file = (json.loads((path / "config.json").read_text()).get("tokenizer") or {}).get("file")
        except (OSError, ValueError, AttributeError):
            tokenizer_file = None
        foreign = sorted(child.name for child in path.iterdir()
                         if child.name not in CHECKPOINT_FILES and child.name != tokenizer_file)
        if foreign:
            raise UserError(f"{path}: holds files that are not a checkpoint ({', '.join(foreign[:3])}"
                            f"{', ...' if len(foreign) > 3 else ''}); refusing to replace it (choose a new --out)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise cannot_write(path, err) from None
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"{path}: cannot write there (its folder is not writable)")
    return path


def resolve(path: str | Path) -> Path:
    """A checkpoint directory, or a run directory holding one under `checkpoint/`."""
    path = Path(path)
    if not (path / "config.json").is_file() and (path / "checkpoint" / "config.json").is_file():
        return path / "checkpoint"
    return path


def read_checkpoint_config(path: str | Path) -> dict:
    """A checkpoint's (or run directory's) config.json."""
    path = resolve(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a checkpoint directory (no config.json)")
    return read_json(path / "config.json", "checkpoint config")


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(GPT in eval mode, Tokenizer or None) from a checkpoint directory (or a run directory)."""
    path = resolve(path)
    config = read_checkpoint_config(path)
    model = GPT(GPTConfig.from_dict(config["model"]))
    weights_path = path / "model.safetensors"
    if not weights_path.is_file():
        raise UserError(f"{path}: checkpoint has no model.safetensors")
    try:
        weights = load_file(weights_path)
    except SafetensorError as err:
        raise UserError(f"{weights_path}: not a readable safetensors file ({err})") from None
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise UserError(f"{weights_path}: weights do not match config.json "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.to(device).eval()
    tokenizer = None
    info = config.get("tokenizer")
    if info:
        from tokfilter.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(info.get("file") or info["spec"], base_dir=path)
        if tokenizer.hash != info["hash"]:
            raise UserError(f"{path}: tokenizer copy has hash {tokenizer.hash[:12]}, config says {info['hash'][:12]}")
    return model, tokenizer


def load_training_state(path: str | Path) -> tuple[dict, dict, dict | None]:
    """(model weights, train_state, optimizer state_dict or None) for resuming."""
    path = Path(path)
    state_path = path / "train_state.json"
    if not state_path.is_file():
        raise UserError(f"{path}: checkpoint has no train_state.json, so training cannot resume from it")
    train_state = json.loads(state_path.read_text(encoding="utf-8"))
    weights = load_file(path / "model.safetensors")
    optimizer_state = None
    if (path / "optimizer.safetensors").is_file():
        state: dict[int, dict] = {}
        for key, value in load_file(path / "optimizer.safetensors").items():
            pid, name = key.split(".", 1)
            state.setdefault(int(pid), {})[name] = value
        optimizer_state = {"state": state, "param_groups": train_state["optimizer_param_groups"]}
    return weights, train_state, optimizer_state
