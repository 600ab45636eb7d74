"""Fixtures for the fault tests: tiny videos and a random-weight I3D saved as safetensors."""

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture
def make_videos():
    av = pytest.importorskip("av", reason="PyAV is needed to write test videos")

    def make(folder: Path, count: int, frames: int = 20) -> list[str]:
        folder.mkdir(parents=True)
        paths = []
        rng = np.random.default_rng(0)
        for i in range(count):
            path = folder / f"clip{i:02d}.mp4"
            container = av.open(str(path), "w")
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = 48, 40, "yuv420p"
            for _ in range(frames):
                image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            container.close()
            paths.append(str(path))
        return paths

    return make


@pytest.fixture
def tiny_i3d_weights(tmp_path) -> str:
    from safetensors.torch import save_file

    from s4aqa.features.i3d import I3D

    torch.manual_seed(0)
    path = tmp_path / "i3d_random.safetensors"
    save_file({k: v.contiguous() for k, v in I3D().state_dict().items()}, str(path))
    return str(path)
