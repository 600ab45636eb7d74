"""Registries: names to things of one kind (methods, dataset readers, protocols, report sections).

Every registry works the same way: a module registers what it defines with
``@REGISTRY.register(name, **info)`` (or ``REGISTRY.add``); the registry imports the modules of
its package on first lookup, so adding a method or a reader is one new file; ``get`` raises
the project's error listing the known names; ``info`` holds what was said at registration
(e.g. a reader's ``detect`` function, a method preset's fixed options). The CLI's help texts
and the contract tests are built from the registries.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from s4aqa.errors import S4AQAError


@dataclass
class Entry:
    name: str
    value: Any
    info: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Names to values of one ``kind``; ``package``: where the registering modules live."""

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self._entries: dict[str, Entry] = {}
        self._loaded = package is None

    def add(self, name: str, value: Any, **info: Any) -> Any:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._entries[name] = Entry(name, value, dict(info))
        return value

    def register(self, name: str, **info: Any) -> Callable[[Any], Any]:
        """Decorator: register the decorated class or function under ``name``."""

        def wrap(value: Any) -> Any:
            return self.add(name, value, **info)

        return wrap

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")

    def entry(self, name: str) -> Entry:
        self._load()
        if name not in self._entries:
            raise S4AQAError(f"unknown {self.kind} '{name}'; choose one of {', '.join(self.names())}")
        return self._entries[name]

    def get(self, name: str) -> Any:
        return self.entry(name).value

    def info(self, name: str) -> dict[str, Any]:
        return self.entry(name).info

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def in_order(self) -> list[str]:
        """The registered names in the order they were registered."""
        self._load()
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self._load()
        return iter([self._entries[name] for name in sorted(self._entries)])
