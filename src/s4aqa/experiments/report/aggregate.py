"""From cached runs to per-seed values: the numbers every table and figure of a report shows.

- a run's value is its test Spearman; on a dataset with groups, the Fisher-z average of the
  groups' Spearman (``test_spearman``), and each group's own value in group tables;
- within one seed, the runs of a cell (its initialisations; for k-fold its folds, then its
  tasks) are averaged through Fisher's z; a seed counts for a cell only when all of that
  cell's runs under the seed finished;
- mean ± std is over seeds (sample standard deviation); the paired difference against the
  reference compares per-seed values on the seeds both have.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from s4aqa.config import RunConfig
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import RunSpec
from s4aqa.experiments.stats import PairedDifference, Summary, paired_difference, summarise
from s4aqa.training.metrics import fisher_z_mean

MISSING = "missing"


@dataclass
class Row:
    """One run of a manifest, with its record (or status 'missing' when not run yet)."""

    spec: RunSpec
    key: str
    status: str
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    internal: bool = False

    @property
    def config(self) -> RunConfig:
        return self.spec.config

    @property
    def value(self) -> float | None:
        value = self.metrics.get("test_spearman") if self.status == run_cache.OK else None
        return None if value is None or not math.isfinite(value) else float(value)

    @property
    def mae(self) -> float | None:
        """The run's mean absolute test error in score units (None for runs cached before it
        was recorded)."""
        value = self.metrics.get("test_mae") if self.status == run_cache.OK else None
        return None if value is None or not math.isfinite(value) else float(value)

    def metric(self, name: str) -> float | None:
        """A finite number of the run's metrics (None where absent: e.g. the interval
        metrics of runs cached before runs had intervals, or an infinite interval)."""
        value = self.metrics.get(name) if self.status == run_cache.OK else None
        return None if value is None or not math.isfinite(value) else float(value)

    def group_value(self, group: str) -> float | None:
        if self.status != run_cache.OK:
            return None
        value = (self.metrics.get("test_spearman_per_group") or {}).get(group)
        return None if value is None else float(value)


def load_rows(manifest: Mapping[str, Any], cache: run_cache.RunCache) -> list[Row]:
    rows = []
    for values in manifest["runs"]:
        spec = RunSpec.from_dict(values)
        key = values.get("key") or spec.key
        record = cache.load(key)
        if record is None:
            rows.append(Row(spec, key, MISSING))
            continue
        rows.append(Row(spec, key, record.get("status", run_cache.FAILED),
                        record.get("message", ""), record.get("metrics") or {},
                        record.get("seconds"), bool(record.get("internal"))))
    return rows


def by(rows: Iterable[Row], *fields: str) -> dict[tuple, list[Row]]:
    """Rows grouped by the values of config ``fields``, in order of first appearance."""
    out: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        out[tuple(getattr(row.config, f) for f in fields)].append(row)
    return out


def ordered(rows: Sequence[Row], field_name: str) -> list:
    return list(dict.fromkeys(getattr(r.config, field_name) for r in rows))


def seed_values(rows: Iterable[Row], value: Callable[[Row], float | None] = lambda r: r.value,
                average: Callable[[list[float]], float] = fisher_z_mean) -> dict[int, float]:
    """Per seed, the ``average`` (Fisher z for correlations) of ``value`` over the seed's runs
    (all must be ok)."""
    by_seed: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_seed[row.config.seed].append(row)
    out = {}
    for seed, members in sorted(by_seed.items()):
        values = [value(r) for r in members]
        if values and all(v is not None for v in values):
            out[seed] = float(average(values))
    return out


def combine_seedwise(parts: Sequence[Mapping[int, float]]) -> dict[int, float]:
    """Fisher-z average across ``parts`` (e.g. tasks), on the seeds every part has."""
    if not parts:
        return {}
    seeds = set(parts[0])
    for part in parts[1:]:
        seeds &= set(part)
    return {s: fisher_z_mean([p[s] for p in parts]) for s in sorted(seeds)}


@dataclass
class Cell:
    """One method (and variant) in one table: per-seed values and run bookkeeping."""

    values: dict[int, float]
    rows: list[Row]

    @staticmethod
    def of(rows: list[Row], value: Callable[[Row], float | None] = lambda r: r.value,
           average: Callable[[list[float]], float] = fisher_z_mean) -> "Cell":
        return Cell(seed_values(rows, value, average), rows)

    @property
    def summary(self) -> Summary | None:
        return summarise(self.values.values()) if self.values else None

    @property
    def mean(self) -> float | None:
        return self.summary.mean if self.values else None

    @property
    def seconds(self) -> float | None:
        times = [r.seconds for r in self.rows if r.status == run_cache.OK and r.seconds is not None]
        return float(np.mean(times)) if times else None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def undefined(self) -> int:
        """Finished runs whose test Spearman is undefined (null: fewer than 2 scored test
        videos, or constant predictions or scores); their seeds have no value."""
        return sum(r.status == run_cache.OK and r.value is None for r in self.rows)

    def against(self, reference: "Cell") -> PairedDifference | None:
        """The paired difference to ``reference`` over the seeds both have."""
        seeds = sorted(set(self.values) & set(reference.values))
        if not seeds:
            return None
        return paired_difference([self.values[s] for s in seeds],
                                 [reference.values[s] for s in seeds])
