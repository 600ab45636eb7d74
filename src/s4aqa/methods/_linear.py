"""Closed-form linear models of pooled features: ridge regression and Laplacian-regularised
least squares over a neighbourhood graph (Belkin, Niyogi & Sindhwani, JMLR 2006).

``GraphRidge`` is the model behind the ``lap_rls`` method and the closed-form partner every
deep method blends with (``DeepOptions.blend``): with unlabeled videos it is LapRLS, without
(or with the graph grid 0) it is ridge regression. Each video is the mean of its segment
features (``pool``), standardised over the model's videos. The graph links each video to its
``neighbours`` nearest by cosine similarity, symmetrised (an edge where either video is among
the other's neighbours, weight 1), with Laplacian L = D − W. The predictor f(x) = Σ_j c_j
k(x, x_j) + b over the videos (a linear kernel k = x·x'/dim, or an RBF kernel whose width is
the median squared distance) minimises

    Σ_labeled (f(x_i) − y_i)²  +  α cᵀKc  +  γ fᵀ L f,      γ = g / (the graph's mean degree),

so videos that are neighbours, labeled or not, are asked to score alike; with a sum over the
labeled videos, the graph's weight relative to the labels falls as labels grow. (α, g) come
from their grids by exact leave-one-out on the labeled videos: the graph term reads no label,
so leaving a labeled video out is making it an unlabeled node, and its leave-one-out residual
is e_i / (1 − H_ii) of the hat matrix. g = 0 (ridge) is in the grid, so the selection can
switch the graph off where it does not help.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from scipy import linalg

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._pooling import as_array, check_shape, pool_segments
from s4aqa.training.metrics import spearman


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


# the grids searched by leave-one-out: ridge strength α, and graph strength g (0: ridge)
ALPHA_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
GRAPH_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def grid_text(grid: Sequence[float]) -> str:
    """A grid as an option's text: (0.0001, 1.0) -> '0.0001,1'."""
    return ",".join(f"{v:g}" for v in grid)


class GraphRidge:
    """The closed-form model of the module docstring, fitted on labeled videos and, where
    given, unlabeled ones (the graph's other nodes)."""

    def __init__(self, *, kernel: str = "linear", pool: str = "mean", neighbours: int = 10,
                 alphas: Sequence[float] = ALPHA_GRID, graphs: Sequence[float] = GRAPH_GRID,
                 select_by: str = "mse", average_best: int = 1) -> None:
        self.kernel, self.pool, self.neighbours = kernel, pool, neighbours
        self.alphas, self.graphs = list(alphas), list(graphs)
        self.select_by, self.average_best = select_by, max(int(average_best), 1)
        self.shape: tuple[int, int] | None = None
        self.mean = self.std = None
        self.nodes: np.ndarray | None = None  # the standardised videos (N, D')
        self.coef: np.ndarray | None = None  # (N, m): m best grid points, averaged
        self.bias: np.ndarray | None = None  # (m,)
        self.width = 1.0  # RBF width (median squared distance)
        self.params: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.score_mean, self.score_std = 0.0, 1.0
        # exact leave-one-out predictions of the labeled videos by the chosen (averaged best)
        # model, in score units, and their scores: the residuals its intervals are made of
        self.loo: np.ndarray | None = None
        self.loo_truth: np.ndarray | None = None
        self.graph_used = False

    def standardised(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        array = as_array(features)
        check_shape(array, self.shape, "closed-form model")
        return (pool_segments(array, self.pool) - self.mean) / self.std

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.kernel == "linear":
            return a @ b.T / a.shape[1]
        squared = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T
        return np.exp(-np.maximum(squared, 0.0) / (2 * self.width))

    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None) -> "GraphRidge":
        self.shape = (labeled.num_segments, labeled.dim)
        pooled = [pool_segments(labeled, self.pool)]
        if unlabeled is not None and len(unlabeled):
            if (unlabeled.num_segments, unlabeled.dim) != self.shape:
                raise S4AQAError("labeled and unlabeled videos have different feature shapes")
            pooled.append(pool_segments(unlabeled, self.pool))
        both = np.concatenate(pooled)
        self.mean, self.std = both.mean(axis=0), both.std(axis=0) + 1e-6
        self.nodes = (both - self.mean) / self.std
        n_labeled = len(labeled)
        if self.kernel == "rbf":
            squared = (self.nodes ** 2).sum(1)[:, None] + (self.nodes ** 2).sum(1)[None] \
                - 2 * self.nodes @ self.nodes.T
            self.width = float(np.median(squared[np.triu_indices(len(self.nodes), 1)])) or 1.0
        self.score_mean = float(labeled.scores.mean())
        self.score_std = float(labeled.scores.std()) or 1.0
        y = (labeled.scores - self.score_mean) / self.score_std
        kernel = self._kernel(self.nodes, self.nodes)
        graphs = self.graphs if len(self.nodes) > n_labeled else [0.0]  # no node to smooth over
        adjacency = knn_graph(self.nodes, self.neighbours) if any(graphs) else None
        graph_kernel = ((np.diag(adjacency.sum(1)) - adjacency) @ kernel
                        if adjacency is not None else np.zeros_like(kernel))  # L K
        degree = float(adjacency.sum(1).mean()) or 1.0 if adjacency is not None else 1.0
        self.history, scored, loos = [], [], {}
        for alpha in self.alphas:
            for g in graphs:
                solve = self._solver(kernel, graph_kernel, n_labeled, alpha, g / degree)
                fitted = solve(np.eye(n_labeled))[1]  # the hat matrix on the labeled videos
                loo = y - (y - fitted @ y) / np.maximum(1.0 - np.diag(fitted), 1e-9)
                score = (-float(np.mean((loo - y) ** 2)) if self.select_by == "mse"
                         else spearman(loo, y))
                self.history.append({"alpha": alpha, "graph": g, f"loo_{self.select_by}": score})
                scored.append((score, alpha, g))
                loos[(alpha, g)] = loo
        # the best grid point, or the mean of the best few (a steadier choice at few labels)
        best = sorted(scored, key=lambda s: -s[0])[: self.average_best]
        self.params = {"alpha": best[0][1], "graph": best[0][2], "gamma": best[0][2] / degree}
        columns = [self._solver(kernel, graph_kernel, n_labeled, alpha, g / degree)(y[:, None])[0]
                   for _, alpha, g in best]
        coefficients = np.concatenate(columns, axis=1)
        self.coef, self.bias = coefficients[:-1], coefficients[-1]
        # the averaged model left without video i is the average of its parts left without i
        self.loo = (np.mean([loos[(alpha, g)] for _, alpha, g in best], axis=0)
                    * self.score_std + self.score_mean)
        self.loo_truth = np.asarray(labeled.scores, dtype=np.float64).copy()
        # whether the graph is on in the chosen model: its leave-one-out then keeps the video
        # as a node of the graph, which a video scored later is not (its residuals are low)
        self.graph_used = bool(any(g > 0 for _, _, g in best))
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

    def predict_normalised(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """Scores z-scored with the labeled videos' statistics."""
        if self.coef is None:
            raise S4AQAError("the closed-form model has not been fitted or loaded")
        return (self._kernel(self.standardised(features), self.nodes) @ self.coef
                + self.bias).mean(axis=1)

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        return self.predict_normalised(features) * self.score_std + self.score_mean

    # ---- checkpoint -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.as_tensor(np.ascontiguousarray(value), dtype=torch.float64)
                for name, value in (("nodes", self.nodes), ("coef", self.coef),
                                    ("bias", self.bias), ("feature_mean", self.mean),
                                    ("feature_std", self.std))}

    def extra_state(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "params": dict(self.params),
                "width": self.width, "score_mean": self.score_mean,
                "score_std": self.score_std, "kernel": self.kernel, "pool": self.pool}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        self.shape = tuple(int(v) for v in extra["shape"])
        self.kernel, self.pool = extra.get("kernel", self.kernel), extra.get("pool", self.pool)
        self.nodes = tensors["nodes"].numpy()
        self.coef = tensors["coef"].numpy()
        self.bias = tensors["bias"].numpy()
        self.mean = tensors["feature_mean"].numpy()
        self.std = tensors["feature_std"].numpy()
        self.params = {k: float(v) for k, v in extra["params"].items()}
        self.width = float(extra["width"])
        self.score_mean = float(extra["score_mean"])
        self.score_std = float(extra["score_std"])
