"""One deep network of a deep method: its modules, its normalisation and its loss.

A ``Network`` is what the training loop (``s4aqa.training.loop``) steps: features are
standardised per dimension with the training videos' statistics and scores z-scored with the
labeled videos', both stored with the weights. Subclasses (through ``methods.deep``) say what
their modules are (``build``) and what their loss is for a labeled and an unlabeled batch
(``loss``); nothing here knows the loop.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from s4aqa.data.featureset import FeatureSet, blocks
from s4aqa.errors import S4AQAError
from s4aqa.methods._pooling import as_array, check_shape, video_blocks, z_scores
from s4aqa.methods.base import Method
from s4aqa.models import Regressor, TemporalEncoder
from s4aqa.training.loop import Schedule

MEMBER_SEED = 7919  # member k of an ensemble initialises from seed + k * MEMBER_SEED


def segment_statistics(sets: Sequence[FeatureSet]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension float32 mean and standard deviation of every segment of ``sets``: the
    values numpy's ``mean`` and ``std`` give for the concatenation of all their rows (the same
    sequential float32 sums over rows, carried from block to block), without that copy."""
    dim = sets[0].dim
    count = np.intp(sum(len(fs) * fs.num_segments for fs in sets))

    def row_sum(transform) -> np.ndarray:
        total = np.zeros(dim, dtype=np.float32)
        for fs in sets:
            for block in blocks(fs.features.reshape(-1, dim)):
                rows = transform(block.astype(np.float32))
                rows[0] += total  # the sum so far enters as the first term: one running sum
                total = rows.sum(axis=0)
        return total

    mean = (row_sum(lambda rows: rows) / count).astype(np.float32)

    def squared_deviation(rows: np.ndarray) -> np.ndarray:
        rows -= mean
        rows *= rows
        return rows

    std = np.sqrt((row_sum(squared_deviation) / count).astype(np.float32))
    return mean, std


class Constant(nn.Module):
    """A fixed tensor stored with the weights (feature normalisation statistics, score bins)."""

    def __init__(self, value: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("value", torch.as_tensor(np.asarray(value), dtype=torch.float32))


class Network(Method):
    """One network: the modules ``build`` makes, trained by the loop on ``loss``."""

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.modules: nn.ModuleDict | None = None
        self.score_mean = 0.0
        self.score_std = 1.0
        self.member_index = 0

    @property
    def schedule(self) -> Schedule:
        """How this network trains (its options' steps, learning rate, batches ...)."""
        return Schedule.of(self.options)

    # ---- what subclasses say ------------------------------------------------------------
    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        o = self.options
        encoder = self.encoder(segments, dim)
        return nn.ModuleDict({"encoder": encoder,
                              "regressor": Regressor(o.hidden, o.head_width, o.head_dropout)})

    def encoder(self, segments: int, dim: int) -> TemporalEncoder:
        """The shared temporal encoder as the options describe it (for ``build``)."""
        o = self.options
        return TemporalEncoder(dim, segments, o.hidden, o.heads, o.layers, o.feedforward,
                               o.dropout, o.input_dropout, o.mask_value)

    def loss(self, labeled: dict[str, torch.Tensor], unlabeled: dict[str, torch.Tensor] | None,
             progress: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Default: mean squared error of the normalised score on the labeled batch."""
        prediction = self.modules["regressor"](self.modules["encoder"](labeled["x"]))
        reg = torch.nn.functional.mse_loss(prediction, labeled["y"])
        return reg, {"reg": reg}

    def moving_average(self) -> tuple[dict[str, str], float] | None:
        """A moving-average copy of some weights, kept by the training loops after each step:
        (copy's parameter name -> tracked parameter name, decay), or None when there is none."""
        return None

    def labeled_tensors(self, labeled: FeatureSet) -> dict[str, torch.Tensor]:
        """What a labeled batch holds; multi-task methods add auxiliary labels. ``x`` is the
        features as stored (``to_device``); the loop standardises each batch drawn from it."""
        return {"x": self.to_device(labeled.features),
                "y": self.to_target(labeled.scores)}

    def unlabeled_tensors(self, unlabeled: FeatureSet) -> dict[str, torch.Tensor]:
        return {"x": self.to_device(unlabeled.features)}

    @torch.no_grad()
    def forward_normalised(self, x: torch.Tensor) -> torch.Tensor:
        """The network's score of standardised inputs ``x`` (B, T, D), z-scored."""
        return self.modules["regressor"](self.modules["encoder"](x))

    # ---- shared machinery -----------------------------------------------------------------
    def init_seed(self) -> int:
        return self.seed + MEMBER_SEED * self.member_index

    def clone(self, index: int) -> "Network":
        """Network ``index`` of an ensemble: the same method and options, not yet built."""
        member = copy.copy(self)
        member.member_index, member.modules, member.history = index, None, []
        return member

    def to_device(self, features: np.ndarray) -> torch.Tensor:
        """Features on the device in the precision they are held in (float16 stays float16:
        a large pool is never copied whole as float32)."""
        return torch.as_tensor(features, device=self.device)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, T, D) on the device as the network reads them: float32, standardised
        per dimension. The same values whether a batch or the whole set is converted."""
        return ((x.to(torch.float32) - self.modules["feature_mean"].value)
                / self.modules["feature_std"].value)

    def to_input(self, features: np.ndarray) -> torch.Tensor:
        return self.standardise(self.to_device(as_array(features)))

    def to_target(self, scores: np.ndarray) -> torch.Tensor:
        y = (np.asarray(scores, dtype=np.float64) - self.score_mean) / self.score_std
        return torch.as_tensor(y, dtype=torch.float32, device=self.device)

    def setup(self, labeled: FeatureSet, pool: list[FeatureSet]) -> None:
        """Build the modules and the normalisation from the training videos."""
        segments, dim = labeled.num_segments, labeled.dim
        for other in pool:
            if other.dim != dim or other.num_segments != segments:
                raise S4AQAError("labeled and unlabeled videos have different feature shapes")
        torch.manual_seed(self.init_seed())
        self.shape = (segments, dim)
        self.modules = self.build(segments, dim)
        mean, std = segment_statistics([labeled, *pool])
        self.modules["feature_mean"] = Constant(mean)
        self.modules["feature_std"] = Constant(std + 1e-6)
        self.score_mean, self.score_std = z_scores(labeled.scores)
        self.modules.to(self.device)

    def score_grid(self, labeled: FeatureSet, count: int, margin: float) -> torch.Tensor:
        """``count`` values evenly over the labeled videos' z-scored range, widened by
        ``margin`` times it on each side (score bins, Likert grades), on the device."""
        z = self.to_target(labeled.scores)
        low, high = float(z.min()), float(z.max())
        span = (high - low) or 1.0
        return torch.linspace(low - margin * span, high + margin * span, count,
                              device=self.device)

    def load_network(self, tensors: dict[str, torch.Tensor]) -> None:
        """Rebuild the modules (``shape`` set) and load their weights."""
        self.modules = self.build(*self.shape)
        self.modules["feature_mean"] = Constant(np.zeros(self.shape[1]))
        self.modules["feature_std"] = Constant(np.ones(self.shape[1]))
        self.modules.load_state_dict(tensors)
        self.modules.to(self.device)

    def batched(self, features: np.ndarray | FeatureSet | Sequence[FeatureSet], fn) -> np.ndarray:
        """``fn`` of the standardised inputs, 256 videos at a time, in eval mode (several
        FeatureSets: as if concatenated)."""
        if self.modules is None:
            raise self.not_trained()
        for part in (features if isinstance(features, (list, tuple)) else [features]):
            check_shape(as_array(part), self.shape, self.label)
        self.modules.eval()
        out = []
        with torch.no_grad():
            for block in video_blocks(features, 256):
                out.append(fn(self.to_input(block)).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0,))

    def embed(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """The network's video representations."""
        if self.modules is None:
            raise self.not_trained()
        return self.batched(features, self.modules["encoder"])
