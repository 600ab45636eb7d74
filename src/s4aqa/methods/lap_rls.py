"""LapRLS: Laplacian-regularised least squares (Belkin, Niyogi & Sindhwani, JMLR 2006) on
pooled features, with a neighbourhood graph over the training videos, labeled or not.

Each video is the mean of its segment features (``pool``), standardised over the graph's
videos. The graph links each video to its ``neighbours`` nearest by cosine similarity,
symmetrised (an edge where either video is among the other's neighbours, weight 1), with
Laplacian L = D − W. The predictor f(x) = Σ_j c_j k(x, x_j) + b over the graph's videos (a
linear kernel k = x·x'/dim, or an RBF kernel whose width is the median squared distance)
minimises

    Σ_labeled (f(x_i) − y_i)²  +  α cᵀKc  +  γ fᵀ L f,      γ = g / (the graph's mean degree),

so videos that are neighbours, labeled or not, are asked to score alike. The loss is a sum over
the labeled videos: the graph's weight relative to the labels falls as labels grow.

(α, g) are chosen from their grids by exact leave-one-out on the labeled videos: the graph term
reads no label, so leaving a labeled video out is making it an unlabeled node, and its
leave-one-out residual is e_i / (1 − H_ii) of the hat matrix. g = 0 (ridge regression) is in
the grid, so the selection can switch the graph off where it does not help. ``select_by`` mse
picks the smallest leave-one-out squared error, spearman the best leave-one-out rank correlation.
With the option ``unlabeled`` off the graph holds the labeled videos only.

Checkpoint: no pickles. The graph's standardised videos, the coefficients, the standardisation
and the chosen hyper-parameters are stored; prediction needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from scipy import linalg

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods.base import (Method, MethodOptions, as_array, check_shape, pool_segments,
                                pooling_option, unlabeled_option)
from s4aqa.methods.registry import register
from s4aqa.options import choice, parse_numbers, require
from s4aqa.training.metrics import spearman


@dataclass
class LapRLSOptions(MethodOptions):
    unlabeled: bool = unlabeled_option()
    kernel: str = choice("linear", "rbf")
    pool: str = pooling_option()
    neighbours: int = 10
    alpha_grid: str = "0.01,0.03,0.1,0.3,1,3,10,30,100"
    # the graph's strength per neighbour; 0 is ridge regression
    graph_grid: str = "0,0.01,0.03,0.1,0.3,1,3,10,30"
    select_by: str = choice("mse", "spearman")

    def __post_init__(self) -> None:
        require(self.neighbours >= 1, "neighbours", self.neighbours, "must be at least 1")
        parse_numbers(self.alpha_grid, "alpha_grid")
        parse_numbers(self.graph_grid, "graph_grid", positive=False)
        require(all(g >= 0 for g in parse_numbers(self.graph_grid, "graph_grid", False)),
                "graph_grid", self.graph_grid, "must hold numbers >= 0")


def knn_graph(points: np.ndarray, neighbours: int) -> np.ndarray:
    """(N, N) symmetric 0/1 adjacency: i ~ j when either is among the other's ``neighbours``
    nearest by cosine similarity."""
    unit = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(neighbours, len(points) - 1)
    adjacency = np.zeros_like(similarity)
    if k >= 1:
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        adjacency[np.repeat(np.arange(len(points)), k), nearest.ravel()] = 1.0
    return np.maximum(adjacency, adjacency.T)


@register("lap_rls")
class LapRLS(Method):
    description = ("Laplacian-regularised least squares: a neighbourhood graph over all "
                   "training videos, strength chosen by leave-one-out (Belkin et al. 2006)")
    Options = LapRLSOptions
    semi_supervised = True

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.shape: tuple[int, int] | None = None
        self.mean = self.std = None
        self.nodes: np.ndarray | None = None  # the graph's standardised videos (N, D')
        self.coef: np.ndarray | None = None
        self.bias = 0.0
        self.width = 1.0  # RBF width (median squared distance)
        self.params: dict[str, float] = {}
        self.score_mean, self.score_std = 0.0, 1.0

    def unmet_needs(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> str | None:
        if len(labeled) < 3:
            return "lap_rls needs at least 3 labeled videos for its leave-one-out selection"
        return None  # unlabeled videos help but are not required

    def check_unlabeled(self, unlabeled: FeatureSet | None) -> FeatureSet | None:
        return unlabeled if self.uses_unlabeled and unlabeled is not None and len(unlabeled) \
            else None

    # ---- features -------------------------------------------------------------------------
    def _standardised(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        array = as_array(features)
        check_shape(array, self.shape, self.label)
        return (pool_segments(array, self.options.pool) - self.mean) / self.std

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.options.kernel == "linear":
            return a @ b.T / a.shape[1]
        squared = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T
        return np.exp(-np.maximum(squared, 0.0) / (2 * self.width))

    # ---- fit ------------------------------------------------------------------------------
    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None) -> "LapRLS":
        unmet = self.unmet_needs(labeled, unlabeled)
        if unmet:
            raise S4AQAError(unmet)
        unlabeled = self.check_unlabeled(unlabeled)
        o = self.options
        self.shape = (labeled.num_segments, labeled.dim)
        pooled = [pool_segments(labeled, o.pool)]
        if unlabeled is not None:
            if (unlabeled.num_segments, unlabeled.dim) != self.shape:
                raise S4AQAError("labeled and unlabeled videos have different feature shapes")
            pooled.append(pool_segments(unlabeled, o.pool))
        both = np.concatenate(pooled)
        self.mean, self.std = both.mean(axis=0), both.std(axis=0) + 1e-6
        self.nodes = (both - self.mean) / self.std
        n_labeled = len(labeled)
        if o.kernel == "rbf":
            squared = (self.nodes ** 2).sum(1)[:, None] + (self.nodes ** 2).sum(1)[None] \
                - 2 * self.nodes @ self.nodes.T
            self.width = float(np.median(squared[np.triu_indices(len(self.nodes), 1)])) or 1.0
        self.score_mean = float(labeled.scores.mean())
        self.score_std = float(labeled.scores.std()) or 1.0
        y = (labeled.scores - self.score_mean) / self.score_std
        kernel = self._kernel(self.nodes, self.nodes)
        adjacency = knn_graph(self.nodes, o.neighbours)
        graph_kernel = (np.diag(adjacency.sum(1)) - adjacency) @ kernel  # L K
        degree = float(adjacency.sum(1).mean()) or 1.0
        self.history, best = [], None
        for alpha in parse_numbers(o.alpha_grid, "alpha_grid"):
            for g in parse_numbers(o.graph_grid, "graph_grid", positive=False):
                solve = self._solver(kernel, graph_kernel, n_labeled, alpha, g / degree)
                fitted = solve(np.eye(n_labeled))[1]  # hat matrix on the labeled videos
                loo = y - (y - fitted @ y) / np.maximum(1.0 - np.diag(fitted), 1e-9)
                score = (-float(np.mean((loo - y) ** 2)) if o.select_by == "mse"
                         else spearman(loo, y))
                self.history.append({"alpha": alpha, "graph": g, f"loo_{o.select_by}": score})
                if best is None or score > best[0]:
                    best = (score, alpha, g)
        _, alpha, g = best
        self.params = {"alpha": alpha, "graph": g, "gamma": g / degree}
        coefficients, _ = self._solver(kernel, graph_kernel, n_labeled, alpha,
                                       g / degree)(y[:, None])
        self.coef, self.bias = coefficients[:-1, 0], float(coefficients[-1, 0])
        return self

    @staticmethod
    def _solver(kernel: np.ndarray, graph_kernel: np.ndarray, n_labeled: int, alpha: float,
                gamma: float):
        """For targets Y (n_labeled, m): the coefficients [c; b] (N + 1, m) and the fitted
        values on the labeled videos (n_labeled, m). The labeled videos are the first nodes.

        Setting the gradient of the objective to zero (representer form):
        (J K + α I + γ L K) c + J 1 b = J y, and Σ_labeled (K c + b − y) = 0, with J the
        selector of the labeled nodes; ``graph_kernel`` is L K."""
        n = len(kernel)
        system = np.zeros((n + 1, n + 1))
        system[:n, :n] = alpha * np.eye(n) + gamma * graph_kernel
        system[:n_labeled, :n] += kernel[:n_labeled]
        system[:n_labeled, n] = 1.0
        system[n, :n] = kernel[:n_labeled].sum(axis=0)
        system[n, n] = n_labeled
        factor = linalg.lu_factor(system)

        def solve(targets: np.ndarray):
            right = np.zeros((n + 1, targets.shape[1]))
            right[:n_labeled] = targets
            right[n] = targets.sum(axis=0)
            coefficients = linalg.lu_solve(factor, right)
            fitted = kernel[:n_labeled] @ coefficients[:n] + coefficients[n]
            return coefficients, fitted

        return solve

    # ---- predict --------------------------------------------------------------------------
    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        if self.coef is None:
            raise S4AQAError(f"method '{self.label}' has not been trained or loaded")
        z = self._kernel(self._standardised(features), self.nodes) @ self.coef + self.bias
        return z * self.score_std + self.score_mean

    def embed(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """The standardised pooled features the graph and kernel are built on."""
        return self._standardised(features)

    # ---- checkpoint -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.coef is None:
            raise S4AQAError(f"method '{self.label}' has not been trained")
        return {name: torch.as_tensor(np.ascontiguousarray(value), dtype=torch.float64)
                for name, value in (("nodes", self.nodes), ("coef", self.coef),
                                    ("feature_mean", self.mean), ("feature_std", self.std))}

    def extra_state(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "params": dict(self.params), "bias": self.bias,
                "width": self.width, "score_mean": self.score_mean,
                "score_std": self.score_std}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        self.shape = tuple(int(v) for v in extra["shape"])
        self.nodes = tensors["nodes"].numpy()
        self.coef = tensors["coef"].numpy()
        self.mean = tensors["feature_mean"].numpy()
        self.std = tensors["feature_std"].numpy()
        self.params = {k: float(v) for k, v in extra["params"].items()}
        self.bias = float(extra["bias"])
        self.width = float(extra["width"])
        self.score_mean = float(extra["score_mean"])
        self.score_std = float(extra["score_std"])
