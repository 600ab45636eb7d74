"""The run configuration: every setting of one run, declared once.

``RunConfig`` is the one source of truth for a run's settings: the CLI's flags of ``train``
(and the data flags of ``reproduce``) are generated from its fields, a protocol's run spec
holds one, it is read from YAML or JSON, saved beside results as ``config.json``, and the key
of a cached run is made of it. Each field says what it is for (``help``) and whether a
protocol sets it per run (``per_run``: label ratio, seed, method ...), where ``reproduce``
takes its plural instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from s4aqa.data.formats import UNLISTED_CHOICES
from s4aqa.data.splits import check_ratio, check_share
from s4aqa.errors import S4AQAError
from s4aqa.options import parse_options


def setting(default: Any, help: str, per_run: bool = False, metavar: str | None = None,
            choices: tuple[str, ...] | None = None) -> Any:
    """A RunConfig field with the help text its CLI flag shows (``choices``: the values a
    string setting may take)."""
    return field(default=default, metadata={"help": help, "per_run": per_run,
                                            "metavar": metavar, "choices": choices})


@dataclass
class RunConfig:
    """One training run: which data, which split, which method with which options."""

    dataset: str = setting("synthetic", "dataset format (default: recognised from --root, "
                                        "else the built-in synthetic data)")
    root: str | None = setting(None, "folder holding the dataset's files", metavar="PATH")
    target: str | None = setting(None, "which score, e.g. tes, pcs or total for fisv",
                                 per_run=True)
    task: str | None = setting(None, "keep one task or group of the dataset", per_run=True)
    fold: int | None = setting(None, "cross-validation fold used as the test split",
                               per_run=True)
    segments: int | None = setting(None, "resample every video to this many segments",
                                   metavar="T")
    features: str | None = setting(None, "where the per-video feature arrays are, if not "
                                         "under --root", metavar="PATH")
    unlisted: str = setting(UNLISTED_CHOICES[0], "feature files that no line of the score "
                                                 "table names (folder datasets): unlabeled "
                                                 "training videos, or ignore them",
                            choices=UNLISTED_CHOICES)
    label_ratio: float | None = setting(
        None, "share of the scored training videos that is labeled, drawn by seed (default: "
              "every score given where some training videos are unscored, else 0.1); unscored "
              "training videos are always unlabeled", per_run=True, metavar="R")
    unlabeled_share: float = setting(1.0, "share of the unlabeled videos a run keeps: a fixed "
                                          "nested draw per seed (a smaller share's videos are "
                                          "among a larger share's); the labeled videos do not "
                                          "change", per_run=True, metavar="S")
    seed: int = setting(0, "fixes the labeled subset and the initialisation", per_run=True)
    init: int = setting(0, "initialisation index under one seed", per_run=True)
    val_fraction: float = setting(0.2, "share of the labeled videos held out for model "
                                       "selection by methods that select (select=best)",
                                  metavar="F")
    holdout: int = setting(0, "evaluate on N training videos held out (a fixed draw) instead "
                              "of the test split: for choosing options without touching it",
                           metavar="N")
    shift: str | None = setting(None, "labeled videos from groups A,B, unlabeled from C "
                                      "(unlabeled videos of unseen actions); other groups are "
                                      "left out", metavar="A,B:C")
    method: str = setting("s4aqa", "the method (see `s4aqa methods -v`)", per_run=True)
    options: dict[str, Any] = field(default_factory=dict)
    coverage: float = setting(0.9, "coverage of the prediction intervals beside each score "
                                   "(the jackknife: ± a quantile of the labeled videos' "
                                   "out-of-sample residuals)", metavar="C")
    intervals: str = setting("jackknife", "where the intervals' residuals come from: the "
                                          "method's cheapest (its own leave-one-out or "
                                          "cross-validation, else a closed-form proxy's), or "
                                          "crossfit (the method itself on 5 folds: 5 more "
                                          "fits)", choices=("jackknife", "crossfit"))
    device: str = setting("cpu", "cpu, cuda or cuda:N")
    threads: int = setting(1, "CPU threads of a run (torch and numpy's BLAS); one is nearly as "
                              "fast for these models and much faster on a machine running "
                              "another job; reproduce: per worker", metavar="N")

    def __post_init__(self) -> None:
        if self.label_ratio is not None:
            check_ratio(self.label_ratio)
        check_share(self.unlabeled_share)
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise S4AQAError(f"validation fraction {self.val_fraction} is outside [0, 1)")
        if int(self.threads) < 1:
            raise S4AQAError(f"--threads {self.threads}: use 1 or more")
        for name in ("seed", "init", "holdout"):
            if int(getattr(self, name)) < 0:
                raise S4AQAError(f"--{name} {getattr(self, name)}: use 0 or more")
        if not 0.0 < float(self.coverage) < 1.0:
            raise S4AQAError(f"--coverage {self.coverage}: use a number strictly between 0 "
                             "and 1, e.g. 0.9 for 90% intervals")
        if self.segments is not None and int(self.segments) < 1:
            raise S4AQAError(f"--segments {self.segments}: use a whole number >= 1")

    @property
    def method_seed(self) -> int:
        """The seed a run's method is created with: one per (seed, init)."""
        return int(self.seed) * 1000 + int(self.init)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self) -> "RunConfig":
        """The same run with its paths absolute, so a run folder works from any directory."""
        return dataclasses.replace(self, root=absolute_path(self.root),
                                   features=absolute_path(self.features))

    @staticmethod
    def from_dict(values: dict[str, Any]) -> "RunConfig":
        values = dict(values)
        values.pop("videos", None)  # what a run folder's config.json says of the run's videos
        options = values.pop("options", None) or {}
        if not isinstance(options, dict):
            raise S4AQAError("config 'options' must be a mapping of option names to values")
        config = parse_options(RunConfig, values)
        config.options = dict(options)
        return config


def settings(per_run: bool | None = None) -> list[dataclasses.Field]:
    """RunConfig's fields that are settings with a flag (all but ``options``); ``per_run``
    True or False keeps those a protocol sets per run, or those it does not."""
    return [f for f in dataclasses.fields(RunConfig) if "help" in f.metadata
            and (per_run is None or f.metadata["per_run"] == per_run)]


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


def merge_settings(flags: dict[str, Any], config_file: str | os.PathLike | None = None,
                   assignments: list[str] | None = None) -> dict[str, Any]:
    """A run's settings: a config file's, then the flags given, then ``--set`` options."""
    values = {**(read_config_file(config_file) if config_file else {}), **flags}
    options = values.get("options") or {}
    if not isinstance(options, dict):
        raise S4AQAError("config 'options' must be a mapping of option names to values")
    values["options"] = {**options, **parse_assignments(assignments)}
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
