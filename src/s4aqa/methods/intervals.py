"""Prediction intervals for every method: split conformal on out-of-sample residuals of the
labeled videos (the jackknife of Barber et al., Ann. Statist. 2021, with each method's
cheapest honest out-of-sample predictions).

A method's interval for a video is ``[prediction - q, prediction + q]``: q is the
``ceil((n + 1) * coverage)``-th smallest of the n absolute out-of-sample residuals
``|score_i - prediction_{-i}|`` of the labeled videos (a residual of a model that did not see
video i). The point prediction is the method's own, trained on every labeled video; nothing is
taken away from it. Where ``(n + 1) * coverage > n`` the interval is infinite (too few
residuals for the coverage asked: :func:`too_few`).

Out-of-sample residuals, by method (``out_of_sample``):

- ``lap_rls`` and every closed-form model: the exact leave-one-out predictions of the chosen
  (averaged best) model (``GraphRidge.loo``, free: the hat matrix is computed for selection),
  where the chosen model does not use the graph; where it does, a video left out stays a node
  of the graph, which a video scored later is not, and those residuals are too small: ridge's
  (below) instead;
- ``svr``: ``folds``-fold cross-validated predictions with the chosen hyper-parameters
  (``SVR.oos``: five more small fits);
- a deep method with the core ``blend`` and a ridge partner on the raw scale (``aa`` and every
  baseline on the core): the leave-one-out predictions of its partner. The blend of networks
  and partner is more accurate than the partner alone, so these residuals err wide;
  out-of-fold networks would cost a network training per fold;
- any other method (a standardised blend such as ``s4aqa``'s, whose partner's residuals swing
  with the members' spread; ``core=plain``; ``coreg``): leave-one-out residuals of ridge
  regression on the labeled videos' pooled features, centred on the method's own prediction
  (``ridge_loo``: the naive construction).

Widths are the same for every video of a run: scaling them by each video's distance to the
labeled videos or by its predicted score was measured on validation slices of Fis-V's training
split and neither narrowed the intervals at the same coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._linear import GraphRidge
from s4aqa.methods.base import Method
from s4aqa.methods.deep import DeepMethod

DEFAULT_COVERAGE = 0.9


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

    def at(self, coverage: float) -> "Intervals":
        """The same residuals at another coverage."""
        return Intervals(self.residuals, self.source, coverage)

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


def _closed_form(model: GraphRidge | None) -> tuple[np.ndarray, np.ndarray] | None:
    """A closed-form model's exact leave-one-out, where it is out of sample for a video scored
    later: not where the chosen model uses the graph (left out, a labeled video stays a node
    of the graph, and a video scored later is no node: on validation slices of Fis-V these
    residuals were too small)."""
    if model is None or getattr(model, "loo", None) is None or model.graph_used:
        return None
    return model.loo_truth, model.loo


def out_of_sample(method: Method) -> tuple[tuple[np.ndarray, np.ndarray], str] | None:
    """((scores, out-of-sample predictions) of the labeled videos, their source) where the
    trained ``method`` has them (see the module docstring); None where it has none."""
    if isinstance(method, DeepMethod):
        # the partner's residuals stand for the blend's where the blend adds the partner as it
        # is (ridge, raw scale); a standardised blend rescales it by the spread of the
        # members' predictions, and residuals on that scale swung with it on validation
        # slices (too wide in one seed in three, too narrow in another): ridge's instead
        pair = _closed_form(method.partner)
        return (pair, "partner_loo") if pair is not None and not method.blend_stats else None
    own = getattr(method, "oos", None)  # a method that made its own (svr: cross-validation)
    if own is not None:
        return own, "cv"
    pair = _closed_form(getattr(method, "model", None))
    return (pair, "loo") if pair is not None else None


def ridge_residuals(labeled: FeatureSet) -> np.ndarray:
    """The naive construction's residuals: leave-one-out of ridge regression (the deep core's
    partner without a graph) on the labeled videos' mean-pooled features."""
    model = GraphRidge(graphs=(0.0,), average_best=5).fit(labeled)
    return model.loo_truth - model.loo


def fit_intervals(method: Method, labeled: FeatureSet,
                  coverage: float = DEFAULT_COVERAGE) -> Intervals:
    """The intervals of a trained ``method`` from its labeled training videos."""
    found = out_of_sample(method)
    if found is not None:
        (truth, predicted), source = found
        if len(truth) == len(labeled):
            return Intervals(np.asarray(truth) - np.asarray(predicted), source, coverage)
    if len(labeled) < 3:  # no leave-one-out selection: no residuals at all
        return Intervals(np.zeros(0), "none", coverage)
    return Intervals(ridge_residuals(labeled), "ridge_loo", coverage)


def interval_metrics(low: np.ndarray, high: np.ndarray, data: FeatureSet,
                     prefix: str = "test") -> dict[str, Any]:
    """Empirical coverage and mean width over the scored videos of ``data``: ``width`` in
    score units, ``width_std`` divided by the scored videos' score std (None: infinite)."""
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
            f"{prefix}_interval_width_std": width / spread if finite and spread > 0 else None}
