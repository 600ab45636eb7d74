"""VAT: the adversarial direction by power iteration and the smoothness loss."""

from __future__ import annotations

import pytest
import torch

from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create
from s4aqa.methods.vat import _unit


def test_unit_perturbations_have_unit_rms_per_video():
    d = _unit(torch.randn(3, 5, 7) * torch.tensor([1.0, 10.0, 0.1])[:, None, None])
    rms = d.pow(2).mean(dim=(1, 2)).sqrt()
    torch.testing.assert_close(rms, torch.ones(3))


def test_power_iteration_finds_the_most_sensitive_direction():
    """For a linear score w·x the most sensitive direction is ±w."""
    method = create("vat", {})
    w = torch.randn(4, 6)
    method.score = lambda x: (x * w).sum(dim=(1, 2))
    x = torch.randn(2, 4, 6)
    d = method.adversarial_direction(x, method.score(x))
    cosine = torch.nn.functional.cosine_similarity(d.flatten(1), w.flatten()[None].expand(2, -1))
    assert torch.all(cosine.abs() > 0.999)
    r_adv = method.options.epsilon * d
    expected = method.options.epsilon * (4 * 6) ** 0.5
    torch.testing.assert_close(r_adv.flatten(1).norm(dim=1), torch.full((2,), expected))


def test_smoothness_is_part_of_the_loss(fit):
    method = fit("vat")
    assert all(r["vat"] >= 0 for r in method.history)
    assert all(r["vat"] > 0 for r in method.history)


def test_option_checks():
    with pytest.raises(S4AQAError, match="epsilon"):
        create("vat", {"epsilon": 0})
