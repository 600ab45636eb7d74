"""Helpers for the features tests (imported by their conftest and test modules)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Small sizes keep the full I3D fast on CPU: frames are resized to 40 and cropped to 32.
RESIZE, CROP = 40, 32


def write_video(path: Path, frames: int, width: int = 64, height: int = 48, *, codec: str = "mpeg4",
                fps: int | Fraction = 25, seed: int = 0, pattern: str = "noise") -> Path:
    """Write a small video; frame i carries brightness i*7 in its lower half (frames differ)."""
    pix_fmt = {"gif": "rgb8", "png": "rgb24"}.get(codec, "yuv420p")
    rng = np.random.default_rng(seed)
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    for i in range(frames):
        if pattern == "split":  # left half black, right half white
            img = np.zeros((height, width, 3), np.uint8)
            img[:, width // 2:] = 255
        else:
            img = np.full((height, width, 3), (i * 7) % 256, np.uint8)
            img[: height // 2] = rng.integers(0, 256, (height // 2, width, 3), dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path
