"""USDL (Tang et al., CVPR 2020): uncertainty-aware score distribution learning.

The shared encoder feeds a head with one logit per score bin. A labeled video's score s becomes
a Gaussian soft label over the bins, p_k ∝ exp(-(c_k - s)² / 2σ²); the loss is KL(p || softmax),
and the prediction is the expectation Σ_k softmax_k c_k (or the bin of highest probability).

Choices, with their defaults:
- ``bins`` 101 centres spread evenly over the labeled scores' range, widened on both sides by
  ``margin`` (0) times the range; a score outside the bins can not be predicted;
- σ = ``std`` (5) bin widths: 5 points of a score rescaled to 0..100, as USDL's own setting;
- ``predict_by`` expectation (or argmax, USDL's own read-out);
- like in the paper's table, it trains on the labeled videos only (the unlabeled set is not read).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from s4aqa.data.featureset import FeatureSet
from s4aqa.methods.deep import DeepMethod, DeepOptions
from s4aqa.methods.registry import register
from s4aqa.models import Regressor
from s4aqa.options import choice, require


@dataclass
class USDLOptions(DeepOptions):
    bins: int = 101
    std: float = 5.0
    margin: float = 0.0
    predict_by: str = choice("expectation", "argmax")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.bins >= 2, "bins", self.bins, "must be at least 2")
        require(self.std > 0, "std", self.std, "must be positive")
        require(self.margin >= 0, "margin", self.margin, "must be 0 or more")


class ScoreDistribution(nn.Module):
    """Representation (B, H) -> logits over ``bins`` score bins whose centres it stores."""

    def __init__(self, hidden: int, width: int, dropout: float, bins: int) -> None:
        super().__init__()
        self.logits = Regressor(hidden, width, dropout, outputs=bins)
        self.register_buffer("centres", torch.linspace(-2.0, 2.0, bins))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.logits(f)

    def soft_label(self, y: torch.Tensor, std: float) -> torch.Tensor:
        """Gaussian over the bins around each score, std in bin widths; rows sum to 1."""
        width = (self.centres[-1] - self.centres[0]) / max(self.centres.numel() - 1, 1)
        sigma = (std * width).clamp_min(1e-6)
        return torch.softmax(-((self.centres[None] - y[:, None]) ** 2) / (2 * sigma ** 2), dim=1)

    def read_out(self, logits: torch.Tensor, how: str) -> torch.Tensor:
        if how == "argmax":
            return self.centres[logits.argmax(dim=1)]
        return torch.softmax(logits, dim=1) @ self.centres


@register("usdl")
class USDL(DeepMethod):
    description = "a Gaussian score distribution over bins with a KL loss (USDL), supervised"
    Options = USDLOptions

    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        modules = super().build(segments, dim)
        o = self.options
        modules["regressor"] = ScoreDistribution(o.hidden, o.head_width, o.head_dropout, o.bins)
        return modules

    def setup(self, labeled: FeatureSet, pool: list[FeatureSet]) -> None:
        super().setup(labeled, pool)
        self.modules["regressor"].centres.copy_(
            self.score_grid(labeled, self.options.bins, self.options.margin))

    def loss(self, labeled, unlabeled, progress):
        head = self.modules["regressor"]
        logits = head(self.modules["encoder"](labeled["x"]))
        target = head.soft_label(labeled["y"], self.options.std)
        # KL(target || softmax), summed over bins, averaged over videos (as kl_div's batchmean)
        kl = (torch.special.xlogy(target, target) - target * F.log_softmax(logits, dim=1)).sum(1).mean()
        return kl, {"kl": kl}

    @torch.no_grad()
    def forward_normalised(self, x: torch.Tensor) -> torch.Tensor:
        head = self.modules["regressor"]
        return head.read_out(head(self.modules["encoder"](x)), self.options.predict_by)

    @torch.no_grad()
    def distribution(self, features) -> np.ndarray:
        """Predicted probabilities (N, bins) and, via ``score_bins``, where the bins lie."""
        head = self.modules["regressor"]
        return self.batched(features, lambda x: torch.softmax(head(self.modules["encoder"](x)), 1))

    def score_bins(self) -> np.ndarray:
        """Bin centres in the dataset's score units."""
        centres = self.modules["regressor"].centres.cpu().numpy().astype(np.float64)
        return centres * self.score_std + self.score_mean
