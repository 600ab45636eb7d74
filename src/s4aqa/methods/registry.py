"""Methods by name: `@register("name")` on a Method class; presets are named option sets of one."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Mapping

from s4aqa.errors import S4AQAError

METHODS: dict[str, type] = {}
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {}


def register(name: str, **presets: dict[str, Any]):
    """Register a Method class under ``name``; ``presets`` name fixed option sets of it
    (e.g. the ablation rows ``aa`` or ``aa+msfr`` of ``s4aqa``)."""

    def wrap(cls: type) -> type:
        if name in METHODS or name in PRESETS:
            raise ValueError(f"method '{name}' registered twice")
        cls.name = name
        METHODS[name] = cls
        for preset, fixed in presets.items():
            PRESETS[preset] = (name, dict(fixed))
        return cls

    return wrap


def _load_all() -> None:
    import s4aqa.methods as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("base", "registry", "options"):
            importlib.import_module(f"s4aqa.methods.{module.name}")


def available() -> list[str]:
    _load_all()
    return sorted(set(METHODS) | set(PRESETS))


def resolve(name: str) -> tuple[type, dict[str, Any]]:
    """The class behind ``name`` and the options its preset fixes."""
    _load_all()
    if name in PRESETS:
        base, fixed = PRESETS[name]
        return METHODS[base], dict(fixed)
    if name in METHODS:
        return METHODS[name], {}
    raise S4AQAError(f"unknown method '{name}'; choose one of {', '.join(available())}")


def create(name: str, options: Mapping[str, Any] | None = None, seed: int = 0,
           device: str = "cpu"):
    """Instantiate method ``name`` with ``options`` over its preset, for one seed and device."""
    cls, fixed = resolve(name)
    merged = {**fixed, **dict(options or {})}
    method = cls.from_options(merged, seed=seed, device=device)
    method.label = name
    return method
