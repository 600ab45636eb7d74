"""Spearman's rank correlation, per group and averaged through Fisher's z."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from scipy import stats

from s4aqa.data.featureset import FeatureSet


def spearman(predicted: np.ndarray, true: np.ndarray) -> float:
    """Spearman's rho; 0.0 where it is undefined (a constant prediction ranks nothing)."""
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    if predicted.size < 2 or np.ptp(predicted) == 0 or np.ptp(true) == 0:
        return 0.0
    rho = stats.spearmanr(predicted, true).statistic
    return 0.0 if math.isnan(rho) else float(rho)


def fisher_z_mean(correlations: Iterable[float]) -> float:
    """Average correlations through Fisher's z: tanh(mean(arctanh(rho)))."""
    values = np.clip(np.asarray(list(correlations), float), -0.999999, 0.999999)
    if values.size == 0:
        return float("nan")
    return float(np.tanh(np.arctanh(values).mean()))


def evaluate(predicted: np.ndarray, data: FeatureSet, prefix: str = "test") -> dict:
    """Spearman over ``data``: per group, their Fisher-z average, and all videos pooled.

    ``{prefix}_spearman`` is the Fisher-z average over groups where there are several
    groups (the usual AQA convention), else the Spearman over all videos.
    """
    predicted = np.asarray(predicted, float)
    pooled = spearman(predicted, data.scores)
    out: dict = {f"{prefix}_spearman_pooled": pooled, f"n_{prefix}": int(len(data))}
    if data.has_groups:
        per_group = {}
        for group in sorted(set(data.groups)):
            mask = data.groups == group
            per_group[str(group)] = spearman(predicted[mask], data.scores[mask])
        out[f"{prefix}_spearman_per_group"] = per_group
        out[f"{prefix}_spearman"] = fisher_z_mean(per_group.values())
        out["average"] = "fisher_z_over_groups"
    else:
        out[f"{prefix}_spearman"] = pooled
        out["average"] = "pooled"
    truth = data.scores
    span = float(np.ptp(truth)) or 1.0
    out[f"{prefix}_relative_l2"] = float(np.mean(((predicted - truth) / span) ** 2))
    return out
