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

Cost, for a fixed number n of labeled videos, grows linearly with the unlabeled pool. With the
linear kernel the model is solved in feature space: f(x) = w·x + b with w = Xᵀc / dim (the
same minimiser: α cᵀKc = α·dim·|w|², and the objective's minimiser over w lies in the span of
the videos), and with the bias taken out by centring on the labeled videos,

    w = (X̃ᵀX̃ + α·dim·I + γ M)⁻¹ X̃ᵀ ỹ,      M = Xᵀ L X  (D × D, from the sparse Laplacian),

X̃, ỹ the labeled videos and scores centred on their labeled means. One eigendecomposition of
M serves every grid point: with B = α·dim·I + γM = U diag(α·dim + γσ) Uᵀ and P = X̃U, the
labeled videos' hat matrix is 11ᵀ/n + I − (I + G)⁻¹ with G = P diag(1/(α·dim + γσ)) Pᵀ
(n × n), so each (α, g) costs O(n²D + n³), whatever the pool. The graph (``methods._graph``)
is exact up to 20,000 videos and approximate above. The RBF kernel stays dense in the videos
(N × N) and refuses pools above ``RBF_LIMIT`` videos.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from scipy import linalg

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._graph import graph_gram, knn_graph, laplacian_times
from s4aqa.methods._pooling import as_array, check_shape, pool_segments, video_blocks, z_scores
from s4aqa.methods.base import Residuals
from s4aqa.training.metrics import rank_agreement

RBF_LIMIT = 20_000  # videos: the RBF kernel's dense N x N systems
PREDICT_BLOCK = 4096  # videos pooled and scored at a time by predict


# the grids searched by leave-one-out: ridge strength α, and graph strength g (0: ridge)
ALPHA_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
GRAPH_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


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
        self.n_nodes = 0  # the videos the model was fitted on (labeled + unlabeled)
        self.weights: np.ndarray | None = None  # linear kernel: (D', m), m best grid points
        self.nodes: np.ndarray | None = None  # RBF kernel: the standardised videos (N, D')
        self.coef: np.ndarray | None = None  # RBF kernel: (N, m)
        self.bias: np.ndarray | None = None  # (m,)
        self.width = 1.0  # RBF width (median squared distance)
        self.params: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.score_mean, self.score_std = 0.0, 1.0
        # the labeled videos' scores minus the chosen (averaged best) model's exact
        # leave-one-out predictions of them, in score units: what the selection measured
        self.loo_residuals: np.ndarray | None = None
        self.graph_used = False  # whether the chosen model uses the graph

    @property
    def fitted(self) -> bool:
        return self.bias is not None

    def standardised(self, features: np.ndarray | FeatureSet | list[FeatureSet]) -> np.ndarray:
        """Pooled, standardised rows of ``features`` (several FeatureSets: of their
        concatenation)."""
        return np.concatenate(list(self.standardised_blocks(features)))

    def standardised_blocks(self, features: np.ndarray | FeatureSet | list[FeatureSet],
                            size: int | None = None) -> Iterator[np.ndarray]:
        """``standardised`` ``size`` videos at a time (default ``PREDICT_BLOCK``): a
        prediction over a large pool holds one block's rows, not the pool's."""
        parts = features if isinstance(features, list) else [as_array(features)]
        for part in parts:
            check_shape(as_array(part), self.shape, "closed-form model")
        for block in video_blocks(parts, size or PREDICT_BLOCK):
            yield (pool_segments(block, self.pool) - self.mean) / self.std

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.kernel == "linear":
            return a @ b.T / a.shape[1]
        squared = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T
        return np.exp(-np.maximum(squared, 0.0) / (2 * self.width))

    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None) -> "GraphRidge":
        self.shape = (labeled.num_segments, labeled.dim)
        parts = [labeled]
        if unlabeled is not None and len(unlabeled):
            if (unlabeled.num_segments, unlabeled.dim) != self.shape:
                raise S4AQAError("labeled and unlabeled videos have different feature shapes")
            parts.append(unlabeled)
        nodes = pool_segments(parts, self.pool)  # the rows of both, in one array
        if self.kernel == "rbf" and len(nodes) > RBF_LIMIT:
            raise S4AQAError(
                f"the RBF kernel solves dense systems over all {len(nodes)} videos (at most "
                f"{RBF_LIMIT}); use kernel=linear, or fewer unlabeled videos")
        self.mean, self.std = nodes.mean(axis=0), nodes.std(axis=0) + 1e-6
        nodes -= self.mean
        nodes /= self.std
        n_labeled = len(labeled)
        self.n_nodes = len(nodes)
        self.score_mean, self.score_std = z_scores(labeled.scores)
        y = (labeled.scores - self.score_mean) / self.score_std
        self._y, self._loos = y, {}  # each grid point's leave-one-out, for the intervals
        graphs = self.graphs if len(nodes) > n_labeled else [0.0]  # no node to smooth over
        adjacency = knn_graph(nodes, self.neighbours) if any(graphs) else None
        degree = float(adjacency.sum() / len(nodes)) or 1.0 if adjacency is not None else 1.0
        if self.kernel == "linear":
            scored, solve = self._grid_linear(nodes, adjacency, n_labeled, y, graphs, degree)
        else:
            scored, solve = self._grid_dense(nodes, adjacency, n_labeled, y, graphs, degree)
        # the best grid point, or the mean of the best few (a steadier choice at few labels)
        best = sorted(scored, key=lambda s: -s[0])[: self.average_best]
        self.params = {"alpha": best[0][1], "graph": best[0][2], "gamma": best[0][2] / degree}
        columns = [solve(alpha, g) for _, alpha, g in best]
        if self.kernel == "linear":
            self.weights = np.stack([w for w, _ in columns], axis=1)
            self.bias = np.array([b for _, b in columns])
            self.nodes = self.coef = None
        else:
            coefficients = np.concatenate(columns, axis=1)
            self.coef, self.bias = coefficients[:-1], coefficients[-1]
            self.nodes, self.weights = nodes, None
        # the averaged model left without video i is the average of its parts left without i
        loo = (np.mean([self._loos[(alpha, g)] for _, alpha, g in best], axis=0)
               * self.score_std + self.score_mean)
        self.loo_residuals = np.asarray(labeled.scores, dtype=np.float64) - loo
        self.graph_used = bool(any(g > 0 for _, _, g in best))
        del self._y, self._loos
        return self

    def out_of_sample_residuals(self) -> Residuals | None:
        """The exact leave-one-out residuals of the labeled videos, where they are out of
        sample for a video scored later: not where the chosen model uses the graph (a labeled
        video left out stays a node of the graph, which a video scored later is not; on
        validation slices of Fis-V those residuals were too small)."""
        if self.loo_residuals is None or self.graph_used:
            return None
        return Residuals(self.loo_residuals, "loo")

    def _score(self, y: np.ndarray, loo: np.ndarray) -> float:
        return (-float(np.mean((loo - y) ** 2)) if self.select_by == "mse"
                else rank_agreement(loo, y))

    def _record(self, scored: list, alpha: float, g: float, loo: np.ndarray) -> None:
        score = self._score(self._y, loo)
        self.history.append({"alpha": alpha, "graph": g, f"loo_{self.select_by}": score})
        scored.append((score, alpha, g))
        self._loos[(alpha, g)] = loo

    def _grid_linear(self, nodes, adjacency, n_labeled, y, graphs, degree):
        """Every grid point's exact leave-one-out in feature space (module docstring), and a
        function giving the chosen points' (w, b)."""
        dim = nodes.shape[1]
        labeled = nodes[:n_labeled]
        x_mean, y_mean = labeled.mean(axis=0), float(y.mean())
        centred, y_centred = labeled - x_mean, y - y_mean
        if adjacency is not None:  # B = α·dim·I + γM = U diag(α·dim + γσ) Uᵀ
            sigma, basis = linalg.eigh(graph_gram(adjacency, nodes))
            projected = centred @ basis  # P = X̃U
        else:
            sigma, basis, projected = np.zeros(dim), None, centred
        gram = projected @ projected.T if adjacency is None else None  # ridge: G = X̃X̃ᵀ/(α·dim)

        def system(alpha: float, g: float):
            scale = 1.0 / (alpha * dim + (g / degree) * sigma)
            grown = gram / (alpha * dim) if gram is not None else (projected * scale) @ projected.T
            grown[np.diag_indices_from(grown)] += 1.0
            return scale, linalg.cho_factor(grown, lower=True)  # I + G

        self.history, scored = [], []
        for alpha in self.alphas:
            for g in graphs:
                _, factor = system(alpha, g)
                inverse = linalg.cho_solve(factor, np.eye(n_labeled))  # (I + G)⁻¹
                residual = inverse @ y_centred  # y − ŷ on the labeled videos
                leverage_left = np.diag(inverse) - 1.0 / n_labeled  # 1 − H_ii
                loo = y - residual / np.maximum(leverage_left, 1e-9)
                self._record(scored, alpha, g, loo)

        def solve(alpha: float, g: float):
            scale, factor = system(alpha, g)
            # w = B⁻¹X̃ᵀ(I + G)⁻¹ỹ (push-through), b = ȳ − x̄·w
            inner = scale * (projected.T @ linalg.cho_solve(factor, y_centred))
            w = basis @ inner if basis is not None else inner
            return w, y_mean - float(x_mean @ w)

        return scored, solve

    def _grid_dense(self, nodes, adjacency, n_labeled, y, graphs, degree):
        """The representer form over all N videos (the RBF kernel): N × N systems."""
        squared = (nodes ** 2).sum(1)[:, None] + (nodes ** 2).sum(1)[None] - 2 * nodes @ nodes.T
        self.width = float(np.median(squared[np.triu_indices(len(nodes), 1)])) or 1.0
        del squared
        kernel = self._kernel(nodes, nodes)
        graph_kernel = (laplacian_times(adjacency, kernel) if adjacency is not None
                        else np.zeros_like(kernel))  # L K
        self.history, scored = [], []
        for alpha in self.alphas:
            for g in graphs:
                solve = self._solver(kernel, graph_kernel, n_labeled, alpha, g / degree)
                fitted = solve(np.eye(n_labeled))[1]  # the hat matrix on the labeled videos
                loo = y - (y - fitted @ y) / np.maximum(1.0 - np.diag(fitted), 1e-9)
                self._record(scored, alpha, g, loo)

        def solve(alpha: float, g: float):
            return self._solver(kernel, graph_kernel, n_labeled, alpha, g / degree)(
                y[:, None])[0]

        return scored, solve

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

    def predict_normalised(self, features: np.ndarray | FeatureSet | list[FeatureSet]) -> np.ndarray:
        """Scores z-scored with the labeled videos' statistics."""
        if not self.fitted:
            raise S4AQAError("the closed-form model has not been fitted or loaded")
        scores = [(x @ self.weights + self.bias).mean(axis=1) if self.weights is not None
                  else (self._kernel(x, self.nodes) @ self.coef + self.bias).mean(axis=1)
                  for x in self.standardised_blocks(features)]
        return np.concatenate(scores) if scores else np.zeros(0)

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        return self.predict_normalised(features) * self.score_std + self.score_mean

    # ---- checkpoint -----------------------------------------------------------------------
    # linear kernel: the weights (D', m); RBF: the standardised videos and their coefficients
    def state_dict(self) -> dict[str, torch.Tensor]:
        model = ((("weights", self.weights),) if self.weights is not None
                 else (("nodes", self.nodes), ("coef", self.coef)))
        return {name: torch.as_tensor(np.ascontiguousarray(value), dtype=torch.float64)
                for name, value in model + (("bias", self.bias), ("feature_mean", self.mean),
                                            ("feature_std", self.std))}

    def extra_state(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "params": dict(self.params),
                "width": self.width, "score_mean": self.score_mean,
                "score_std": self.score_std, "kernel": self.kernel, "pool": self.pool,
                "n_nodes": self.n_nodes}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        self.shape = tuple(int(v) for v in extra["shape"])
        self.kernel, self.pool = extra.get("kernel", self.kernel), extra.get("pool", self.pool)
        self.weights = self.nodes = self.coef = None
        if "weights" in tensors:
            self.weights = tensors["weights"].numpy()
        else:
            self.nodes = tensors["nodes"].numpy()
            self.coef = tensors["coef"].numpy()
            if self.kernel == "linear":  # a checkpoint of the representer form: w = Xᵀc / dim
                self.weights = self.nodes.T @ self.coef / self.nodes.shape[1]
                self.nodes = self.coef = None
        self.n_nodes = int(extra.get("n_nodes", 0 if self.nodes is None else len(self.nodes)))
        self.bias = tensors["bias"].numpy()
        self.mean = tensors["feature_mean"].numpy()
        self.std = tensors["feature_std"].numpy()
        self.params = {k: float(v) for k, v in extra["params"].items()}
        self.width = float(extra["width"])
        self.score_mean = float(extra["score_mean"])
        self.score_std = float(extra["score_std"])
