"""Prediction intervals for every method: the jackknife, ``± a quantile of out-of-sample
residuals`` of the labeled videos (Barber, Candès, Ramdas & Tibshirani, "Predictive inference
with the jackknife+", Ann. Statist. 2021).

A method's interval for a video is ``[prediction - q, prediction + q]``: q is the
``ceil((n + 1) * coverage)``-th smallest of the n absolute out-of-sample residuals
``|score_i - prediction_{-i}|`` of the labeled videos (a residual of a model that did not see
video i). The point prediction is the method's own, trained on every labeled video; nothing is
taken away from it. Where ``(n + 1) * coverage > n`` the interval is infinite (too few
residuals for the coverage asked: :func:`too_few`).

What it guarantees: nothing in theory. This is the naive jackknife (or, with ``crossfit``, its
K-fold form), not split conformal: the residuals come from models fitted without the video,
while the interval is centred on the model fitted with all of them, and Barber et al. show
that this can under-cover when the fit is unstable (their jackknife+ and CV+ repair it at
1 - 2 alpha, at the price of keeping every left-out model to predict with). Where the
residuals are another model's (a proxy), they are not even the method's own. The evidence is
measured coverage: docs/results/fisv/intervals.

Where the residuals come from (``construction``):

- ``jackknife`` (the default): the method's own answer to ``out_of_sample_residuals`` where it
  has one at little cost: the exact leave-one-out of ``lap_rls`` and every closed-form model
  whose chosen model does not use the graph; ``svr``'s ``folds``-fold cross-validation with
  its chosen hyper-parameters; a deep method with the core ``blend`` and a ridge partner on the
  raw scale (``aa`` and every baseline on the core): its partner's leave-one-out (a proxy: the
  blend beats the partner alone, so these err wide). Any other method (a standardised blend
  such as ``s4aqa``'s, ``core=plain``, ``coreg``): leave-one-out residuals of ridge regression
  on the labeled videos' pooled features (``ridge_loo``, a proxy).
- ``crossfit``: the method itself, cross-fitted: ``CROSSFIT_FOLDS`` fits of the method on the
  other folds of the labeled videos, each predicting its fold (the unlabeled videos as in the
  run). Its own residuals, so no proxy error either way; it costs that many more fits.

Widths are the same for every video of a run: scaling them by each video's distance to the
labeled videos or by its predicted score was measured on validation slices of Fis-V's training
split and neither narrowed the intervals at the same coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._linear import GraphRidge
from s4aqa.methods.base import Method, Residuals

DEFAULT_COVERAGE = 0.9
CROSSFIT_FOLDS = 5


def check_coverage(coverage: float) -> float:
    """The coverage as a float in (0, 1), or the project's error naming the flag."""
    try:
        value = float(coverage)
    except (TypeError, ValueError):
        raise S4AQAError(f"--coverage {coverage!r}: use a number between 0 and 1, e.g. 0.9") \
            from None
    if not 0.0 < value < 1.0 or math.isnan(value):
        raise S4AQAError(f"--coverage {coverage}: use a number strictly between 0 and 1, "
                         "e.g. 0.9 for 90% intervals")
    return value


def conformal_rank(n: int, coverage: float) -> int | None:
    """The rank (1-based) of the residual that bounds a ``coverage`` interval from ``n``
    residuals, ``ceil((n + 1) * coverage)``; None when it exceeds n (the interval is
    infinite)."""
    # a small tolerance: (n + 1) * 0.9 computed in floating point must not round up past n
    rank = math.ceil((n + 1) * float(coverage) - 1e-9)
    return max(rank, 1) if rank <= n else None


def most_coverage(n: int) -> float:
    """The largest coverage ``n`` residuals give a finite interval for: n / (n + 1)."""
    return n / (n + 1) if n > 0 else 0.0


def fewest_residuals(coverage: float) -> int:
    """The fewest residuals that give a finite ``coverage`` interval."""
    n = 1
    while conformal_rank(n, coverage) is None:
        n += 1
    return n


def too_few(n: int, coverage: float) -> str | None:
    """One line when ``n`` labeled videos are too few for a finite ``coverage`` interval,
    saying what is possible instead; None when they suffice."""
    if conformal_rank(n, coverage) is not None:
        return None
    best = math.floor(most_coverage(n) * 100) / 100
    instead = (f"--coverage {best:g} or less" if best > 0 else "more labeled videos")
    return (f"warning: {n} labeled video(s) are too few for {coverage:.0%} intervals (they "
            f"need at least {fewest_residuals(coverage)}); the intervals are infinite: use "
            f"{instead}, or label more videos")


def conformal_quantile(residuals: np.ndarray, coverage: float) -> float:
    """The half-width of a ``coverage`` interval from absolute residuals (inf: too few)."""
    values = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    rank = conformal_rank(len(values), coverage)
    return float("inf") if rank is None else float(values[rank - 1])


@dataclass
class Intervals:
    """What a run's intervals need, kept in the checkpoint: the labeled videos'
    out-of-sample absolute residuals (score units), how they were made, and the coverage."""

    residuals: np.ndarray
    source: str
    coverage: float = DEFAULT_COVERAGE
    half_width: float = field(init=False)

    def __post_init__(self) -> None:
        self.residuals = np.sort(np.abs(np.asarray(self.residuals, dtype=np.float64)))
        self.coverage = check_coverage(self.coverage)
        self.half_width = conformal_quantile(self.residuals, self.coverage)

    @property
    def n(self) -> int:
        return len(self.residuals)

    def bounds(self, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) around each prediction (±inf where the residuals are too few)."""
        predictions = np.asarray(predictions, dtype=np.float64)
        return predictions - self.half_width, predictions + self.half_width

    def to_json(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "source": self.source,
                "residuals": [float(r) for r in self.residuals]}

    @staticmethod
    def from_json(values: Mapping[str, Any]) -> "Intervals":
        try:
            return Intervals(np.asarray(values["residuals"], dtype=np.float64),
                             str(values["source"]), float(values["coverage"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise S4AQAError(f"the checkpoint's intervals are unreadable ({exc}); retrain "
                             "the run") from None


def ridge_residuals(labeled: FeatureSet) -> np.ndarray:
    """The proxy of methods without residuals of their own: leave-one-out residuals of ridge
    regression (the deep core's partner without a graph) on the labeled videos' mean-pooled
    features."""
    return GraphRidge(graphs=(0.0,), average_best=5).fit(labeled).loo_residuals


def cross_fitted(make: Callable[[], Method], labeled: FeatureSet,
                 unlabeled: FeatureSet | None, validation: FeatureSet | None,
                 folds: int = CROSSFIT_FOLDS, seed: int = 0) -> Residuals:
    """The method's own out-of-sample residuals: ``make()`` (a fresh, untrained method of the
    run's settings) fitted ``folds`` times, each on the labeled videos of the other folds (a
    seeded draw), the unlabeled and validation videos as in the run, predicting its fold."""
    n = len(labeled)
    parts = np.array_split(np.random.default_rng([int(seed), 0xC0F]).permutation(n),
                           min(int(folds), n))
    predicted = np.empty(n)
    for part in parts:
        model = make()
        model.fit(labeled.subset(np.setdiff1d(np.arange(n), part)), unlabeled, validation)
        predicted[part] = model.predict(labeled.subset(part))
    return Residuals(np.asarray(labeled.scores, dtype=np.float64) - predicted, "crossfit")


def fit_intervals(method: Method, labeled: FeatureSet, coverage: float = DEFAULT_COVERAGE,
                  own: Residuals | None = None) -> Intervals:
    """The intervals of a trained ``method`` from its labeled training videos: ``own``
    residuals where given (``cross_fitted``), else the method's (``out_of_sample_residuals``),
    else ridge's (the module docstring)."""
    found = own if own is not None else method.out_of_sample_residuals()
    if found is not None and len(found.values) == len(labeled):
        return Intervals(found.values, found.source, coverage)
    if len(labeled) < 3:  # no leave-one-out selection: no residuals at all
        return Intervals(np.zeros(0), "none", coverage)
    return Intervals(ridge_residuals(labeled), "ridge_loo", coverage)


def interval_metrics(low: np.ndarray, high: np.ndarray, data: FeatureSet,
                     prefix: str = "test") -> dict[str, Any]:
    """Empirical coverage and mean width over the scored videos of ``data``: ``width`` in
    score units, ``width_relative`` that width divided by the scored videos' score std
    (comparable across datasets; None: infinite)."""
    truth = np.asarray(data.scores, dtype=np.float64)
    scored = ~np.isnan(truth)
    low, high, truth = np.asarray(low)[scored], np.asarray(high)[scored], truth[scored]
    if not truth.size:
        return {}
    width = float(np.mean(high - low))
    spread = float(np.std(truth))
    finite = math.isfinite(width)
    return {f"{prefix}_coverage": float(np.mean((truth >= low) & (truth <= high))),
            f"{prefix}_interval_width": width if finite else None,
            f"{prefix}_interval_width_relative": width / spread if finite and spread > 0
            else None}
