"""USDL: bins, Gaussian soft labels, KL, expectation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create
from s4aqa.methods.usdl import ScoreDistribution


def test_soft_labels_are_gaussians_over_the_bins():
    head = ScoreDistribution(8, 8, 0.0, 11)
    head.centres.copy_(torch.linspace(0.0, 10.0, 11))
    p = head.soft_label(torch.tensor([3.0, 7.2]), std=1.0)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(2))
    assert p[0].argmax() == 3 and p[1].argmax() == 7
    torch.testing.assert_close(p[0, 2], p[0, 4])
    # the expectation of a peaked distribution is its centre; argmax reads the mode
    logits = torch.full((1, 11), -1e4)
    logits[0, 6] = 0.0
    assert head.read_out(logits, "expectation").item() == pytest.approx(6.0)
    assert head.read_out(logits, "argmax").item() == pytest.approx(6.0)


def test_bins_span_the_labeled_scores(fit, staged, tiny):
    method = fit("usdl", {**tiny("usdl"), "core": "plain"})  # the distribution is the prediction
    bins = method.score_bins()
    assert len(bins) == 101
    assert bins[0] == pytest.approx(staged["labeled"].scores.min(), abs=1e-4)
    assert bins[-1] == pytest.approx(staged["labeled"].scores.max(), abs=1e-4)
    p = method.distribution(staged["test"])
    assert p.shape == (len(staged["test"]), 101)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p @ bins, method.predict(staged["test"]), atol=1e-3)
    assert all("kl" in r for r in method.history)


def test_argmax_read_out_predicts_bin_centres(fit, staged):
    method = create("usdl", {"predict_by": "argmax", "steps": 5, "hidden": 16, "core": "plain"})
    method.fit(staged["labeled"], None, staged["validation"])
    bins = method.score_bins()
    predicted = method.predict(staged["test"])
    assert np.all(np.isclose(predicted[:, None], bins[None], atol=1e-3).any(axis=1))


def test_option_checks():
    with pytest.raises(S4AQAError, match="bins"):
        create("usdl", {"bins": 1})
