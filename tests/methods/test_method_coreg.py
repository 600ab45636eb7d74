"""COREG: the kNN regressors, the choice of the most helpful unlabeled example, co-training."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods.coreg import knn_predict
from s4aqa.methods.registry import create


def test_knn_predict_averages_the_k_nearest():
    distances = np.array([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.5]])
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(knn_predict(distances, labels, 2), [1.5, 3.5])
    np.testing.assert_allclose(knn_predict(distances, labels, 10), [2.5, 2.5])


def test_the_added_example_reduces_the_error_on_its_neighbours():
    """On a line with y = x, labeled points at 0, 4, 8 leave a 2-NN regressor (whose neighbours
    include the point itself) wrong at 4 and 8; the unlabeled point 5, labeled 6 by the
    regressor, becomes their neighbour and halves their errors; the point 100 changes nothing."""
    method = create("coreg", {"k": 2})
    points = np.array([0.0, 4.0, 8.0, 5.0, 100.0])
    distance = np.abs(points[:, None] - points[None])
    labels = {i: points[i] for i in range(3)}
    pick = method._most_helpful(distance, [0, 1, 2], labels, [3, 4])
    assert pick == (3, pytest.approx(6.0))
    assert method._most_helpful(distance, [0, 1, 2], labels, [4]) is None


def test_co_training_grows_both_training_sets_and_stops_with_the_rounds(fit, staged):
    method = fit("coreg")
    n_labeled = len(staged["labeled"])
    sizes = [len(ys) for _, ys in method.sets]
    assert all(n_labeled < s <= n_labeled + 30 for s in sizes)
    assert len(method.history) <= 30 and method.history[-1]["size_1"] == sizes[0]
    # no rounds: the average of two plain kNN regressors on the labeled videos
    plain = create("coreg", {"rounds": 0}).fit(staged["labeled"], staged["unlabeled"])
    assert [len(ys) for _, ys in plain.sets] == [n_labeled, n_labeled]


def test_the_two_distance_orders_make_two_regressors(staged):
    same = create("coreg", {"p1": 2, "p2": 2, "rounds": 0}).fit(staged["labeled"], staged["unlabeled"])
    x = same.embed(staged["test"])
    (x1, y1), _ = same.sets
    from scipy.spatial.distance import cdist
    np.testing.assert_allclose(same.predict(staged["test"]),
                               knn_predict(cdist(x, x1), y1, 3))


def test_options_and_shapes_are_checked(staged):
    with pytest.raises(S4AQAError, match="p1"):
        create("coreg", {"p1": 0.5})
    with pytest.raises(S4AQAError, match="at least 1"):
        create("coreg", {"k": 0})
    other = staged["unlabeled"]
    narrow = FeatureSet(ids=other.ids, features=other.features[:, :, :4], scores=other.scores,
                        split=other.split)
    with pytest.raises(S4AQAError, match="different feature shapes"):
        create("coreg", {}).fit(staged["labeled"], narrow)
