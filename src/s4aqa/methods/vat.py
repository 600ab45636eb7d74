"""VAT (Miyato et al., TPAMI 2018): virtual adversarial training on the segment features.

The model is the shared encoder and regressor. For a batch of videos x (standardised segment
features, (B, T, D)) the perturbation r_adv of radius ε that most changes the prediction is
found by power iteration: d ~ N(0, I), normalised per video; d <- normalise(∇_d Div(f(x), f(x + ξd)))
repeated ``power_iterations`` times; r_adv = ε d. The local distributional smoothness loss
Div(f(x), f(x + r_adv)), with f(x) held fixed (no gradient), is added to the regression loss:
``L = L_reg + lambda_vat * L_vat``.

Choices, with their defaults:
- the divergence of a regressor's point prediction is the squared difference of the normalised
  scores (the Gaussian KL of equal variances, up to a constant);
- radii are root-mean-square per feature value, in standardised feature units, so they do not
  depend on T and D: ||r_adv||_2 = ``epsilon`` * sqrt(T * D) with ``epsilon`` 0.1, and the
  probe ξ = ``xi`` * sqrt(T * D) with ``xi`` 1e-3; one power iteration;
- the smoothness loss is taken on the unlabeled and the labeled videos of each step
  (``consistency_on`` all), or on the unlabeled ones only;
- the network stays in training mode (dropout on) throughout, as in the reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from s4aqa.methods.base import unlabeled_option
from s4aqa.methods.deep import DeepMethod, DeepOptions
from s4aqa.methods.registry import register
from s4aqa.options import choice, require


@dataclass
class VATOptions(DeepOptions):
    unlabeled: bool = unlabeled_option()
    lambda_vat: float = 1.0
    epsilon: float = 0.1
    xi: float = 1e-3
    power_iterations: int = 1
    consistency_on: str = choice("all", "unlabeled")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.epsilon > 0, "epsilon", self.epsilon, "must be positive")
        require(self.xi > 0, "xi", self.xi, "must be positive")
        require(self.power_iterations >= 1, "power_iterations", self.power_iterations,
                "must be at least 1")


def _unit(d: torch.Tensor) -> torch.Tensor:
    """Each video's perturbation scaled to unit root-mean-square over its (T, D) values."""
    rms = d.pow(2).mean(dim=tuple(range(1, d.dim())), keepdim=True).sqrt()
    return d / rms.clamp_min(1e-12)


@register("vat")
class VAT(DeepMethod):
    description = "virtual adversarial training on the segment features (Miyato et al.)"
    Options = VATOptions
    # the power iteration differentiates inside the loss, which vmapped (grouped) training
    # does not support: one run at a time
    groupable = False

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.modules["regressor"](self.modules["encoder"](x))

    def adversarial_direction(self, x: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        """Unit-RMS direction (B, T, D) along which the prediction changes fastest."""
        d = _unit(torch.randn_like(x))
        for _ in range(self.options.power_iterations):
            d = d.detach().requires_grad_(True)
            divergence = (self.score(x + self.options.xi * d) - clean).pow(2).sum()
            (grad,) = torch.autograd.grad(divergence, d)
            d = _unit(grad)
        return d.detach()

    def smoothness(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            clean = self.score(x)
        r_adv = self.options.epsilon * self.adversarial_direction(x, clean)
        return (self.score(x + r_adv) - clean).pow(2).mean()

    def loss(self, labeled, unlabeled, progress):
        reg, parts = super().loss(labeled, None, progress)
        if unlabeled is None:  # option unlabeled off: the smoothness of the labeled videos
            x = labeled["x"]
        elif self.options.consistency_on == "all":
            x = torch.cat([unlabeled["x"], labeled["x"]])
        else:
            x = unlabeled["x"]
        lds = self.smoothness(x)
        parts["vat"] = lds
        return reg + self.options.lambda_vat * lds, parts
