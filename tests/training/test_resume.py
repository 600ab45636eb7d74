"""An interrupted training resumes from its saved state and ends with identical numbers."""

import numpy as np
import pytest

from s4aqa.config import RunConfig
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.runs.run import run_training
from s4aqa.training import resume as hooks
from s4aqa.training.resume import Checkpoint

OPTIONS = {"steps": 60, "hidden": 16, "feedforward": 32, "heads": 2, "eval_every": 10,
           "schedule": "cosine"}


class _Killed(Exception):
    pass


@pytest.mark.parametrize("method,extra", [("s4aqa", {}), ("aa", {}),
                                          ("s4aqa", {"lambda_cons": 1.0, "predict_with": "teacher"})])
def test_resume_matches_uninterrupted(tmp_path, monkeypatch, method, extra):
    data = make_staged_actions(n_train=80, n_test=30, dim=8, seed=1)
    config = RunConfig(method=method, label_ratio=0.4, seed=3, options={**OPTIONS, **extra})
    reference = run_training(config, data)

    saved = Checkpoint.save
    calls = {"n": 0}

    def save_then_die(*args, **kwargs):
        saved(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # die right after the first saved state (step 20)
            raise _Killed

    monkeypatch.setattr(Checkpoint, "save", save_then_die)
    with pytest.raises(_Killed):
        run_training(config, data, state_dir=tmp_path)
    assert (tmp_path / hooks.STATE_FILE).exists()
    monkeypatch.setattr(Checkpoint, "save", saved)
    resumed = run_training(config, data, state_dir=tmp_path)
    np.testing.assert_array_equal(resumed.predictions, reference.predictions)
    assert resumed.method.history == reference.method.history


def test_state_of_another_config_is_ignored(tmp_path):
    data = make_staged_actions(n_train=80, n_test=30, dim=8, seed=1)
    first = RunConfig(method="aa", label_ratio=0.4, seed=3, options={**OPTIONS, "steps": 120})
    run_training(first, data, state_dir=tmp_path)  # leaves state at step 100
    assert (tmp_path / hooks.STATE_FILE).exists()
    second = RunConfig(method="aa", label_ratio=0.4, seed=3, options=OPTIONS)
    np.testing.assert_array_equal(run_training(second, data, state_dir=tmp_path).predictions,
                                  run_training(second, data).predictions)


def test_progress_bar_shows_steps_and_loss_only_when_asked(capsys):
    data = make_staged_actions(n_train=80, n_test=30, dim=8, seed=1)
    config = RunConfig(method="aa", label_ratio=0.4, seed=3, options=OPTIONS)
    run_training(config, data, progress=True)
    err = capsys.readouterr().err
    assert "/60 [" in err and "loss" in err and "step/s" in err
    run_training(config, data, progress=None)  # auto: stderr is no terminal here: log lines
    err = capsys.readouterr().err
    assert "aa member 0: training steps 1..60" in err and "aa member 0: done in" in err
    assert "step/s" not in err  # no bar in a log
    run_training(config, data)  # off
    assert capsys.readouterr().err == ""
