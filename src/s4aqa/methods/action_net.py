"""ACTION-NET (Zeng et al., ACM MM 2020), its dynamic stream: context-aware attention over the
segments of a long video through a graph over segments.

Segment features (standardised, input dropout) are projected to H; ``gcn_layers`` graph
convolution layers propagate context between segments, h <- LayerNorm(h + Dropout(ReLU(A h W)));
an attention layer scores every segment, a_t = softmax_t(w^T tanh(V h_t)), and the video is the
attention-weighted sum Σ_t a_t h_t, read by the shared ``Regressor``. ``embed`` returns that sum,
``attention`` the weights.

Choices, with their defaults:
- the graph (``graph``): ``both`` (default) averages a similarity graph, recomputed in each layer
  from the current segment states, A = softmax(θ(h) φ(h)^T / sqrt(H)) (the context-aware graph),
  and a fixed temporal graph linking each segment to those within ``temporal_radius`` (1)
  segments, row-normalised (it carries the order the similarity graph ignores); ``similarity``
  or ``temporal`` use one of them;
- ``gcn_layers`` 2, hidden size ``hidden``, dropout ``dropout``; the Transformer options of the
  shared schedule (``heads``, ``layers``, ``feedforward``, ``mask_value``) are not used;
- the static stream (frame-level appearance features of the original) is left out: a FeatureSet
  holds one stream of segment features, which is the dynamic one here;
- it trains on the labeled videos only (the unlabeled set is not read), like the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from s4aqa.methods.deep import DeepMethod, DeepOptions
from s4aqa.methods.registry import register
from s4aqa.models import Regressor
from s4aqa.options import choice, require


@dataclass
class ActionNetOptions(DeepOptions):
    gcn_layers: int = 2
    graph: str = choice("both", "similarity", "temporal")
    temporal_radius: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("gcn_layers", "temporal_radius"):
            require(getattr(self, key) >= 0, key, getattr(self, key), "must be 0 or more")


def temporal_graph(segments: int, radius: int) -> torch.Tensor:
    """(T, T) row-normalised band matrix linking segments at most ``radius`` apart."""
    index = torch.arange(segments)
    band = ((index[:, None] - index[None]).abs() <= radius).float()
    return band / band.sum(dim=1, keepdim=True)


class GraphLayer(nn.Module):
    """One graph convolution over segments with a residual connection and LayerNorm."""

    def __init__(self, hidden: int, graph: str, dropout: float) -> None:
        super().__init__()
        self.graph = graph
        self.weight = nn.Linear(hidden, hidden)
        if graph in ("similarity", "both"):
            self.theta = nn.Linear(hidden, hidden, bias=False)
            self.phi = nn.Linear(hidden, hidden, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)

    def adjacency(self, h: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
        if self.graph == "temporal":
            return temporal.expand(h.shape[0], -1, -1)
        similarity = torch.softmax(
            self.theta(h) @ self.phi(h).transpose(1, 2) / math.sqrt(h.shape[-1]), dim=-1)
        return similarity if self.graph == "similarity" else (similarity + temporal) / 2

    def forward(self, h: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
        context = self.adjacency(h, temporal) @ self.weight(h)
        return self.norm(h + self.dropout(torch.relu(context)))


class DynamicStream(nn.Module):
    """(B, T, D) segment features -> (B, H) attention-pooled video representation."""

    def __init__(self, dim: int, hidden: int, layers: int, graph: str, radius: int,
                 dropout: float, input_dropout: float) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.project = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.layers = nn.ModuleList(GraphLayer(hidden, graph, dropout) for _ in range(layers))
        self.radius = radius
        self.score = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.hidden = hidden

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(self.input_dropout(x))
        temporal = temporal_graph(h.shape[1], self.radius).to(h.device, h.dtype)
        for layer in self.layers:
            h = layer(h, temporal)
        return h

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.score(h).squeeze(-1), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tokens(x)
        return (self.attention(h)[..., None] * h).sum(dim=1)


@register("action_net")
class ActionNet(DeepMethod):
    description = "segment graph and attention pooling (ACTION-NET's dynamic stream), supervised"
    Options = ActionNetOptions

    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        o = self.options
        encoder = DynamicStream(dim, o.hidden, o.gcn_layers, o.graph, o.temporal_radius,
                                o.dropout, o.input_dropout)
        return nn.ModuleDict({"encoder": encoder,
                              "regressor": Regressor(o.hidden, o.head_width, o.head_dropout)})

    def attention(self, features):
        """Per-segment attention weights (N, T) of the trained model."""
        encoder = self.modules["encoder"]
        return self.batched(features, lambda x: encoder.attention(encoder.tokens(x)))
