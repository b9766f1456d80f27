"""Frozen dataclass configs, loaded from TOML and ``--set key=value`` pairs.

One dataclass per concern: :class:`DataConfig` here, :class:`~semrec.train.loop.TrainConfig`
beside the loop, and one per model beside the model. Unknown keys and wrong types are
rejected with the key's name, so a typo never silently becomes a default.

A config file::

    [data]
    split = "given:u1"

    [model]
    name = "mf"
    dim = 64

    [train]
    epochs = 50

``--set`` takes ``section.key=value`` or a bare ``key=value`` when exactly one section
has that key (``epochs``, ``batch_size``, ``lr``, ``dim``, ``layers``, ``seed``, ...).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from semrec.errors import ConfigError

T = TypeVar("T")

#: Integer settings are 64-bit, as torch and numpy take them.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class DataConfig:
    """Which data and how it is cut.

    Args:
        split: split spec (see :mod:`semrec.data.split`); default ``given``.
        split_seed: seed of the split, kept apart from the training seed so that
            runs over several training seeds share one split. Default 0.
    """

    split: str = "given"
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.split_seed < 0:
            raise ConfigError(f"data.split_seed must be a whole number >= 0, got {self.split_seed}")


@dataclass(frozen=True)
class TextConfig:
    """How item and user texts become vectors (for the models that read text).

    Args:
        encoder: a local sentence-transformers or Hugging Face model folder; ``None``
            (default) is the packaged all-MiniLM-L6-v2.
        max_seq_length: tokens kept per text; ``None`` (default) is the model's own.
        encode_batch_size: texts per forward pass of the encoder (default 64).
        knn: semantic neighbours per item in the item–item graph (default 10).
        cache: reuse and fill the on-disk embedding cache (default true).
    """

    encoder: str | None = None
    max_seq_length: int | None = None
    encode_batch_size: int = 64
    knn: int = 10
    cache: bool = True

    def __post_init__(self) -> None:
        if self.max_seq_length is not None and self.max_seq_length < 2:
            raise ConfigError(f"text.max_seq_length must be at least 2 tokens, got {self.max_seq_length}")
        if self.encode_batch_size < 1:
            raise ConfigError(f"text.encode_batch_size must be at least 1, got {self.encode_batch_size}")
        if self.knn < 0:
            raise ConfigError(f"text.knn must be >= 0 (0: no semantic neighbours), got {self.knn}")


def _allowed(tp: Any) -> tuple[type, ...]:
    """The runtime types a field annotation accepts."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for a in typing.get_args(tp) for t in _allowed(a))
    if origin is typing.Literal:
        return tuple({type(a) for a in typing.get_args(tp)})
    if tp is type(None) or tp is None:
        return (type(None),)
    if origin in (tuple, list):
        return (tuple, list)
    return (tp,)


def _check(cls: type, name: str, value: Any, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    tp = hints[name]
    allowed = _allowed(tp)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    else:
        ok = isinstance(value, allowed)
    if not ok:
        names = " or ".join(sorted({"none" if a is type(None) else a.__name__ for a in allowed}))
        raise ConfigError(f"{where}{name}: expected {names}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}{name}: expected a finite number, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        raise ConfigError(f"{where}{name}: {value} is too large; expected a whole number of magnitude "
                          "below 2**63")
    if typing.get_origin(tp) is typing.Literal and value not in typing.get_args(tp):
        choices = ", ".join(repr(a) for a in typing.get_args(tp))
        raise ConfigError(f"{where}{name}: expected one of {choices}, got {value!r}")
    if isinstance(value, list):
        value = tuple(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        )
    return cls(**{k: _check(cls, k, v, where) for k, v in data.items()})


def parse_value(cls: type, name: str, text: str, where: str = "") -> Any:
    """Parse a ``--set`` value for field ``name`` of ``cls`` from its text."""
    allowed = _allowed(typing.get_type_hints(cls)[name])
    low = text.strip().lower()
    if type(None) in allowed and low in ("none", "null", ""):
        return None
    if bool in allowed and low in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return low in ("true", "1", "yes", "on")
    for tp in (int, float):
        if tp in allowed:
            try:
                return tp(text)
            except ValueError:
                pass
    if str in allowed:
        return text
    if tuple in allowed:
        return tuple(x.strip() for x in text.split(",") if x.strip())
    raise ConfigError(f"{where}{name}: cannot read {text!r} as {allowed[0].__name__}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML file (UTF-8, a leading byte-order mark allowed).

    Raises:
        ConfigError: the file is missing, is not UTF-8 text, or is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            f"{path}: not a TOML text file: byte 0x{data[e.start:e.start + 1].hex()} on line {line} "
            "is not UTF-8 (TOML files are UTF-8 text)"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None


def tables(raw: dict[str, Any], names: tuple[str, ...], where: str) -> dict[str, dict[str, Any]]:
    """The tables ``names`` of a parsed TOML file (absent ones empty); any other top-level
    key, or one of ``names`` that is not a table, raises :class:`ConfigError`."""
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"{where}unknown section(s) {', '.join(unknown)}; known: {', '.join(names)}")
    out = {}
    for name in names:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{where}'{name}' must be a [{name}] table of settings, got {value!r}")
        out[name] = dict(value)
    return out


def apply_sets(
    sections: dict[str, tuple[type, dict[str, Any]]], sets: list[str] | tuple[str, ...]
) -> None:
    """Apply ``key=value`` pairs in place to ``sections`` (name -> (dataclass, values))."""
    for item in sets:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        if "." in key:
            section, _, name = key.partition(".")
            if section not in sections:
                raise ConfigError(f"--set {item!r}: unknown section '{section}'")
            owners = [section] if name in _field_names(sections[section][0]) else []
        else:
            name = key
            owners = [s for s, (cls, _) in sections.items() if name in _field_names(cls)]
        if not owners:
            known = sorted({f"{s}.{n}" for s, (cls, _) in sections.items() for n in _field_names(cls)})
            raise ConfigError(f"--set {item!r}: unknown key '{key}'; known: {', '.join(known)}")
        if len(owners) > 1:
            raise ConfigError(
                f"--set {item!r}: '{name}' is in several sections; write "
                + " or ".join(f"{s}.{name}" for s in owners)
            )
        cls, values = sections[owners[0]]
        values[name] = parse_value(cls, name, text, where=f"--set {owners[0]}.")


def _field_names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as plain TOML/JSON-ready values (tuples become lists)."""
    out = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def dump_toml(sections: dict[str, dict[str, Any]]) -> str:
    """Write nested dicts of scalars and lists as TOML (``None`` values are left out)."""
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            if v is not None:
                lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def replace(cfg: T, **changes: Any) -> T:
    return dataclasses.replace(cfg, **changes)
