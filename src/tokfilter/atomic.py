"""Atomic file writes: write to a temporary file in the same directory, fsync, then rename.

A reader never sees a half-written file under the final name, and a killed job leaves only `.tmp-*` files, which
later runs ignore and clean up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tokfilter.errors import UserError

UMASK = os.umask(0)  # the process's umask (read once: setting it is the only way to read it)
os.umask(UMASK)


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success rename it onto `final`, on error delete it."""
    final = Path(final)
    tmp_path = _temporary(final, suffix)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~UMASK)  # mkstemp creates 0600; give the file the usual permissions
        try:
            os.replace(tmp_path, final)
        except OSError as err:
            raise cannot_write(final, err) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def cannot_write(path: str | Path, err: OSError) -> UserError:
    """The one-line error for an output place the OS refused (read-only, full, a file where a folder goes)."""
    return UserError(f"{path}: cannot write there ({err.strerror or err})")


def check_writable(final: str | Path) -> Path:
    """`final` as a Path once it is a place a file can be written: not a directory, in a directory that exists (made
    here) and accepts new files. Raises a one-line UserError otherwise; commands call it before long work so a bad
    --out fails at the start, not after an hour of training."""
    final = Path(final)
    _temporary(final).unlink()
    return final


def check_writable_dir(directory: str | Path) -> Path:
    """`directory` as a Path once an output folder can be made or filled there: an existing folder that accepts
    files, or a path whose nearest existing ancestor is such a folder. Creates nothing (a probe file comes and goes),
    so a command that then fails on its input leaves no empty output folder. One-line UserError otherwise."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: is a file (expected a folder for the output)")
    ancestor = directory if directory.is_dir() else _folder_above(directory)
    try:
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=ancestor)
    except OSError as err:
        raise cannot_write(directory, err) from None
    os.close(fd)
    os.unlink(probe)
    return directory


def _folder_above(path: Path) -> Path:
    """The nearest existing ancestor of `path`; a one-line UserError when it is a file (nothing can go inside)."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{path}: {ancestor} is a file, so nothing can be written inside it")
    return ancestor


def _temporary(final: Path, suffix: str = "") -> Path:
    """A new empty temporary file next to `final` (its folder made if needed), or a one-line UserError."""
    if final.is_dir():
        raise UserError(f"{final}: is a directory (expected a file path)")
    _folder_above(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{final.name}-", suffix=suffix, dir=final.parent)
    except OSError as err:
        raise cannot_write(final, err) from None
    os.close(fd)
    return Path(tmp)


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
    """A command's result: one JSON object on stdout and, with `out`, the same object written atomically; exit 0.
    NaN and infinities become null, so both stay valid JSON (an AUROC is NaN when a split lacks a class)."""
    result = _finite(result)
    if out:
        write_json(out, result)
    print(json.dumps(result))
    return 0


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


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
