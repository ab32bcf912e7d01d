"""The one config loader: TOML (or a dict) -> typed dataclasses, with `section.key=value` overrides.

Every config kind in tokfilter goes through here: experiment files (`tokfilter run`), training configs (`tokfilter
train --config --set`), classifier settings (`[classifier.settings]`, `classifier train --set`), post-hoc settings
and the model configs stored in checkpoints. Configs are data, never code (PAPER.md lists `exec`-ed configs among the
research code's bugs). The rules are the same for all of them:

- an unknown section or key is a `UserError` naming it, with the closest known key when one is near ("did you
  mean ...?");
- a value of the wrong type is a `UserError`; ints are accepted where floats are expected, bools are not ints;
- nested dataclasses are TOML tables; `dict` fields take a table as is (checked later by whoever reads it).

Types come from the dataclass annotations (`typing.get_type_hints`, so string annotations work).
"""

from __future__ import annotations

import difflib
import json
import typing
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from tokfilter.errors import UserError

T = TypeVar("T")


def suggest(name: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def read_toml(path: str | Path, what: str = "config") -> dict:
    """Parse a TOML file; a missing, non-UTF-8 or invalid file is a one-line UserError."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a {what} file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: invalid TOML ({err})") from None


def _is_dataclass_type(annotation: Any) -> bool:
    return isinstance(annotation, type) and is_dataclass(annotation)


def coerce(value: Any, annotation: Any, key: str, where: str) -> Any:
    """`value` checked against a simple annotation (bool, int, float, str, list[X], dict, Any, X | None)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return coerce(value, option, key, where)
            except UserError as err:
                errors.append(err)
        raise errors[-1]
    if origin is list:
        (item_type,) = args or (Any,)
        if not isinstance(value, list):
            raise UserError(f"{where}: {key} must be a list, got {value!r}")
        return [coerce(item, item_type, f"{key}[{i}]", where) for i, item in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: {key} must be a list, got {value!r}")
        item_type = args[0] if args else Any
        return tuple(coerce(item, item_type, f"{key}[{i}]", where) for i, item in enumerate(value))
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: {key} must be a table, got {value!r}")
        return dict(value)
    if annotation is Any:
        return value
    if _is_dataclass_type(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise UserError(f"{where}: '{key}' must be a [{key}] table")
        return from_dict(annotation, value, where, f"{key}.")
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (annotation is int and isinstance(value, bool)) or not isinstance(value, annotation):
        name = getattr(annotation, "__name__", str(annotation))
        raise UserError(f"{where}: {key} = {value!r} should be of type {name}")
    return value


def from_dict(cls: type[T], data: dict, where: str = "config", prefix: str = "") -> T:
    """Build dataclass `cls` from a dict: unknown keys and wrong types are UserErrors; missing keys keep defaults."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a table for {prefix.rstrip('.') or cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls) if f.init]
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            if isinstance(value, dict):
                raise UserError(f"{where}: unknown section '{dotted}'{suggest(dotted, [prefix + k for k in known])}")
            raise UserError(f"{where}: unknown key '{dotted}'{suggest(dotted, [prefix + k for k in known])}")
        values[key] = coerce(value, hints[key], dotted, where)
    return cls(**values)


def all_keys(obj_or_cls: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a dataclass (nested dataclass fields expanded): the did-you-mean vocabulary."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    hints = typing.get_type_hints(cls)
    keys = []
    for f in fields(cls):
        if _is_dataclass_type(hints[f.name]):
            keys.extend(all_keys(hints[f.name], f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def set_dotted(obj: Any, dotted: str, value: Any, where: str = "config") -> None:
    """Set `section.key` (any depth) on a dataclass instance, checking that the key exists and the type matches.

    A dict field takes the rest of the path as its key (`settings.steps = 300` sets settings["steps"])."""
    parts = dotted.split(".")
    target = obj
    for depth, part in enumerate(parts):
        hints = typing.get_type_hints(type(target))
        names = [f.name for f in fields(target)]
        if part not in names:
            if depth < len(parts) - 1:  # a section that does not exist
                section = ".".join(parts[:depth + 1])
                known = [".".join(parts[:depth] + [n]) for n in names]
                raise UserError(f"{where}: unknown section '{section}'{suggest(section, known)}")
            raise UserError(f"{where}: unknown key '{dotted}'{suggest(dotted, all_keys(obj))}")
        annotation = hints[part]
        last = depth == len(parts) - 1
        if last:
            setattr(target, part, coerce(value, annotation, dotted, where))
            return
        if _is_dataclass_type(annotation):
            target = getattr(target, part)
            continue
        if typing.get_origin(annotation) is dict or annotation is dict:
            getattr(target, part)[".".join(parts[depth + 1:])] = value
            return
        raise UserError(f"{where}: '{'.'.join(parts[:depth + 1])}' is a value, not a section (in '{dotted}')")
    raise UserError(f"{where}: empty key")


def parse_override(text: str) -> tuple[str, Any]:
    """`section.key=value`; the value is read as a TOML value (`3e-4`, `true`, `"x"`, `[1, 2]`), else a bare string."""
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected section.key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key:
        raise UserError(f"--set {text!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(obj: Any, overrides: list[str] | tuple[str, ...]) -> Any:
    """Apply `--set section.key=value` strings to a dataclass instance (each checked as a TOML key would be)."""
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(obj, key, value, where=f"--set {text}")
    return obj


def load(cls: type[T], path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
         what: str = "config") -> T:
    """`cls` from a TOML file (defaults when path is None), then `--set` overrides."""
    obj = cls() if path is None else from_dict(cls, read_toml(path, what), str(path))
    return apply_overrides(obj, overrides)


def to_toml(obj: Any) -> str:
    """A dataclass of flat sections (like TrainConfig) as TOML text that `load` reads back."""
    lines = []
    for section, values in asdict(obj).items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
