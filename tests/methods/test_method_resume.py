"""Deep baselines resume an interrupted training (engine.trainer's saved state) and end with
the numbers of an uninterrupted run; pseudo-labels keep each phase's state apart."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.methods.registry import create
from s4aqa.training.resume import Checkpoint


class _Killed(Exception):
    pass


def _fit_with_state(name, options, staged, state_dir):
    method = create(name, options, seed=0)
    checkpoint = Checkpoint(state_dir, {"settings": "run", "data": "data"}, every=20)
    unlabeled = staged["unlabeled"] if method.uses_unlabeled else None
    method.fit(staged["labeled"], unlabeled, staged["validation"], hooks=[checkpoint])
    method.checkpoint = checkpoint
    return method


@pytest.mark.parametrize("name, die_at", [
    ("pseudo_label", 1), ("pseudo_label", 3), ("vat", 1), ("s4l", 2), ("usdl", 1),
    ("c3d_avg_mtl", 1), ("action_net", 1),
])
def test_resume_matches_uninterrupted(name, die_at, fit, staged, deep_tiny, tmp_path, monkeypatch):
    reference = fit(name)
    saved, calls = Checkpoint.save, {"n": 0}

    def save_then_die(*args, **kwargs):
        saved(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == die_at:
            raise _Killed

    monkeypatch.setattr(Checkpoint, "save", save_then_die)
    with pytest.raises(_Killed):
        _fit_with_state(name, deep_tiny, staged, tmp_path)
    monkeypatch.setattr(Checkpoint, "save", saved)
    resumed = _fit_with_state(name, deep_tiny, staged, tmp_path)
    np.testing.assert_array_equal(resumed.predict(staged["test"]), reference.predict(staged["test"]))
    assert resumed.history == reference.history


def test_pseudo_label_students_do_not_resume_from_their_teacher(fit, staged, deep_tiny, tmp_path):
    reference = fit("pseudo_label")
    method = _fit_with_state("pseudo_label", deep_tiny, staged, tmp_path)
    np.testing.assert_array_equal(method.predict(staged["test"]), reference.predict(staged["test"]))
    assert method.checkpoint.key == {"settings": "run", "data": "data"}
