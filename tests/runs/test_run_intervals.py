"""A run's prediction intervals end to end: predictions.csv, metrics.json, the checkpoint (the
same interval in a later process), `predict` and `score --review`, the too-few line, and the
run's key at the default coverage."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from s4aqa.cli import main
from s4aqa.config import RunConfig
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError
from s4aqa.runs.checkpoint import load_checkpoint
from s4aqa.runs.identity import run_key
from s4aqa.runs.intervals import bounds_of, review_text, widest
from s4aqa.runs.run import run_training
from s4aqa.runs.run_folder import write_run

FAST = {"steps": 10, "hidden": 16, "feedforward": 32, "heads": 2, "members": 1}


@pytest.fixture(scope="module")
def data():
    return make_staged_actions(n_train=80, n_test=40, dim=8, seed=5)


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("method, options, source", [("lap_rls", {"graph_grid": "0"}, "loo"),
                                                      ("aa", FAST, "partner_loo")])
def test_run_writes_intervals_and_the_checkpoint_keeps_them(tmp_path, data, method, options,
                                                            source):
    result = run_training(RunConfig(method=method, label_ratio=0.4, seed=1, options=options),
                          data)
    write_run(tmp_path, result)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["interval_source"] == source and metrics["coverage"] == 0.9
    assert 0 <= metrics["test_coverage"] <= 1 and metrics["test_interval_width"] > 0
    rows = _rows(tmp_path / "predictions.csv")
    low = np.array([float(r["low"]) for r in rows])
    high = np.array([float(r["high"]) for r in rows])
    truth = np.array([float(r["score"]) for r in rows])
    assert metrics["test_coverage"] == pytest.approx(np.mean((truth >= low) & (truth <= high)))
    assert metrics["test_interval_width"] == pytest.approx(np.mean(high - low), abs=1e-5)
    # a later process: the checkpoint gives every video the same interval
    method_again, meta = load_checkpoint(tmp_path)
    test = data.select_ids(result.split.test)
    again_low, again_high = bounds_of(meta, method_again.predict(test))
    np.testing.assert_allclose(again_low, low, atol=1e-4)
    np.testing.assert_allclose(again_high, high, atol=1e-4)


def test_default_coverage_changes_no_point_number_and_no_key(data):
    base = RunConfig(method="lap_rls", label_ratio=0.4, seed=2)
    other = dataclasses.replace(base, coverage=0.8)
    a, b = run_training(base, data), run_training(other, data)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    assert b.metrics["test_interval_width"] < a.metrics["test_interval_width"]
    assert run_key(base) == run_key(RunConfig.from_dict({**base.to_dict(), "coverage": 0.9}))
    assert run_key(other) != run_key(base)  # its records hold other interval metrics


def test_too_few_labeled_videos_for_the_coverage_is_said(data):
    lines = []
    result = run_training(RunConfig(method="lap_rls", label_ratio=0.1, seed=0, coverage=0.95),
                          data, notify=lines.append)
    assert result.metrics["interval_residuals"] == 8  # 10% of 80
    assert any("too few for 95% intervals" in line and "--coverage 0.88 or less" in line
               for line in lines)
    assert result.metrics["test_interval_width"] is None and np.all(np.isinf(result.high))
    with pytest.raises(S4AQAError, match="--coverage"):
        RunConfig(coverage=1.0)


def test_review_lists_the_widest():
    ids = ["a", "b", "c"]
    low, high = np.array([0.0, 0.0, 1.0]), np.array([1.0, 3.0, 3.0])
    assert widest(low, high, 2) == [1, 2]
    text = review_text(ids, np.array([0.5, 1.5, 2.0]), low, high, 2)
    assert text.splitlines()[1].startswith("  b: 1.500 [0.000, 3.000] width 3.000")
    assert "no intervals" in review_text(ids, np.zeros(3), None, None, 1)


def test_review_does_not_rank_rounding_noise():
    """A constant ± q around different predictions: (p + q) - (p - q) differs from 2q in the
    last bits, which must not make one video 'wider' than another (issue 35)."""
    predictions = np.array([12.345678, 0.1, 987.654321, 3.3, -41.7])
    q = 0.1234567
    low, high = predictions - q, predictions + q
    assert np.ptp(high - low) > 0  # the rounding the review must see through
    assert widest(low, high, 3) == []
    text = review_text([f"v{i}" for i in range(5)], predictions, low, high, 3)
    assert "same width (0.247)" in text and "widest" not in text


def test_review_of_infinite_intervals_says_so_without_a_warning(recwarn):
    predictions = np.array([1.0, 2.0])
    low, high = predictions - np.inf, predictions + np.inf
    text = review_text(["a", "b"], predictions, low, high, 2)
    assert "infinite" in text and "width inf" not in text
    assert widest(low, high, 2) == []
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_cli_predict_prints_intervals_and_bad_coverage_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--method", "lap_rls", "--label-ratio",
                 "0.3", "--coverage", "0.8", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["predict", "--run", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "id,predicted,score,split,low,high"
    trained = {r["id"]: r for r in _rows(run / "predictions.csv")}
    first = dict(zip(out[0].split(","), out[1].split(",")))
    if first["id"] in trained:
        assert first["low"] == trained[first["id"]]["low"]
    assert json.loads((run / "model.json").read_text())["intervals"]["coverage"] == 0.8
    assert main(["train", "--coverage", "1.2", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--coverage" in err[0]


def test_crossfit_intervals_use_the_methods_own_residuals(tmp_path):
    """--intervals crossfit: the method itself on 5 folds (its own residuals, no proxy); the
    point predictions are those of the default construction."""
    base = dict(dataset="synthetic", method="aa", label_ratio=0.2, seed=1,
                options={"steps": 10, "hidden": 16, "feedforward": 32, "heads": 2,
                         "members": 1})
    jackknife = run_training(RunConfig(**base))
    crossfit = run_training(RunConfig(**base, intervals="crossfit"))
    assert jackknife.metrics["interval_source"] == "partner_loo"
    assert crossfit.metrics["interval_source"] == "crossfit"
    assert crossfit.metrics["interval_residuals"] == jackknife.metrics["interval_residuals"]
    np.testing.assert_array_equal(crossfit.predictions, jackknife.predictions)
    assert crossfit.intervals.half_width != jackknife.intervals.half_width

