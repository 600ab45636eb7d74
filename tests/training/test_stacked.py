"""Several seeds trained at once as one batched model."""

import numpy as np
import pytest

from s4aqa.config import RunConfig
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.runs.run import run_group, run_training

OPTIONS = {"steps": 80, "lr": 2e-3, "hidden": 16, "feedforward": 32, "heads": 2, "eval_every": 20,
           "select": "best"}  # the grouped loop's selection on validation is tested too


@pytest.fixture(scope="module")
def data():
    return make_staged_actions(n_train=120, n_test=60, dim=16, seed=2, appearance=0.5)


@pytest.mark.parametrize("method", ["s4aqa", "aa"])
def test_group_trains_each_seed_and_is_deterministic(data, method):
    configs = [RunConfig(method=method, label_ratio=0.3, seed=s, options=OPTIONS) for s in range(3)]
    first = run_group(configs, data)
    second = run_group(configs, data)
    assert [r.metrics["grouped"] for r in first] == [3, 3, 3]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.predictions, b.predictions)
    # each model learns about as well as when it is trained alone
    alone = [run_training(c, data).metrics["test_spearman"] for c in configs]
    grouped = [r.metrics["test_spearman"] for r in first]
    assert np.mean(grouped) > 0.1
    assert abs(np.mean(grouped) - np.mean(alone)) < 0.15
    assert len({tuple(r.split.labeled) for r in first}) == 3
    assert not np.allclose(first[0].predictions, first[1].predictions)
    assert "val_spearman" in first[0].method.history[-1]
    modules = first[0].method.modules
    if "teacher" in modules:  # the grouped loop moves the moving-average teacher too
        import torch

        initial = type(first[0].method)(first[0].method.options, seed=0)
        initial.setup(data.train(), [])
        moved = modules["teacher"]["encoder"].state_dict()
        start = initial.modules["teacher"]["encoder"].state_dict()
        student = modules["encoder"].state_dict()
        assert not any(torch.equal(moved[k], start[k]) for k in moved if k in start and
                       moved[k].dtype.is_floating_point and moved[k].numel() > 1)
        assert not all(torch.equal(moved[k], student[k]) for k in moved)


def test_group_runs_the_confidence_filter_and_teacher_targets(data):
    options = {**OPTIONS, "steps": 20, "cons_keep": 0.5, "recover_target": "teacher"}
    configs = [RunConfig(method="s4aqa", label_ratio=0.3, seed=s, options=options) for s in (0, 1)]
    results = run_group(configs, data)
    assert [r.metrics["grouped"] for r in results] == [2, 2]
    for result in results:
        assert {"rcvr", "cons"} <= set(result.method.history[-1])
        assert np.all(np.isfinite(result.predictions))


def test_group_of_classical_methods_falls_back(data):
    configs = [RunConfig(method="svr", label_ratio=0.3, seed=s) for s in range(2)]
    results = run_group(configs, data)
    assert all("grouped" not in r.metrics for r in results)
