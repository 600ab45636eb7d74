"""Spearman's rank correlation, per group and averaged through Fisher's z."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from scipy import stats

from s4aqa.data.featureset import FeatureSet


def spearman(predicted: np.ndarray, true: np.ndarray) -> float:
    """Spearman's rho; NaN where it is undefined (fewer than 2 videos, or constant
    predictions or scores: there are no ranks to agree). Metrics keep it NaN, written as
    null and shown as undefined; model selection reads ``rank_agreement``."""
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    if predicted.size < 2 or np.ptp(predicted) == 0 or np.ptp(true) == 0:
        return float("nan")
    return float(stats.spearmanr(predicted, true).statistic)


def rank_agreement(predicted: np.ndarray, true: np.ndarray) -> float:
    """Spearman's rho as a selection score: 0 where it is undefined (a constant prediction
    ranks nothing, as a chance ranking does), so a grid point or a step is chosen on numbers."""
    rho = spearman(predicted, true)
    return 0.0 if math.isnan(rho) else rho


def format_spearman(value: float | None) -> str:
    """A Spearman on screen: 4 decimals, or 'undefined' (fewer than 2 scored videos, or
    constant predictions or scores)."""
    return "undefined" if value is None or math.isnan(value) else f"{value:.4f}"


def fisher_z_mean(correlations: Iterable[float]) -> float:
    """Average correlations through Fisher's z: tanh(mean(arctanh(rho)))."""
    values = np.clip(np.asarray(list(correlations), float), -0.999999, 0.999999)
    if values.size == 0:
        return float("nan")
    return float(np.tanh(np.arctanh(values).mean()))


def evaluate(predicted: np.ndarray, data: FeatureSet, prefix: str = "test") -> dict:
    """Spearman and mean absolute error over the scored videos of ``data``: per group, their
    Fisher-z average, and all videos pooled.

    ``{prefix}_spearman`` is the Fisher-z average over groups where there are several
    groups (the usual AQA convention), else the Spearman over all videos. Videos whose score
    is unknown (NaN: a test video left unscored, to be predicted) are left out of every
    metric and counted in ``n_{prefix}_unscored``; ``n_{prefix}`` counts the scored ones.
    ``{prefix}_mae`` is in the dataset's score units: a shift that ranks cannot see, it sees.
    """
    predicted = np.asarray(predicted, float)
    scored = ~np.isnan(np.asarray(data.scores, float))
    truth, predicted = np.asarray(data.scores, float)[scored], predicted[scored]
    groups = np.asarray(data.groups)[scored] if data.has_groups else None
    pooled = spearman(predicted, truth)
    out: dict = {f"{prefix}_spearman_pooled": pooled, f"n_{prefix}": int(scored.sum())}
    if not scored.all():
        out[f"n_{prefix}_unscored"] = int((~scored).sum())
    if groups is not None:
        per_group = {}
        for group in sorted(set(groups)):
            mask = groups == group
            per_group[str(group)] = spearman(predicted[mask], truth[mask])
        out[f"{prefix}_spearman_per_group"] = per_group
        out[f"{prefix}_spearman"] = fisher_z_mean(per_group.values())
        out["average"] = "fisher_z_over_groups"
    else:
        out[f"{prefix}_spearman"] = pooled
        out["average"] = "pooled"
    if truth.size:
        span = float(np.ptp(truth)) or 1.0
        out[f"{prefix}_relative_l2"] = float(np.mean(((predicted - truth) / span) ** 2))
        out[f"{prefix}_mae"] = float(np.mean(np.abs(predicted - truth)))
        out[f"{prefix}_mean_error"] = float(np.mean(predicted - truth))
    return out
