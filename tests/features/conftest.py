"""Fixtures for the features tests: tiny videos written with PyAV, a random-weight I3D."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch

pytest.importorskip("av", reason="PyAV is needed to write and decode test videos")

from features_testkit import write_video  # noqa: E402


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """A few videos: different containers, sizes, frame rates; one too short; one not a video."""
    root = tmp_path_factory.mktemp("videos")
    return {
        "a": write_video(root / "a.mp4", 40, 64, 48),
        "b": write_video(root / "b.avi", 20, 96, 64, fps=7, seed=1),
        "odd": write_video(root / "odd.gif", 18, 97, 61, codec="gif", seed=2),
        "ntsc": write_video(root / "ntsc.mkv", 33, 48, 64, fps=Fraction(30000, 1001), seed=3),
        "short": write_video(root / "short.mp4", 5, 64, 48, seed=4),
    }


@pytest.fixture(scope="session")
def tiny_i3d() -> torch.nn.Module:
    """The real I3D architecture with random weights and non-trivial batch-norm statistics."""
    gen = torch.Generator().manual_seed(0)
    from s4aqa.features.i3d import I3D

    torch.manual_seed(0)
    model = I3D()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
    return model.eval()
