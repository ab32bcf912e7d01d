"""How many tokens a checkpoint was pretrained on, wherever that is recorded.

The attack reports recovery tokens as a fraction of pretraining tokens, so a derived model (RMU, refusal SFT) writes
its base model's count into its own provenance.json and every lookup goes through `pretraining_tokens`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokfilter.train.checkpoint import resolve


def pretraining_tokens(model_dir: str | Path) -> int | None:
    """Tokens the checkpoint was pretrained on: a derived model's provenance.json, the run's summary.json, or the
    checkpoint's train_state.json (raw tokens through the model, `train_tokens`)."""
    ckpt = resolve(model_dir)
    for path in (ckpt / "provenance.json", ckpt.parent / "summary.json", Path(model_dir) / "summary.json",
                 ckpt / "train_state.json"):
        if path.is_file():
            try:
                value = json.loads(path.read_text(encoding="utf-8")).get("pretraining_tokens" if path.name ==
                                                                         "provenance.json" else "train_tokens")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(value, (int, float)) and value > 0:
                return int(value)
    return None
