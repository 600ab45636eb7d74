"""The run configuration: typed, read from YAML or JSON, overridden by flags, saved beside results."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from s4aqa.errors import S4AQAError
from s4aqa.methods.options import parse_options


@dataclass
class RunConfig:
    """One training run: which data, which split, which method with which options."""

    dataset: str = "synthetic"
    root: str | None = None
    target: str | None = None
    task: str | None = None
    fold: int | None = None
    segments: int | None = None
    features: str | None = None
    label_ratio: float = 0.1
    seed: int = 0
    init: int = 0
    val_fraction: float = 0.2
    # > 0: evaluate on this many training videos held out instead of the test split (tuning)
    holdout: int = 0
    # "A,B:C": labeled videos from groups A and B, unlabeled ones from C (see data.splits)
    shift: str | None = None
    method: str = "s4aqa"
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self) -> "RunConfig":
        """The same run with its paths absolute, so a run folder works from any directory."""
        return dataclasses.replace(self, root=absolute_path(self.root),
                                   features=absolute_path(self.features))

    @staticmethod
    def from_dict(values: dict[str, Any]) -> "RunConfig":
        values = dict(values)
        options = values.pop("options", None) or {}
        if not isinstance(options, dict):
            raise S4AQAError("config 'options' must be a mapping of option names to values")
        config = parse_options(RunConfig, values, method="")
        config.options = dict(options)
        return config


def absolute_path(path: str | os.PathLike | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise S4AQAError(f"{path}: config file not found")
    try:
        text = path.read_text()
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise S4AQAError(f"{path}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise S4AQAError(f"{path}: a config file must be a mapping of keys to values")
    return values


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """`key=value` strings (from --set) to a dict; values stay strings until typed by a method."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise S4AQAError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out
