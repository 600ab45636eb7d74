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


def trained_video_run(tmp_path: Path, model, segments: str):
    """Six tiny videos extracted with ``model`` at ``segments``, an `aa` run trained on them
    (v5 the test video), and a broken video file: (weights, videos, run, broken)."""
    from safetensors.torch import save_file

    from s4aqa.cli import main

    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    videos = [write_video(tmp_path / f"v{i}.mp4", 20, 48, 40, seed=i) for i in range(6)]
    feats = tmp_path / "feats"
    assert main(["extract", *map(str, videos), "--out", str(feats), "--segments", segments,
                 "--weights", str(weights), "--resize", str(RESIZE), "--crop", str(CROP),
                 "--no-progress"]) == 0
    rows = ["id,score,split"] + [f"v{i},{i * 1.5},{'test' if i == 5 else 'train'}" for i in range(6)]
    (feats / "scores.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--root", str(feats), "--method", "aa",
                 "--label-ratio", "1", "--val-fraction", "0", "--set", "steps=5",
                 "--out", str(run)]) == 0
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    return weights, videos, run, broken
