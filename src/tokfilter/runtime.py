"""Where and how tensors run: the one device resolver, the autocast dtype, CPU threads, the process's rank.

Every component (training, scoring, evaluation, post-hoc finetuning) resolves its device here, so `--device auto`
means the same thing everywhere: the process's CUDA device when one is visible, else the CPU. bf16 autocast is used
on CUDA only (on CPU, fp32: the demo sizes are too small for bf16 to pay and its numbers would differ from tests').
torch is imported lazily, so modules that only pass device names around stay importable without it.
"""

from __future__ import annotations

import os

from tokfilter.errors import UserError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto"):
    """`torch.device` for "auto" (CUDA when visible, else CPU), "cpu", "cuda" or "cuda:N"; a bad name is a UserError."""
    import torch

    if device == "auto":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise UserError(f"device {device!r}: {err}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r}: no CUDA device is available")
    return resolved


def autocast_dtype(device):
    """bf16 on CUDA, None (fp32, no autocast) elsewhere."""
    import torch

    return torch.bfloat16 if torch.device(device).type == "cuda" else None


def set_threads(threads: int) -> None:
    """torch CPU threads (0 = leave torch's default)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) for a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
