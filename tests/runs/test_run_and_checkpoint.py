import json

import numpy as np
import pytest

from s4aqa.config import RunConfig
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError
from s4aqa.runs.checkpoint import load_checkpoint
from s4aqa.runs.run import run_training
from s4aqa.runs.run_folder import write_run

FAST = {"steps": 30, "hidden": 16, "feedforward": 32, "heads": 2}


@pytest.fixture(scope="module")
def data():
    return make_staged_actions(n_train=100, n_test=40, dim=8, seed=3)


def test_run_writes_everything_and_checkpoint_round_trips(tmp_path, data):
    config = RunConfig(method="s4aqa", label_ratio=0.3, seed=1, options=FAST)
    result = run_training(config, data)
    write_run(tmp_path, result)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"metrics.json", "predictions.csv", "split.json", "config.json", "model.json",
            "model.safetensors", "history.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_spearman"] == pytest.approx(result.metrics["test_spearman"])
    method, meta = load_checkpoint(tmp_path)
    test = data.select_ids(result.split.test)
    np.testing.assert_allclose(method.predict(test), result.predictions, rtol=1e-5, atol=1e-5)
    assert meta["method"] == "s4aqa" and meta["extra"]["shape"] == [16, 8]


def test_same_seed_same_numbers(data):
    config = RunConfig(method="aa+msfr", label_ratio=0.3, seed=2, options=FAST)
    a, b = run_training(config, data), run_training(config, data)
    assert a.metrics["test_spearman"] == b.metrics["test_spearman"]


def test_empty_unlabeled_set_and_missing_cuda(data):
    with pytest.raises(S4AQAError, match="unlabeled set is empty"):
        run_training(RunConfig(method="s4aqa", label_ratio=1.0, options=FAST), data)
    run_training(RunConfig(method="aa", label_ratio=1.0, options=FAST), data)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(S4AQAError, match="CUDA"):
            run_training(RunConfig(method="aa", device="cuda", options=FAST), data)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(S4AQAError, match="no checkpoint"):
        load_checkpoint(tmp_path)


def test_methods_that_do_not_select_on_validation_train_on_it(data):
    from s4aqa.data.splits import make_split
    from s4aqa.methods.registry import create
    from s4aqa.runs.prepare import training_sets

    split = make_split(data, 0.3, 0)
    labeled, _, validation = training_sets(data, split, create("aa", {**FAST, "select": "best"}))
    assert len(labeled) == len(split.labeled) and len(validation) == len(split.validation)
    labeled, _, validation = training_sets(data, split, create("aa", FAST))  # select=last
    assert len(labeled) == len(split.labeled) + len(split.validation) and validation is None
    labeled, _, validation = training_sets(data, split, create("svr"))
    assert validation is None and len(labeled) == len(split.labeled) + len(split.validation)
    _, _, validation = training_sets(data, split, create("svr", {"select_on": "validation"}))
    assert len(validation) == len(split.validation)
