"""Gradient reversal: identity forward, gradient multiplied by -coefficient backward.

Put between the encoder and the discriminator, one backward pass trains the discriminator to
tell labeled from unlabeled representations and the encoder to make them indistinguishable.
"""

from __future__ import annotations

import torch


class _ReverseGradient(torch.autograd.Function):
    generate_vmap_rule = True  # also usable when several models train at once under vmap

    @staticmethod
    def forward(x: torch.Tensor, coefficient: float) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.coefficient = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coefficient * grad, None


def reverse_gradient(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    return _ReverseGradient.apply(x, float(coefficient))
