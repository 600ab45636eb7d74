"""Typed options: dataclasses whose fields are set from `--set key=value` strings.

An options class declares each option once: its name, type, default, allowed choices
(``choice``), grids of numbers (``grid``) and rules (``require`` in ``__post_init__``).
``parse_options`` is the one place where strings from the command line or a config file
become typed, checked values; from there on a grid is a tuple of floats.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, Sequence

from s4aqa.errors import S4AQAError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def choice(default: str, *choices: str) -> Any:
    """A string option restricted to ``choices``."""
    return dataclasses.field(default=default, metadata={"choices": (default, *choices)})


class OptionError(S4AQAError):
    """An option breaks a rule of its options class; ``parse_options`` names the method."""

    def __init__(self, key: str, value: Any, rule: str) -> None:
        super().__init__(f"option {key}={value!r} {rule}")
        self.key, self.value, self.rule = key, value, rule


def require(ok: bool, key: str, value: Any, rule: str) -> None:
    """Raise OptionError(``key``, ``value``, ``rule``) unless ``ok``; for ``__post_init__``."""
    if not ok:
        raise OptionError(key, value, rule)


Grid = tuple[float, ...]  # an option holding a grid of numbers, typed as floats from the parse on


def grid(*values: float) -> Any:
    """A grid option's field (written ``0.1,1,10`` on the command line, a list in YAML)."""
    return dataclasses.field(default=tuple(float(v) for v in values))


def grid_text(values: Sequence[float]) -> str:
    """A grid as it is written: (0.0001, 1.0) -> '0.0001,1'."""
    return ",".join(f"{v:g}" for v in values)


def require_grid(values: Grid, key: str, positive: bool = True) -> None:
    """For ``__post_init__``: a grid holds at least one number, each > 0 (or >= 0)."""
    require(bool(values) and all(v > 0 if positive else v >= 0 for v in values), key,
            grid_text(values), f"must hold {'positive ' if positive else ''}numbers"
            + ("" if positive else " (0 or more)") + ", e.g. 0.1,1,10")


def _parse_grid(raw: Any) -> Grid:
    """'0.1, 1,10' or [0.1, 1, 10] -> (0.1, 1.0, 10.0); ValueError where it is no grid."""
    items = str(raw).replace(";", ",").split(",") if isinstance(raw, str) else list(raw)
    values = tuple(float(v) for v in items if not isinstance(v, str) or v.strip())
    if not values or any(isinstance(v, bool) for v in items):
        raise ValueError(raw)
    return values


def parse_options(cls: type, overrides: Mapping[str, Any] | None, method: str = "") -> Any:
    """Build ``cls`` from its defaults and ``overrides`` (strings converted by the field's type),
    checked by its rules."""
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(overrides) - set(fields))
    where = f" for method '{method}'" if method else ""
    if unknown:
        raise S4AQAError(f"unknown option(s) {', '.join(unknown)}{where}; "
                         f"known options: {', '.join(sorted(fields))}")
    values = {}
    for key, raw in overrides.items():
        values[key] = _convert(key, raw, hints[key], fields[key].metadata.get("choices"), where)
    try:
        return cls(**values)
    except OptionError as exc:
        raise S4AQAError(f"option {exc.key}={exc.value!r}{where} {exc.rule}") from None


def _convert(key: str, raw: Any, kind: Any, choices: tuple | None, where: str) -> Any:
    base = kind
    origin = typing.get_origin(kind)
    if origin is tuple:  # a grid
        try:
            return _parse_grid(raw)
        except (TypeError, ValueError):
            raise S4AQAError(f"option {key}={raw!r}{where} must be a comma-separated list of "
                             "numbers, e.g. 0.1,1,10") from None
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null", "")):
            return None
        base = args[0]
    try:
        if base is bool:
            if isinstance(raw, bool):
                value = raw
            elif str(raw).lower() in _TRUE:
                value = True
            elif str(raw).lower() in _FALSE:
                value = False
            else:
                raise ValueError
        elif base is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(float(raw)) if isinstance(raw, str) and "." in raw else int(raw)
            if isinstance(raw, str) and "." in raw and float(raw) != value:
                raise ValueError
        elif base is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        elif base is str:
            value = str(raw)
        else:  # pragma: no cover - option types are the four above
            value = raw
    except (TypeError, ValueError):
        name = getattr(base, "__name__", str(base))
        raise S4AQAError(f"option {key}={raw!r}{where} is not a valid {name}") from None
    if choices is not None and value not in choices:
        raise S4AQAError(f"option {key}={value!r}{where} must be one of {', '.join(choices)}")
    return value


def describe_options(cls: type) -> list[tuple[str, str, Any]]:
    """(name, type or choices, default) of every option of ``cls``, for help texts."""
    hints = typing.get_type_hints(cls)
    out = []
    for field in dataclasses.fields(cls):
        kind = field.metadata.get("choices")
        kind = "|".join(kind) if kind else getattr(hints[field.name], "__name__",
                                                  str(hints[field.name]))
        default = field.default
        if isinstance(default, tuple):
            kind, default = "grid", grid_text(default)
        out.append((field.name, kind, default))
    return out
