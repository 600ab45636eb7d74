"""Prediction intervals (methods.intervals): the jackknife's maths, the out-of-sample residuals
each kind of method gives through the Method interface, cross-fitting, and the state a
checkpoint keeps."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.errors import S4AQAError
from s4aqa.methods._linear import GraphRidge
from s4aqa.methods.intervals import (Intervals, check_coverage, conformal_quantile,
                                     conformal_rank, cross_fitted, fewest_residuals,
                                     fit_intervals, interval_metrics, ridge_residuals, too_few)
from s4aqa.methods.registry import create

def test_rank_is_the_conformal_order_statistic():
    assert conformal_rank(9, 0.9) == 9  # ceil(10 * 0.9) = 9, not 10 by rounding
    assert conformal_rank(19, 0.9) == 18
    assert conformal_rank(8, 0.9) is None  # ceil(9 * 0.9) = 9 > 8
    assert conformal_rank(40, 0.5) == 21
    assert fewest_residuals(0.9) == 9 and fewest_residuals(0.8) == 4
    residuals = np.arange(1.0, 11.0)  # 1..10
    assert conformal_quantile(residuals, 0.9) == 10.0
    assert conformal_quantile(-residuals, 0.5) == 6.0  # absolute values, rank ceil(5.5) = 6
    assert conformal_quantile(residuals[:5], 0.9) == float("inf")


def test_too_few_says_what_is_possible():
    line = too_few(5, 0.9)
    assert "5 labeled" in line and "90%" in line and "at least 9" in line
    assert "--coverage 0.83 or less" in line
    assert too_few(9, 0.9) is None and too_few(200, 0.95) is None
    assert "more labeled videos" in too_few(0, 0.5)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, "x", float("nan")])
def test_bad_coverage_is_refused(bad):
    with pytest.raises(S4AQAError, match="--coverage"):
        check_coverage(bad)


def test_coverage_holds_on_exchangeable_draws():
    """The order statistic's guarantee where residuals are exchangeable with the test one (as
    split conformal's are; the jackknife's are not quite, hence no theory for it): over many draws of n calibration and one test residual
    from the same law, the test one falls inside with probability >= coverage (and below
    coverage + 1 / (n + 1))."""
    rng = np.random.default_rng(0)
    n, draws = 20, 4000
    residuals = rng.standard_t(3, size=(draws, n + 1))
    inside = [abs(r[-1]) <= conformal_quantile(r[:-1], 0.9) for r in residuals]
    assert 0.9 - 0.015 <= np.mean(inside) <= 0.9 + 1 / (n + 1) + 0.015


def test_graph_ridge_keeps_exact_leave_one_out_of_the_averaged_model(videos):
    labeled = videos.train().subset(np.arange(25))
    model = GraphRidge(graphs=(0.0,), average_best=3).fit(labeled)
    loo = labeled.scores - model.out_of_sample_residuals().values
    assert loo.shape == (25,)
    # brute force: refit the chosen grid points without each video (the standardisation and
    # the grid choice stay those of the full fit, as in the hat-matrix formula)
    alphas = [h["alpha"] for h in sorted(model.history, key=lambda h: -h["loo_mse"])[:3]]
    x = model.standardised(labeled)
    y = (labeled.scores - model.score_mean) / model.score_std
    kernel = x @ x.T / x.shape[1]
    for i in (0, 7, 24):
        keep = np.arange(25) != i
        predictions = []
        for alpha in alphas:
            k = kernel[np.ix_(keep, keep)]
            system = np.block([[k + alpha * np.eye(24), np.ones((24, 1))],
                               [k.sum(0)[None], np.array([[24.0]])]])
            right = np.concatenate([y[keep], [y[keep].sum()]])
            solution = np.linalg.solve(system, right)
            predictions.append(kernel[i, keep] @ solution[:-1] + solution[-1])
        expected = np.mean(predictions) * model.score_std + model.score_mean
        assert loo[i] == pytest.approx(expected, rel=1e-6, abs=1e-6)


@pytest.fixture(scope="module")
def sets(videos):
    """60 labeled training videos and the 60 test videos."""
    return videos.train().subset(np.arange(60)), videos.test()


def test_each_method_gives_its_out_of_sample_residuals(sets, deep_tiny):
    labeled, test = sets
    lap = create("lap_rls", {"graph_grid": "0"}, seed=0).fit(labeled)
    residuals = lap.out_of_sample_residuals()
    assert residuals.source == "loo"
    assert np.array_equal(residuals.values, lap.model.loo_residuals)
    svr = create("svr", {"c_grid": "1", "epsilon_grid": "0.2", "gamma_grid": "1"}, seed=0)
    svr.fit(labeled)
    residuals = svr.out_of_sample_residuals()
    assert residuals.source == "cv"
    fitted = labeled.scores - svr.predict(labeled)
    assert not np.allclose(residuals.values, fitted)  # out of fold, not fitted values
    assert np.abs(residuals.values).mean() > np.abs(fitted).mean()
    deep = create("aa", {**deep_tiny, "steps": 5}, seed=0).fit(labeled)
    assert deep.out_of_sample_residuals().source == "partner_loo"
    plain = create("aa", {**deep_tiny, "steps": 5, "core": "plain"}, seed=0).fit(labeled)
    assert plain.out_of_sample_residuals() is None
    intervals = fit_intervals(plain, labeled)
    assert intervals.source == "ridge_loo" and intervals.n == len(labeled)
    np.testing.assert_allclose(intervals.residuals, np.sort(np.abs(ridge_residuals(labeled))))


def test_cross_fitted_residuals_are_the_methods_own_out_of_fold(sets):
    labeled, _ = sets
    options = {"graph_grid": "0"}
    own = cross_fitted(lambda: create("lap_rls", options, seed=0), labeled, None, None,
                       folds=4, seed=3)
    assert own.source == "crossfit" and own.values.shape == (60,)
    # by hand: fold k's videos predicted by a model fitted on the other folds
    again = cross_fitted(lambda: create("lap_rls", options, seed=0), labeled, None, None,
                         folds=4, seed=3)
    np.testing.assert_array_equal(own.values, again.values)  # the folds are a seeded draw
    whole = create("lap_rls", options, seed=0).fit(labeled)
    assert np.abs(own.values).mean() > np.abs(labeled.scores - whole.predict(labeled)).mean()
    intervals = fit_intervals(whole, labeled, 0.9, own)
    assert intervals.source == "crossfit"
    np.testing.assert_allclose(intervals.residuals, np.sort(np.abs(own.values)))


def test_intervals_are_centred_on_the_point_prediction_and_round_trip(sets):
    labeled, test = sets
    lap = create("lap_rls", {}, seed=0).fit(labeled)
    intervals = fit_intervals(lap, labeled, 0.8)
    predicted = lap.predict(test)
    low, high = intervals.bounds(predicted)
    np.testing.assert_allclose((low + high) / 2, predicted)
    assert np.all(high - low == pytest.approx(2 * intervals.half_width))
    again = Intervals.from_json(intervals.to_json())
    assert again.half_width == intervals.half_width and again.coverage == 0.8
    metrics = interval_metrics(low, high, test)
    inside = np.mean((test.scores >= low) & (test.scores <= high))
    assert metrics["test_coverage"] == inside
    assert metrics["test_interval_width"] == pytest.approx(2 * intervals.half_width)
    assert metrics["test_interval_width_relative"] == pytest.approx(
        2 * intervals.half_width / test.scores.std())
    with pytest.raises(S4AQAError, match="retrain"):
        Intervals.from_json({"coverage": 0.9})


def test_infinite_intervals_from_too_few_residuals(sets):
    labeled, test = sets
    few = labeled.subset(np.arange(5))
    lap = create("lap_rls", {}, seed=0).fit(few)
    intervals = fit_intervals(lap, few, 0.9)
    assert intervals.half_width == float("inf")
    low, high = intervals.bounds(lap.predict(test))
    metrics = interval_metrics(low, high, test)
    assert metrics["test_coverage"] == 1.0 and metrics["test_interval_width"] is None


def test_graph_and_standardised_blends_take_ridges_residuals(staged, deep_tiny, sets):
    method = create("s4aqa", {**deep_tiny, "steps": 5}, seed=0)
    method.fit(staged["labeled"], staged["unlabeled"])
    assert method.blend_stats and method.out_of_sample_residuals() is None  # standardised
    assert fit_intervals(method, staged["labeled"]).source == "ridge_loo"
    labeled, _ = sets
    lap = create("lap_rls", {"graph_grid": "1,3"}, seed=0).fit(labeled, staged["unlabeled"])
    assert lap.model.graph_used and lap.out_of_sample_residuals() is None
    assert fit_intervals(lap, labeled).source == "ridge_loo"
