"""Typed method options: dataclasses whose fields are set from `--set key=value` strings."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping

from s4aqa.errors import S4AQAError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def choice(default: str, *choices: str) -> Any:
    """A string option restricted to ``choices``."""
    return dataclasses.field(default=default, metadata={"choices": (default, *choices)})


def parse_options(cls: type, overrides: Mapping[str, Any] | None, method: str = "") -> Any:
    """Build ``cls`` from its defaults and ``overrides`` (strings converted by the field's type)."""
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
    return cls(**values)


def _convert(key: str, raw: Any, kind: Any, choices: tuple | None, where: str) -> Any:
    base = kind
    origin = typing.get_origin(kind)
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


def options_dict(options: Any) -> dict[str, Any]:
    return dataclasses.asdict(options)
