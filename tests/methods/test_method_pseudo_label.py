"""Pseudo-labels: teacher, student rounds, confidence weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create


def test_phases_teacher_then_students(fit, deep_tiny):
    method = fit("pseudo_label", {**deep_tiny, "steps": 20, "rounds": 2})
    phases = [record["phase"] for record in method.history]
    assert sorted(set(phases)) == [0, 1, 2]
    assert all("pseudo" not in r for r in method.history if r["phase"] == 0)
    assert all("pseudo" in r for r in method.history if r["phase"] > 0)
    assert method.pseudo is None  # not kept after training


def test_pseudo_labels_are_the_model_predictions(fit, staged):
    method = fit("pseudo_label")
    z = method.label_unlabeled(staged["unlabeled"])["y"].float().numpy()
    np.testing.assert_allclose(z * method.score_std + method.score_mean,
                               method.predict(staged["unlabeled"]), rtol=1e-5)


def test_mc_dropout_confidence_weights(fit, staged, deep_tiny):
    method = fit("pseudo_label", {**deep_tiny, "steps": 20, "confidence": "mc_dropout",
                                  "mc_samples": 4})
    torch.manual_seed(0)
    out = method.label_unlabeled(staged["unlabeled"])
    w = out["w"].numpy()
    assert w.shape == (len(staged["unlabeled"]),)
    assert np.all((w > 0) & (w <= 1)) and w.std() > 0
    assert not method.modules.training


def test_option_checks():
    with pytest.raises(S4AQAError, match="rounds"):
        create("pseudo_label", {"rounds": 0})
    with pytest.raises(S4AQAError, match="mc_samples"):
        create("pseudo_label", {"confidence": "mc_dropout", "mc_samples": 1})
