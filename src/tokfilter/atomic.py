"""Atomic file writes: write to a temporary file in the same directory, fsync, then rename.

A reader never sees a half-written file under the final name, and a killed job leaves only `.tmp-*` files, which
later runs ignore and clean up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tokfilter.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success rename it onto `final`, on error delete it."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{final.name}-", suffix=suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(final: str | Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_text(final: str | Path, text: str) -> None:
    write_bytes(final, text.encode("utf-8"))


def write_json(final: str | Path, obj: Any, indent: int | None = 2) -> None:
    write_text(final, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def save_npy(final: str | Path, array: np.ndarray) -> None:
    """Save an array as .npy atomically (the temp name keeps the .npy suffix so numpy does not append one)."""
    with atomic_path(final, suffix=".npy") as tmp:
        np.save(tmp, array, allow_pickle=False)


def clean_temporaries(directory: str | Path) -> int:
    """Remove `.tmp-*` leftovers of killed writers in `directory`; returns how many were removed."""
    removed = 0
    for leftover in Path(directory).glob(".tmp-*"):
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def emit_json(result: dict, out: str | Path | None = None) -> int:
    """A command's result: one JSON object on stdout and, with `out`, the same object written atomically; exit 0."""
    if out:
        write_json(out, result)
    print(json.dumps(result))
    return 0


def read_json(path: str | Path, what: str = "file") -> Any:
    """A JSON file's content; a missing or malformed file is a one-line UserError naming `what` it should hold."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: not found (expected the {what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: malformed JSON ({err.msg}; expected the {what})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (expected the {what})") from None
