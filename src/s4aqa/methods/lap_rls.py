"""LapRLS: Laplacian-regularised least squares (Belkin, Niyogi & Sindhwani, JMLR 2006) on
pooled features, with a neighbourhood graph over the training videos, labeled or not: the
closed-form model of ``methods._linear`` (see there for the objective and the leave-one-out
selection) as a method of its own. With the option ``unlabeled`` off, the graph holds the
labeled videos only.

Checkpoint: no pickles. The weights in feature space (linear kernel; the RBF kernel: the
standardised videos and their coefficients), the standardisation and the chosen
hyper-parameters are stored; prediction needs nothing else. A checkpoint of the older
representer form (videos and coefficients for the linear kernel) loads as weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._linear import ALPHA_GRID, GRAPH_GRID, GraphRidge
from s4aqa.methods._pooling import pooling_option
from s4aqa.methods.base import Method, MethodOptions, Residuals, unlabeled_option
from s4aqa.methods.registry import register
from s4aqa.options import Grid, choice, grid, require, require_grid


@dataclass
class LapRLSOptions(MethodOptions):
    unlabeled: bool = unlabeled_option()
    kernel: str = choice("linear", "rbf")
    pool: str = pooling_option()
    neighbours: int = 10
    alpha_grid: Grid = grid(*ALPHA_GRID)
    # the graph's strength per neighbour; 0 is ridge regression
    graph_grid: Grid = grid(*GRAPH_GRID)
    select_by: str = choice("mse", "spearman")
    # predict with the mean of this many best grid points (steadier than the single best)
    average_best: int = 5

    def __post_init__(self) -> None:
        require(self.neighbours >= 1, "neighbours", self.neighbours, "must be at least 1")
        require(self.average_best >= 1, "average_best", self.average_best, "must be at least 1")
        require_grid(self.alpha_grid, "alpha_grid")
        require_grid(self.graph_grid, "graph_grid", positive=False)


@register("lap_rls")
class LapRLS(Method):
    description = ("Laplacian-regularised least squares: a neighbourhood graph over all "
                   "training videos, strength chosen by leave-one-out (Belkin et al. 2006)")
    Options = LapRLSOptions
    unlabeled_required = False  # unlabeled videos help but are not required

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        o = self.options
        self.model = GraphRidge(kernel=o.kernel, pool=o.pool, neighbours=o.neighbours,
                                alphas=o.alpha_grid, graphs=o.graph_grid,
                                select_by=o.select_by, average_best=o.average_best)

    def unmet_needs(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> str | None:
        if len(labeled) < 3:
            return "lap_rls needs at least 3 labeled videos for its leave-one-out selection"
        return None

    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None, hooks=()) -> "LapRLS":
        unmet = self.unmet_needs(labeled, unlabeled)
        if unmet:
            raise S4AQAError(unmet)
        self.model.fit(labeled, self.unlabeled_for(unlabeled))
        self.history = self.model.history
        self.shape = self.model.shape
        return self

    @property
    def params(self) -> dict[str, float]:
        return self.model.params

    def out_of_sample_residuals(self) -> Residuals | None:
        return self.model.out_of_sample_residuals()

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        if not self.model.fitted:
            raise self.not_trained()
        return self.model.predict(features)

    def embed(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """The standardised pooled features the graph and kernel are built on."""
        return self.model.standardised(features)

    def state_dict(self) -> dict[str, torch.Tensor]:
        if not self.model.fitted:
            raise self.not_trained()
        return self.model.state_dict()

    def extra_state(self) -> dict[str, Any]:
        return self.model.extra_state()

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        self.model.load_state(tensors, extra)
        self.shape = self.model.shape
