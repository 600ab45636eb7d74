"""I3D (Inception-v1 inflated to 3D, RGB stream) in plain PyTorch.

Carreira & Zisserman, "Quo Vadis, Action Recognition?" (CVPR 2017). The network reproduces the
TensorFlow/Sonnet original numerically so that the released Kinetics-400 weights work unchanged:

- every convolution and max-pool pads like TensorFlow's ``"SAME"``: the total padding
  ``max((ceil(n / s) - 1) * s + k - n, 0)`` is split with ``total // 2`` before and the rest after
  (so a strided layer pads more at the end), and max-pools pad with ``-inf``;
- batch norm has no learned scale (its weight stays 1) and ``eps = 1e-3``;
- the classifier averages Mixed_5c over a (2, 7, 7) window (stride 1, no padding), applies a 1x1x1
  convolution with bias and averages the resulting logits over time.

Input: ``(B, 3, T, H, W)`` RGB in ``[-1, 1]`` (``uint8 / 127.5 - 1``), normally ``H = W = 224``.
``model.features(x)`` is the Mixed_5c output averaged over time and space, ``(B, 1024)``;
``model(x)`` the Kinetics-400 logits, ``(B, 400)``.

The parameter names follow the layout used by the common PyTorch ports (``Mixed_4b.b1b.conv3d.weight``,
``Mixed_4b.b1b.bn.running_mean``, ``logits.conv3d.bias``), so such state dicts load directly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from s4aqa.errors import S4AQAError

NUM_CLASSES = 400
FEATURE_DIM = 1024
BN_EPS = 1e-3

# (name, out_channels of branch 0, 1a, 1b, 2a, 2b, 3b)
_INCEPTION_BLOCKS: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``"SAME"`` padding of one dimension: ``(before, after)``.

    The output has ``ceil(size / stride)`` positions; the total padding needed for that is split
    with ``total // 2`` before and the remainder after.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int],
              value: float = 0.0) -> tuple[torch.Tensor, tuple[int, int, int] | None]:
    """Pad ``x`` (N, C, T, H, W) for a SAME window.

    Returns the tensor and, when the padding is symmetric and zero-valued, the per-dimension
    padding to hand to the convolution itself instead (no copy); otherwise the padded tensor and None.
    """
    pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[2:], kernel, stride)]
    if value == 0.0 and all(before == after for before, after in pads):
        return x, tuple(before for before, _ in pads)  # type: ignore[return-value]
    flat: list[int] = []
    for before, after in reversed(pads):  # F.pad lists the last dimension first
        flat += [before, after]
    if any(flat):
        x = F.pad(x, flat, value=value)
    return x, None


class Unit3D(nn.Module):
    """Convolution with SAME padding, then (optionally) batch norm without scale and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), *, batch_norm: bool = True,
                 activation: bool = True, bias: bool = False):
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)
        self.activation = activation
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=BN_EPS, momentum=0.001) if batch_norm else None
        if self.bn is not None:
            self.bn.weight.requires_grad_(False)  # the original has no scale; it stays 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = _pad_same(x, self.kernel, self.stride)
        conv = self.conv3d
        x = F.conv3d(x, conv.weight, conv.bias, conv.stride, padding or 0)
        if self.bn is not None:
            x = self.bn(x)
        if self.activation:
            x = F.relu(x, inplace=True)
        return x


class MaxPool3dSame(nn.Module):
    """Max-pool with TensorFlow SAME padding (padded cells are -inf, so never chosen)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = _pad_same(x, self.kernel, self.stride, value=float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1; 1x1→3x3; 1x1→3x3; maxpool→1x1), concatenated on channels."""

    def __init__(self, cin: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(cin, w0)
        self.b1a = Unit3D(cin, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(cin, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, w3b)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.b0(x),
            self.b1b(self.b1a(x)),
            self.b2b(self.b2a(x)),
            self.b3b(self.b3a(x)),
        ], dim=1)


class I3D(nn.Module):
    """Inception-v1 I3D, RGB stream. See the module docstring for the input convention."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.num_classes = num_classes
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        cin = 192
        for name, widths in _INCEPTION_BLOCKS:
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
            block = InceptionBlock(cin, widths)
            setattr(self, name, block)
            cin = block.out_channels
        assert cin == FEATURE_DIM
        self.logits = Unit3D(FEATURE_DIM, num_classes, batch_norm=False, activation=False, bias=True)
        self._order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3",
                       "MaxPool3d_3a_3x3", "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b",
                       "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2",
                       "Mixed_5b", "Mixed_5c"]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The Mixed_5c feature map, ``(B, 1024, T/8, H/32, W/32)`` (sizes rounded up)."""
        if x.dim() != 5 or x.shape[1] != 3:
            raise S4AQAError(f"I3D expects clips of shape (B, 3, T, H, W), got {tuple(x.shape)}")
        for name in self._order:
            x = getattr(self, name)(x)
        return x

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        """Kinetics logits from a Mixed_5c map: (2, 7, 7) average window, 1x1x1 conv, mean over time."""
        window = (min(2, fmap.shape[2]), min(7, fmap.shape[3]), min(7, fmap.shape[4]))
        pooled = F.avg_pool3d(fmap, window, stride=1)
        # (B, classes, t, h, w); h = w = 1 for 224 inputs. The head is linear, so averaging over
        # every position equals the original's squeeze-then-mean-over-time.
        return self.logits(pooled).mean(dim=(2, 3, 4))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c averaged over time and space: ``(B, 1024)``."""
        return self.trunk(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Kinetics-400 logits, ``(B, 400)`` (softmax gives class probabilities)."""
        return self.head(self.trunk(x))
