"""S4L (Zhai et al., ICCV 2019): a self-supervised pretext task trained jointly with the
supervised loss, here on segment features with a *temporal* pretext task instead of rotations.

The model is the shared encoder and regressor, plus a pretext classifier on the encoder's output:
``L = L_reg + lambda_pretext * L_pretext`` (cross-entropy).

Pretext tasks (``pretext``):
- ``order`` (default), segment-order prediction, the temporal analogue of rotation prediction:
  each video's T segments are cut into ``chunks`` contiguous chunks (3, of near-equal length),
  the chunks are put in one of the chunks! orders drawn at random (the identity included, as
  rotation 0 is in S4L), and the classifier says which order it was (6 classes for 3 chunks);
- ``shuffle``, shuffled-segment detection: half of the videos have all their segments put in a
  random order and the classifier says whether a video was shuffled (2 classes).

Choices, with their defaults:
- the pretext classifier (the shared ``mlp`` head shape) reads the encoder's T output tokens in
  order, flattened (``pretext_reads`` tokens). S4L's rotation head reads the pooled
  representation (``pretext_reads`` pooled is offered), but the shared encoder's mean over
  tokens is blind to the order of its inputs except through its small learned position
  embedding, so an order task on it barely learns;
- one random order per video and step (S4L uses all four rotations of each image; one draw
  keeps the cost of a step near that of ``aa``);
- the pretext loss on the unlabeled and the labeled videos of each step (``pretext_on`` all, as
  S4L), or on the unlabeled only; ``lambda_pretext`` 1.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from s4aqa.errors import S4AQAError
from s4aqa.methods.base import unlabeled_option
from s4aqa.methods.deep import DeepMethod, DeepOptions
from s4aqa.methods.registry import register
from s4aqa.models import mlp
from s4aqa.options import choice, require

MAX_CHUNKS = 5  # 120 orders


@dataclass
class S4LOptions(DeepOptions):
    unlabeled: bool = unlabeled_option()
    pretext: str = choice("order", "shuffle")
    chunks: int = 3
    lambda_pretext: float = 1.0
    pretext_on: str = choice("all", "unlabeled")
    pretext_reads: str = choice("tokens", "pooled")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.pretext != "order" or 2 <= self.chunks <= MAX_CHUNKS, "chunks",
                self.chunks, f"must be 2..{MAX_CHUNKS}")


def chunk_orders(segments: int, chunks: int) -> torch.Tensor:
    """(chunks!, T) segment indices: the T segments with their ``chunks`` contiguous chunks put
    in each order (lexicographic; row 0 is the identity)."""
    parts = np.array_split(np.arange(segments), chunks)
    rows = [np.concatenate([parts[i] for i in order])
            for order in itertools.permutations(range(chunks))]
    return torch.as_tensor(np.stack(rows), dtype=torch.long)


@register("s4l")
class S4L(DeepMethod):
    description = "a segment-order pretext task trained jointly with the regression (S4L)"
    Options = S4LOptions

    def __init__(self, options, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.orders: torch.Tensor | None = None

    @property
    def classes(self) -> int:
        return math.factorial(self.options.chunks) if self.options.pretext == "order" else 2

    def unmet_needs(self, labeled, unlabeled) -> str | None:
        return self._chunks_problem(labeled.num_segments) or super().unmet_needs(labeled, unlabeled)

    def _chunks_problem(self, segments: int) -> str | None:
        o = self.options
        if o.pretext == "order" and segments < o.chunks:
            return (f"s4l: {segments} segments cannot be cut into {o.chunks} chunks; lower the "
                    "option chunks")
        return None

    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        o = self.options
        problem = self._chunks_problem(segments)
        if problem:
            raise S4AQAError(problem)
        modules = super().build(segments, dim)
        inputs = o.hidden * (segments if o.pretext_reads == "tokens" else 1)
        modules["pretext"] = mlp(inputs, o.head_width, self.classes, o.head_dropout)
        self.orders = chunk_orders(segments, o.chunks).to(self.device) if o.pretext == "order" else None
        return modules

    def pretext_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reordered videos and their pretext class."""
        batch, segments, _ = x.shape
        if self.options.pretext == "order":
            target = torch.randint(self.classes, (batch,), device=x.device)
            index = self.orders.to(x.device)[target]
        else:
            target = torch.randint(2, (batch,), device=x.device)
            shuffled = torch.argsort(torch.rand(batch, segments, device=x.device), dim=1)
            identity = torch.arange(segments, device=x.device).expand(batch, -1)
            index = torch.where(target[:, None].bool(), shuffled, identity)
        reordered = torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))
        return reordered, target

    def loss(self, labeled, unlabeled, progress):
        reg, parts = super().loss(labeled, None, progress)
        if unlabeled is None:  # option unlabeled off: the pretext task on the labeled videos
            x = labeled["x"]
        elif self.options.pretext_on == "all":
            x = torch.cat([unlabeled["x"], labeled["x"]])
        else:
            x = unlabeled["x"]
        reordered, target = self.pretext_batch(x)
        encoder = self.modules["encoder"]
        if self.options.pretext_reads == "tokens":
            representation = encoder.tokens(reordered).flatten(1)
        else:
            representation = encoder(reordered)
        logits = self.modules["pretext"](representation)
        pretext = F.cross_entropy(logits, target)
        parts["pretext"] = pretext
        return reg + self.options.lambda_pretext * pretext, parts
