"""Summary statistics over seeds: mean ± std, and paired differences with a t interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Summary:
    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f}" if self.n < 2 else f"{self.mean:.3f} ± {self.std:.3f}"


@dataclass
class PairedDifference:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:+.3f} (1 seed, no interval)"
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def summarise(values) -> Summary:
    values = np.asarray(list(values), float)
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return Summary(float(values.mean()) if values.size else float("nan"), std, int(values.size))


def paired_difference(values, reference, confidence: float = 0.95) -> PairedDifference:
    """Mean of ``values - reference`` (paired by seed) with its Student-t interval."""
    diff = np.asarray(list(values), float) - np.asarray(list(reference), float)
    n = diff.size
    mean = float(diff.mean()) if n else float("nan")
    if n < 2:
        return PairedDifference(mean, float("nan"), float("nan"), n)
    sem = float(diff.std(ddof=1)) / np.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return PairedDifference(mean, mean - half, mean + half, n)
