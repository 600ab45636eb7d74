import math

import numpy as np
import pytest

from s4aqa.data.featureset import FeatureSet
from s4aqa.experiments.stats import paired_difference, summarise
from s4aqa.training.metrics import (evaluate, fisher_z_mean, format_spearman, rank_agreement,
                                    spearman)


def test_spearman_and_constant_prediction():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([3, 2, 1], [10, 20, 30]) == pytest.approx(-1.0)
    # undefined (constant predictions or scores, fewer than 2 videos): NaN, never 0
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    assert math.isnan(spearman([1.0], [2.0]))
    # as a selection score it is chance, 0
    assert rank_agreement([1, 1, 1], [1, 2, 3]) == 0.0
    assert rank_agreement([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert format_spearman(float("nan")) == "undefined" and format_spearman(0.5) == "0.5000"


def test_fisher_z_mean():
    assert fisher_z_mean([0.5, 0.5]) == pytest.approx(0.5)
    expected = np.tanh((np.arctanh(0.2) + np.arctanh(0.8)) / 2)
    assert fisher_z_mean([0.2, 0.8]) == pytest.approx(expected)
    assert fisher_z_mean([0.2, 0.8]) > 0.5  # not the arithmetic mean


def test_evaluate_per_group_uses_fisher_z():
    n = 8
    fs = FeatureSet(ids=[str(i) for i in range(n)], features=np.zeros((n, 1, 1)),
                    scores=np.array([1, 2, 3, 4, 1, 2, 3, 4.0]), split=["test"] * n,
                    groups=["a"] * 4 + ["b"] * 4)
    predicted = np.array([1, 2, 3, 4, 4, 3, 2, 1.0])
    metrics = evaluate(predicted, fs)
    assert metrics["test_spearman_per_group"] == {"a": pytest.approx(1.0), "b": pytest.approx(-1.0)}
    assert metrics["test_spearman"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["average"] == "fisher_z_over_groups"


def test_summary_and_paired_difference():
    s = summarise([0.1, 0.3])
    assert s.mean == pytest.approx(0.2) and s.std == pytest.approx(np.std([0.1, 0.3], ddof=1))
    d = paired_difference([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert d.mean == pytest.approx(0.1) and d.low == pytest.approx(0.1) and d.high == pytest.approx(0.1)
    d = paired_difference([0.5, 0.7, 0.6], [0.4, 0.5, 0.6])
    assert d.low < d.mean < d.high
