"""LapRLS: the closed form, its exact leave-one-out, and what the graph over unlabeled videos
adds where the unlabeled videos carry the structure of the scores."""

from __future__ import annotations

import numpy as np

from s4aqa.methods._linear import GraphRidge as LapRLS
from s4aqa.methods._linear import knn_graph
from s4aqa.methods.registry import create


def _problem(n=40, labeled=12, seed=0):
    rng = np.random.default_rng(seed)
    nodes = rng.standard_normal((n, 6))
    kernel = nodes @ nodes.T / 6
    adjacency = knn_graph(nodes, 4)
    graph_kernel = (np.diag(adjacency.sum(1)) - adjacency) @ kernel
    y = rng.standard_normal(labeled)
    return nodes, kernel, adjacency, graph_kernel, y


def test_the_solution_zeroes_the_gradient_of_the_objective():
    nodes, kernel, adjacency, graph_kernel, y = _problem()
    alpha, gamma = 0.3, 0.2
    coefficients, fitted = LapRLS._solver(kernel, graph_kernel, len(y), alpha, gamma)(y[:, None])
    c, b = coefficients[:-1, 0], coefficients[-1, 0]
    f = kernel @ c + b
    laplacian = np.diag(adjacency.sum(1)) - adjacency
    # J(c, b) = |f_l - y|^2 + alpha c'Kc + gamma f'Lf
    residual = np.zeros(len(f))
    residual[: len(y)] = f[: len(y)] - y
    grad_c = 2 * kernel @ residual + 2 * alpha * kernel @ c + 2 * gamma * kernel @ laplacian @ f
    grad_b = 2 * residual.sum()
    assert np.abs(grad_c).max() < 1e-8 and abs(grad_b) < 1e-8
    np.testing.assert_allclose(fitted[:, 0], f[: len(y)])


def test_leave_one_out_is_exact():
    """The hat-matrix shortcut equals refitting with the video made an unlabeled node."""
    _, kernel, _, graph_kernel, y = _problem()
    solve = LapRLS._solver(kernel, graph_kernel, len(y), 0.3, 0.2)
    hat = solve(np.eye(len(y)))[1]
    shortcut = y - (y - hat @ y) / (1 - np.diag(hat))
    for i in range(len(y)):
        # the other labeled videos first, then video i as an unlabeled node, then the rest
        order = [j for j in range(len(y)) if j != i] + [i] + list(range(len(y), len(kernel)))
        k = kernel[np.ix_(order, order)]
        lk = graph_kernel[np.ix_(order, order)]
        kept = np.delete(y, i)
        coefficients, _ = LapRLS._solver(k, lk, len(kept), 0.3, 0.2)(kept[:, None])
        left_out = len(y) - 1  # its position among the nodes after reordering
        refit = k[left_out] @ coefficients[:-1, 0] + coefficients[-1, 0]
        assert abs(refit - shortcut[i]) < 1e-8


def test_a_stronger_graph_makes_neighbours_score_alike(videos, staged):
    """The graph term asks neighbouring videos, labeled or not, to score alike: the fitted
    scores' roughness over the graph falls as its strength grows; with the option unlabeled
    off the graph holds the labeled videos only."""
    labeled, unlabeled = staged["labeled"], staged["unlabeled"]
    roughness = []
    for g in ("0", "1", "30"):
        method = create("lap_rls", {"alpha_grid": "1", "graph_grid": g, "average_best": 1})
        method.fit(labeled, unlabeled)
        model = method.model
        f = (model._kernel(model.nodes, model.nodes) @ model.coef).mean(axis=1)  # the nodes' scores
        adjacency = knn_graph(model.nodes, model.neighbours)
        laplacian = np.diag(adjacency.sum(1)) - adjacency
        f = (f - f.mean()) / f.std()
        roughness.append(float(f @ laplacian @ f))
    assert roughness[0] > roughness[1] > roughness[2]
    assert len(method.model.nodes) == len(labeled) + len(unlabeled)
    alone = create("lap_rls", {"unlabeled": False}).fit(labeled, unlabeled)
    assert len(alone.model.nodes) == len(labeled)
