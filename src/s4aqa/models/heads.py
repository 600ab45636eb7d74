"""Small fully connected heads on top of the encoder's representation."""

from __future__ import annotations

import torch
from torch import nn


def mlp(inputs: int, hidden: int, outputs: int, dropout: float = 0.0) -> nn.Sequential:
    """Dropout, Linear, ReLU, Linear: the shape every head here shares."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(inputs, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


class Regressor(nn.Module):
    """The score regressor: representation (B, H) -> normalised score (B,)."""

    def __init__(self, hidden: int, width: int = 64, dropout: float = 0.2, outputs: int = 1) -> None:
        super().__init__()
        self.net = mlp(hidden, width, outputs, dropout)
        self.outputs = outputs

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        out = self.net(f)
        return out.squeeze(-1) if self.outputs == 1 else out


class RecoveryDecoder(nn.Module):
    """Φ: two fully connected layers with a ReLU between, hidden -> feature dimension D.

    Reads either the masked position's token, or the pooled representation plus the masked
    position's own embedding (the pooled vector alone cannot say which segment to recover).
    """

    def __init__(self, hidden: int, dim: int, segments: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.position = nn.Embedding(segments, hidden)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)

    def from_pooled(self, pooled: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """pooled (B, H), positions (B, M) -> recovered features (B, M, D)."""
        return self.net(pooled[:, None, :] + self.position(positions))


class Discriminator(nn.Module):
    """D: representation -> logit of 'labeled' (class 1) against 'unlabeled' (class 0)."""

    def __init__(self, hidden: int, width: int = 64) -> None:
        super().__init__()
        self.net = mlp(hidden, width, 1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f).squeeze(-1)
