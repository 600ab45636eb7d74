"""LapRLS: the closed form, its exact leave-one-out, the feature-space solver against a plain
dense reference in the videos' space, the graph (exact, and approximate above a size), and what
the graph over unlabeled videos adds where the unlabeled videos carry the structure of the
scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods import _graph, _linear
from s4aqa.methods._linear import GraphRidge as LapRLS
from s4aqa.methods._graph import exact_neighbours, knn_graph
from s4aqa.methods.registry import create
from s4aqa.training.metrics import spearman


# ---- a straightforward dense reference: the representer form over all N videos ------------
def dense_graph(points, neighbours):
    unit = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(neighbours, len(points) - 1)
    adjacency = np.zeros_like(similarity)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    adjacency[np.repeat(np.arange(len(points)), k), nearest.ravel()] = 1.0
    return np.maximum(adjacency, adjacency.T)


def dense_solver(kernel, graph_kernel, n_labeled, alpha, gamma):
    """(J K + α I + γ L K) c + J 1 b = J y and Σ_labeled (K c + b − y) = 0."""
    n = len(kernel)
    system = np.zeros((n + 1, n + 1))
    system[:n, :n] = alpha * np.eye(n) + gamma * graph_kernel
    system[:n_labeled, :n] += kernel[:n_labeled]
    system[:n_labeled, n] = 1.0
    system[n, :n] = kernel[:n_labeled].sum(axis=0)
    system[n, n] = n_labeled
    factor = linalg.lu_factor(system)

    def solve(targets):
        right = np.zeros((n + 1, targets.shape[1]))
        right[:n_labeled] = targets
        right[n] = targets.sum(axis=0)
        coefficients = linalg.lu_solve(factor, right)
        return coefficients, kernel[:n_labeled] @ coefficients[:n] + coefficients[n]

    return solve


def dense_reference(labeled, unlabeled, test, alphas, graphs, average_best=5, select_by="mse",
                    neighbours=10):
    """Predictions on ``test`` and the leave-one-out history of the dense representer form."""
    both = np.concatenate([labeled.features.astype(np.float64).mean(1),
                           unlabeled.features.astype(np.float64).mean(1)])
    mean, std = both.mean(axis=0), both.std(axis=0) + 1e-6
    nodes = (both - mean) / std
    n = len(labeled)
    y = (labeled.scores - labeled.scores.mean()) / (labeled.scores.std() or 1.0)
    kernel = nodes @ nodes.T / nodes.shape[1]
    adjacency = dense_graph(nodes, neighbours)
    graph_kernel = (np.diag(adjacency.sum(1)) - adjacency) @ kernel
    degree = float(adjacency.sum(1).mean())
    history, scored = [], []
    for alpha in alphas:
        for g in graphs:
            hat = dense_solver(kernel, graph_kernel, n, alpha, g / degree)(np.eye(n))[1]
            loo = y - (y - hat @ y) / np.maximum(1.0 - np.diag(hat), 1e-9)
            score = -float(np.mean((loo - y) ** 2)) if select_by == "mse" else spearman(loo, y)
            history.append(score)
            scored.append((score, alpha, g))
    best = sorted(scored, key=lambda s: -s[0])[:average_best]
    x = (test.features.astype(np.float64).mean(1) - mean) / std
    out = []
    for _, alpha, g in best:
        c = dense_solver(kernel, graph_kernel, n, alpha, g / degree)(y[:, None])[0]
        out.append(x @ nodes.T / nodes.shape[1] @ c[:-1, 0] + c[-1, 0])
    z = np.mean(out, axis=0)
    return z * (labeled.scores.std() or 1.0) + labeled.scores.mean(), history, best


def generated(n, n_labeled, dim, segments=4, seed=0):
    rng = np.random.default_rng(seed)
    skill = rng.standard_normal(n + 50)
    x = rng.standard_normal((n + 50, segments, dim)).astype(np.float32)
    x[:, :, :6] += skill[:, None, None].astype(np.float32)
    scores = 60 + 10 * skill + rng.standard_normal(n + 50)
    data = FeatureSet([f"v{i}" for i in range(n + 50)], x, scores,
                      ["train"] * n + ["test"] * 50)
    return data.subset(np.arange(n_labeled)), data.subset(np.arange(n_labeled, n)), \
        data.subset(np.arange(n, n + 50))


@pytest.mark.parametrize("n, n_labeled, dim, select_by", [
    (60, 12, 8, "mse"), (60, 12, 80, "spearman"), (90, 30, 20, "mse")])
def test_the_feature_space_solver_gives_the_dense_reference(n, n_labeled, dim, select_by):
    labeled, unlabeled, test = generated(n, n_labeled, dim, seed=n + dim)
    alphas, graphs = _linear.ALPHA_GRID, _linear.GRAPH_GRID
    expected, history, best = dense_reference(labeled, unlabeled, test, alphas, graphs,
                                              select_by=select_by, neighbours=5)
    model = LapRLS(alphas=alphas, graphs=graphs, average_best=5, select_by=select_by,
                   neighbours=5).fit(labeled, unlabeled)
    np.testing.assert_allclose(model.predict(test), expected, rtol=1e-6)
    np.testing.assert_allclose([h[f"loo_{select_by}"] for h in model.history], history,
                               rtol=1e-6, atol=1e-9)
    assert [(h["alpha"], h["graph"]) for h in model.history] == \
        [(a, g) for a in alphas for g in graphs]
    assert (model.params["alpha"], model.params["graph"]) == best[0][1:]


def test_fis_v_sized_data_gives_the_dense_reference():
    """400 videos of (4, 1024) at 10% labels, as Fis-V's training split."""
    labeled, unlabeled, test = generated(400, 40, 1024, seed=7)
    expected, _, _ = dense_reference(labeled, unlabeled, test, _linear.ALPHA_GRID,
                                     _linear.GRAPH_GRID)
    model = LapRLS(average_best=5).fit(labeled, unlabeled)
    np.testing.assert_allclose(model.predict(test), expected, rtol=1e-6)


def test_ridge_alone_gives_the_dense_reference_and_reads_the_pool_for_standardising_only():
    labeled, unlabeled, test = generated(200, 20, 64, seed=3)
    expected, _, _ = dense_reference(labeled, unlabeled, test, _linear.ALPHA_GRID, (0.0,))
    model = LapRLS(graphs=(0.0,), average_best=5).fit(labeled, unlabeled)
    np.testing.assert_allclose(model.predict(test), expected, rtol=1e-6)
    assert model.n_nodes == 200


def test_the_dense_reference_zeroes_the_gradient_and_its_leave_one_out_is_exact():
    """The objective's gradient vanishes at the reference's solution, and the hat-matrix
    shortcut equals refitting with the video made an unlabeled node."""
    rng = np.random.default_rng(0)
    nodes = rng.standard_normal((40, 6))
    kernel = nodes @ nodes.T / 6
    adjacency = dense_graph(nodes, 4)
    laplacian = np.diag(adjacency.sum(1)) - adjacency
    graph_kernel = laplacian @ kernel
    y = rng.standard_normal(12)
    coefficients, fitted = dense_solver(kernel, graph_kernel, len(y), 0.3, 0.2)(y[:, None])
    c, b = coefficients[:-1, 0], coefficients[-1, 0]
    f = kernel @ c + b
    residual = np.zeros(len(f))
    residual[: len(y)] = f[: len(y)] - y
    grad_c = 2 * kernel @ residual + 2 * 0.3 * kernel @ c + 2 * 0.2 * kernel @ laplacian @ f
    assert np.abs(grad_c).max() < 1e-8 and abs(2 * residual.sum()) < 1e-8
    np.testing.assert_allclose(fitted[:, 0], f[: len(y)])
    hat = dense_solver(kernel, graph_kernel, len(y), 0.3, 0.2)(np.eye(len(y)))[1]
    shortcut = y - (y - hat @ y) / (1 - np.diag(hat))
    for i in range(len(y)):
        order = [j for j in range(len(y)) if j != i] + [i] + list(range(len(y), len(kernel)))
        k, lk = kernel[np.ix_(order, order)], graph_kernel[np.ix_(order, order)]
        co, _ = dense_solver(k, lk, len(y) - 1, 0.3, 0.2)(np.delete(y, i)[:, None])
        assert abs(k[len(y) - 1] @ co[:-1, 0] + co[-1, 0] - shortcut[i]) < 1e-8


def test_the_blockwise_graph_is_the_dense_graph_ties_included():
    rng = np.random.default_rng(1)
    points = rng.standard_normal((300, 12))
    points[100:110] = points[5]  # exact ties: the lower index wins, as a stable sort
    expected = dense_graph(points, 7)
    np.testing.assert_array_equal(knn_graph(points, 7).toarray(), expected)
    blocked = exact_neighbours(points, 7, block=64)
    np.testing.assert_array_equal(np.sort(blocked, axis=1),
                                  np.sort(exact_neighbours(points, 7, block=1000), axis=1))


def test_the_approximate_graph_is_close_to_the_exact_one():
    pytest.importorskip("faiss", reason="the approximate graph needs faiss-cpu (extra 'scale')")
    rng = np.random.default_rng(2)
    points = rng.standard_normal((3000, 8)) @ rng.standard_normal((8, 64)) \
        + 0.3 * rng.standard_normal((3000, 64))
    exact = exact_neighbours(points, 10)
    approximate = _graph.approximate_neighbours(points, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approximate)])
    assert recall > 0.95
    np.testing.assert_array_equal(approximate, _graph.approximate_neighbours(points, 10))
    graph = knn_graph(points, 10, exact_limit=1000)  # above the limit: the approximate graph
    assert (graph != graph.T).nnz == 0 and graph.diagonal().sum() == 0


def test_the_rbf_kernel_refuses_a_pool_too_large_for_it(monkeypatch):
    labeled, unlabeled, _ = generated(60, 12, 8)
    monkeypatch.setattr(_linear, "RBF_LIMIT", 50)
    with pytest.raises(S4AQAError, match="RBF kernel"):
        LapRLS(kernel="rbf").fit(labeled, unlabeled)
    assert LapRLS(kernel="linear").fit(labeled, unlabeled).n_nodes == 60


def test_a_checkpoint_of_the_representer_form_loads_as_weights():
    """An older checkpoint stored the standardised videos and their coefficients."""
    labeled, unlabeled, test = generated(60, 12, 8)
    model = LapRLS(average_best=5).fit(labeled, unlabeled)
    nodes = model.standardised(np.concatenate([labeled.features, unlabeled.features]))
    coef = np.linalg.lstsq(nodes.T / nodes.shape[1], model.weights, rcond=None)[0]
    old = {k: v for k, v in model.state_dict().items() if k != "weights"}
    old["nodes"], old["coef"] = torch.as_tensor(nodes), torch.as_tensor(coef)
    loaded = LapRLS()
    loaded.load_state(old, model.extra_state())
    np.testing.assert_allclose(loaded.predict(test), model.predict(test), rtol=1e-6)


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
        nodes = np.concatenate([model.standardised(labeled), model.standardised(unlabeled)])
        f = model.predict_normalised(np.concatenate([labeled.features, unlabeled.features]))
        adjacency = knn_graph(nodes, model.neighbours).toarray()
        laplacian = np.diag(adjacency.sum(1)) - adjacency
        f = (f - f.mean()) / f.std()
        roughness.append(float(f @ laplacian @ f))
    assert roughness[0] > roughness[1] > roughness[2]
    assert method.model.n_nodes == len(labeled) + len(unlabeled)
    alone = create("lap_rls", {"unlabeled": False}).fit(labeled, unlabeled)
    assert alone.model.n_nodes == len(labeled)


def test_the_rbf_kernel_still_fits_and_reloads():
    labeled, unlabeled, test = generated(60, 12, 8)
    model = LapRLS(kernel="rbf", average_best=3).fit(labeled, unlabeled)
    loaded = LapRLS()
    loaded.load_state(model.state_dict(), model.extra_state())
    np.testing.assert_allclose(loaded.predict(test), model.predict(test), rtol=1e-9)


@pytest.mark.parametrize("how", ["mean", "mean_max", "mean_std"])
def test_pooling_a_block_at_a_time_gives_the_same_vectors(monkeypatch, how):
    from s4aqa.methods import _pooling

    x = np.random.default_rng(4).standard_normal((37, 5, 6)).astype(np.float32)
    whole = _pooling.pool_segments(x, how)
    monkeypatch.setattr(_pooling, "POOL_BLOCK", 60)  # two videos a block
    np.testing.assert_array_equal(_pooling.pool_segments(x, how), whole)
    a = x.astype(np.float64)
    parts = {"mean": [a.mean(1)], "mean_max": [a.mean(1), a.max(1)],
             "mean_std": [a.mean(1), a.std(1)]}[how]
    np.testing.assert_array_equal(whole, np.concatenate(parts, axis=1))


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_predicting_a_block_of_videos_at_a_time_gives_the_same_scores(monkeypatch, kernel):
    labeled, unlabeled, test = generated(60, 40, 8)
    model = LapRLS(kernel=kernel, average_best=3).fit(labeled, unlabeled)
    whole = model.predict_normalised([labeled, unlabeled, test])
    monkeypatch.setattr(_linear, "PREDICT_BLOCK", 7)  # blocks that span two sets too
    # the same rows, up to the last bits a matrix product's row blocking may move
    np.testing.assert_allclose(model.predict_normalised([labeled, unlabeled, test]), whole,
                               rtol=1e-12, atol=1e-12)
    assert len(whole) == len(labeled) + len(unlabeled) + len(test)
