"""Methods by name: ``@register("name")`` on a Method class (``s4aqa.registry``'s METHODS);
presets are named option sets of one (e.g. the ablation rows ``aa`` or ``aa+msfr`` of
``s4aqa``), registered beside it with the options they fix."""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any, Mapping

from s4aqa.options import describe_options, parse_options
from s4aqa.registry import Registry

METHODS = Registry("method", "s4aqa.methods")


def register(name: str, **presets: dict[str, Any]):
    """Register a Method class under ``name``; ``presets`` name fixed option sets of it."""

    def wrap(cls: type) -> type:
        cls.name = name
        METHODS.add(name, cls, preset=None, base=name)
        for preset, fixed in presets.items():
            METHODS.add(preset, cls, preset=dict(fixed), base=name)
        return cls

    return wrap


def available() -> list[str]:
    return METHODS.names()


def resolve(name: str) -> tuple[type, dict[str, Any]]:
    """The class behind ``name`` and the options its preset fixes."""
    entry = METHODS.entry(name)
    return entry.value, dict(entry.info["preset"] or {})


def describe_methods(verbose: bool = False) -> str:
    """The methods by name; ``verbose``: what each is and its options with their defaults."""
    lines = []
    for entry in METHODS:
        if not verbose:
            lines.append(entry.name)
            continue
        cls, preset = entry.value, entry.info["preset"]
        if preset is not None:
            fixed = ", ".join(f"{k}={v}" for k, v in preset.items())
            lines.append(f"{entry.name}: {entry.info['base']} with {fixed}\n")
            continue
        lines.append(f"{entry.name}: {cls.description}")
        options = [f"{name}={default}" for name, _, default in describe_options(cls.Options)]
        lines.append(textwrap.fill(" ".join(options) or "(no options)", width=96,
                                   initial_indent="    ", subsequent_indent="    ") + "\n")
    return "\n".join(lines).rstrip("\n") + ("\n" if verbose else "")


def method_options(name: str, overrides: Mapping[str, Any] | None = None):
    """The typed, checked options of method ``name``: its preset, then ``overrides`` (strings
    from the command line are converted by each option's type). The one place options are
    parsed."""
    cls, fixed = resolve(name)
    return parse_options(cls.Options, {**fixed, **dict(overrides or {})}, name)


def options_dict(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every option of method ``name`` (preset, defaults and overrides), typed."""
    return dataclasses.asdict(method_options(name, overrides))


def create(name: str, options: Any = None, seed: int = 0, device: str = "cpu"):
    """Instantiate method ``name`` for one seed and device with ``options``: its typed options
    (``method_options``), or a mapping of them over its preset."""
    cls, _ = resolve(name)
    typed = options if isinstance(options, cls.Options) else method_options(name, options)
    method = cls(typed, seed=seed, device=device)
    method.label = name
    return method
