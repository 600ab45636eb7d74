"""The shared temporal encoder E: segment features (B, T, D) -> tokens (B, T, H) and a pooled (B, H)."""

from __future__ import annotations

import torch
from torch import nn


class TemporalEncoder(nn.Module):
    """Input dropout, a linear projection D -> H, a learned position embedding, pre-norm
    Transformer layers, a final LayerNorm and mean pooling over time.

    Masked positions (a (B, T) bool tensor) are hidden before the Transformer, either by zeroing
    the (standardised) input features, or by a learned token in the hidden space.
    """

    def __init__(self, dim: int, segments: int, hidden: int = 128, heads: int = 4,
                 layers: int = 1, feedforward: int = 256, dropout: float = 0.1,
                 input_dropout: float = 0.2, mask_value: str = "zero") -> None:
        super().__init__()
        if mask_value not in ("zero", "token"):
            raise ValueError(f"mask_value must be 'zero' or 'token', got {mask_value!r}")
        self.input_dropout = nn.Dropout(input_dropout)
        self.project = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.position = nn.Parameter(torch.zeros(1, segments, hidden))
        nn.init.normal_(self.position, std=0.02)
        self.mask_token = nn.Parameter(torch.zeros(hidden)) if mask_value == "token" else None
        layer = nn.TransformerEncoderLayer(hidden, heads, feedforward, dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.hidden = hidden

    def tokens(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None and self.mask_token is None:
            x = x.masked_fill(mask[..., None], 0.0)
        h = self.project(self.input_dropout(x))
        if mask is not None and self.mask_token is not None:
            h = torch.where(mask[..., None], self.mask_token.to(h.dtype), h)
        h = h + self.position[:, : h.shape[1]]
        return self.norm(self.transformer(h))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.tokens(x, mask).mean(dim=1)
