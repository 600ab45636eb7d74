"""I3D feature-extraction speed, in clips (16 frames at 224x224) per second, with random weights.

    python benchmarks/extract_speed.py                      # CPU: eager model, then end to end
    python benchmarks/extract_speed.py --device cuda        # eager vs bf16 vs torch.compile, then end to end

Two measurements:
- model only: uint8 clips already in memory → features (eager fp32; on CUDA also bf16 autocast and
  torch.compile), the ceiling the model allows;
- end to end: ``s4aqa.features.extract.extract`` on a generated 320x240 video (decoding, resizing,
  cropping on worker threads, batching, writing), the number a user sees.

The last line is ``clips_per_second: X`` for the end-to-end run (model-only with --no-end-to-end).
Random weights give the same speed as the Kinetics ones; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from s4aqa.device import resolve_device
from s4aqa.features.extract import ClipRunner, extract
from s4aqa.features.i3d import I3D


def model_only(model: torch.nn.Module, device: torch.device, mode: str, batch_size: int, clips: int,
               crop: int) -> float:
    runner = ClipRunner(model, device, precision="bf16" if mode == "bf16" else "fp32",
                        compile=mode == "compile")
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (batch_size, 16, crop, crop, 3), dtype=np.uint8)
    runner(batch)  # warm-up (and compilation)
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps = max(1, clips // batch_size)
    start = time.perf_counter()
    for _ in range(steps):
        runner(batch)  # returns numpy: includes the device sync and the copy back
    return steps * batch_size / (time.perf_counter() - start)


def write_video(path: Path, frames: int, width: int = 320, height: int = 240) -> None:
    import av

    rng = np.random.default_rng(0)
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=25)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    for i in range(frames):
        img = np.roll(base, i * 3, axis=1)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def end_to_end(model: torch.nn.Module, device: torch.device, precision: str, batch_size: int, clips: int,
               workers: int, videos: int) -> float:
    with tempfile.TemporaryDirectory(prefix="s4aqa-bench-") as tmp:
        tmp_path = Path(tmp)
        per_video = max(1, clips // videos)
        paths = []
        for i in range(videos):
            paths.append(tmp_path / f"v{i}.mp4")
            write_video(paths[-1], 16 * per_video)
        # warm-up on a one-clip video so that CUDA start-up is not counted
        write_video(tmp_path / "warm.mp4", 16)
        extract([tmp_path / "warm.mp4"], tmp_path / "warm", segments="stride:16", device=device,
                batch_size=batch_size, model=model, precision=precision, progress=False)
        summary = extract(paths, tmp_path / "out", segments="stride:16", device=device,
                          batch_size=batch_size, model=model, workers=workers, precision=precision,
                          progress=False)
        assert not summary.failed, summary.failed
        return summary.clips / summary.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 4 on CPU, 32 on CUDA")
    parser.add_argument("--clips", type=int, default=None, help="clips per measurement (default: 8 CPU, 256 CUDA)")
    parser.add_argument("--modes", default=None,
                        help="model-only modes, comma-separated from eager,bf16,compile (default: eager on CPU, all on CUDA)")
    parser.add_argument("--precision", default=None, choices=["fp32", "bf16"],
                        help="end-to-end precision (default: fp32 on CPU, bf16 on CUDA)")
    parser.add_argument("--workers", type=int, default=2, help="decoding threads for the end-to-end run")
    parser.add_argument("--videos", type=int, default=2, help="videos the end-to-end clips are spread over")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--no-end-to-end", action="store_true")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    batch_size = args.batch_size or (32 if cuda else 4)
    clips = args.clips or (256 if cuda else 8)
    modes = (args.modes or ("eager,bf16,compile" if cuda else "eager")).split(",")
    precision = args.precision or ("bf16" if cuda else "fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    print(f"device: {name}; torch {torch.__version__}; batch {batch_size}; {clips} clips per measurement")

    torch.manual_seed(0)
    model = I3D().eval()
    rate = 0.0
    for mode in modes:
        rate = model_only(model, device, mode.strip(), batch_size, clips, 224)
        print(f"model only, {mode.strip():7s}: {rate:8.2f} clips/s", flush=True)
    if not args.no_end_to_end:
        rate = end_to_end(model, device, precision, batch_size, clips, args.workers, args.videos)
        print(f"end to end ({precision}, decode 320x240 mpeg4 -> 224 crop): {rate:8.2f} clips/s")
    print(f"clips_per_second: {rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
