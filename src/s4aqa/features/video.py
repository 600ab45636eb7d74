"""Video decoding with PyAV: frames resized (shorter side ``resize``), centre-cropped to ``crop``.

Any container and codec FFmpeg reads works, GIF included. Frames are streamed: only the frames
that the segment spec uses are converted, and only the clips still being filled are held in
memory, so long videos do not need to fit in RAM.

The number of frames is first taken from the container (``nb_frames``, else by counting packets,
which reads but does not decode); should decoding then find a different number, the clips are
planned again on the true count and the video is decoded a second time (the reader yields
:data:`RESTART` first, so consumers drop what they have from that video).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from s4aqa.errors import S4AQAError
from s4aqa.features.segments import SegmentSpec

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".gif", ".3gp", ".ts", ".mts", ".ogv")
DEFAULT_RESIZE = 256
DEFAULT_CROP = 224

RESTART = "restart"  # yielded by ClipReader when the clips are being planned again


def _av():
    try:
        import av  # noqa: WPS433 (optional dependency)
    except ImportError:
        raise S4AQAError("video decoding needs PyAV; install it with: pip install 's4aqa[video]'") from None
    return av


def _av_errors() -> tuple[type[BaseException], ...]:
    av = _av()
    return (av.error.FFmpegError, OSError, ValueError, EOFError, IndexError, MemoryError)


@dataclass
class VideoInfo:
    """What is known about a video: decoded frame count, frame rate, size."""

    path: str
    frames: int
    fps: float
    width: int
    height: int

    def as_dict(self) -> dict:
        return asdict(self)


class _CountMismatch(Exception):
    def __init__(self, actual: int):
        super().__init__(actual)
        self.actual = actual


def resize_crop_size(width: int, height: int, resize: int, crop: int) -> tuple[int, int, int, int]:
    """``(new_w, new_h, left, top)``: scale so the shorter side is ``resize``, then centre-crop ``crop``.

    Frames smaller than ``resize`` are scaled up; neither side ends below ``crop``.
    """
    if width < 1 or height < 1:
        raise S4AQAError(f"invalid frame size {width}x{height}")
    scale = resize / min(width, height)
    new_w = max(crop, int(round(width * scale)))
    new_h = max(crop, int(round(height * scale)))
    return new_w, new_h, (new_w - crop) // 2, (new_h - crop) // 2


def frame_to_rgb(frame, resize: int = DEFAULT_RESIZE, crop: int = DEFAULT_CROP) -> np.ndarray:
    """One PyAV frame to a ``(crop, crop, 3)`` uint8 RGB array."""
    new_w, new_h, left, top = resize_crop_size(frame.width, frame.height, resize, crop)
    if (new_w, new_h) == (frame.width, frame.height):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.reformat(width=new_w, height=new_h, format="rgb24",
                             interpolation="BILINEAR").to_ndarray()
    return rgb[top:top + crop, left:left + crop]


def _fps(stream) -> float:
    for rate in (getattr(stream, "average_rate", None), getattr(stream, "guessed_rate", None),
                 getattr(stream, "base_rate", None)):
        if rate:
            value = float(Fraction(rate))
            if value > 0:
                return value
    return 0.0


def _check_file(path: Path) -> None:
    if not path.exists():
        raise S4AQAError(f"{path}: file not found")
    if not path.is_file():
        raise S4AQAError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise S4AQAError(f"{path}: empty file, not a video")


def _open(path: Path):
    av = _av()
    try:
        container = av.open(str(path))
    except _av_errors() as exc:
        raise S4AQAError(f"{path}: cannot read as a video ({_short(exc)}); check the file is a complete video") from None
    if not container.streams.video:
        container.close()
        raise S4AQAError(f"{path}: has no video stream")
    return container


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return text[:200]


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame count (from the container, else by counting packets), frame rate and size, without decoding."""
    path = Path(path)
    _check_file(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        frames = int(stream.frames or 0)
        if frames <= 0:
            frames = sum(1 for packet in container.demux(stream) if packet.size)
        width = int(stream.codec_context.width or 0)
        height = int(stream.codec_context.height or 0)
        return VideoInfo(str(path), frames, _fps(stream), width, height)
    except _av_errors() as exc:
        raise S4AQAError(f"{path}: cannot read as a video ({_short(exc)})") from None
    finally:
        container.close()


class ClipReader:
    """Stream the clips of one video: iterate for ``(clip_index, (L, crop, crop, 3) uint8)`` pairs.

    ``info`` (after construction) holds the planned frame count; it is corrected, and
    :data:`RESTART` yielded, when decoding finds a different count.
    """

    def __init__(self, path: str | os.PathLike, segments: SegmentSpec | str = "mtl", *,
                 resize: int = DEFAULT_RESIZE, crop: int = DEFAULT_CROP):
        if crop > resize:
            raise S4AQAError(f"crop {crop} is larger than resize {resize}; use crop <= resize")
        self.path = Path(path)
        self.spec = SegmentSpec.parse(segments)
        self.resize = int(resize)
        self.crop = int(crop)
        self.info = probe(self.path)

    @property
    def n_clips(self) -> int:
        return self.spec.num_clips(self.info.frames) if self.info.frames >= self.spec.min_frames else 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray] | str]:
        frames = self.info.frames
        for attempt in range(2):
            try:
                yield from self._decode(frames)
                return
            except _CountMismatch as mismatch:
                if attempt == 1 or mismatch.actual == frames:
                    raise S4AQAError(f"{self.path}: frame count changes between reads; the file may be damaged") from None
                frames = mismatch.actual
                self.info.frames = frames
                yield RESTART

    def _decode(self, planned: int) -> Iterator[tuple[int, np.ndarray]]:
        spec, crop = self.spec, self.crop
        plan = spec.frame_indices(planned) if planned >= spec.min_frames else np.zeros((0, spec.clip), np.int64)
        uses: dict[int, list[tuple[int, int]]] = {}
        for clip_index, row in enumerate(plan):
            for position, frame_index in enumerate(row):
                uses.setdefault(int(frame_index), []).append((clip_index, position))
        last = plan[:, -1] if len(plan) else np.zeros(0, np.int64)
        buffers: dict[int, np.ndarray] = {}
        next_clip = 0
        count = 0
        container = _open(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                count = index + 1
                if self.info.width == 0:
                    self.info.width, self.info.height = frame.width, frame.height
                targets = uses.get(index)
                if not targets:
                    continue
                rgb = frame_to_rgb(frame, self.resize, crop)
                for clip_index, position in targets:
                    buffer = buffers.get(clip_index)
                    if buffer is None:
                        buffer = buffers[clip_index] = np.empty((spec.clip, crop, crop, 3), np.uint8)
                    buffer[position] = rgb
                while next_clip < len(plan) and last[next_clip] <= index:
                    yield next_clip, buffers.pop(next_clip)
                    next_clip += 1
        except _av_errors() as exc:
            raise S4AQAError(f"{self.path}: cannot decode frame {count} ({_short(exc)}); the file may be damaged") from None
        finally:
            container.close()
        if count == 0:
            raise S4AQAError(f"{self.path}: no decodable video frames")
        self.spec.check(count, str(self.path))
        if count != planned:
            raise _CountMismatch(count)


def read_clips(path: str | os.PathLike, segments: SegmentSpec | str = "mtl", *,
               resize: int = DEFAULT_RESIZE, crop: int = DEFAULT_CROP) -> tuple[np.ndarray, VideoInfo]:
    """All clips of a video at once: ``(clips, L, crop, crop, 3)`` uint8 and its :class:`VideoInfo`."""
    reader = ClipReader(path, segments, resize=resize, crop=crop)
    clips: dict[int, np.ndarray] = {}
    for item in reader:
        if item == RESTART:
            clips.clear()
            continue
        index, clip = item  # type: ignore[misc]
        clips[index] = clip
    reader.spec.check(reader.info.frames, str(reader.path))
    return np.stack([clips[i] for i in range(len(clips))]), reader.info


def read_frames(path: str | os.PathLike, *, resize: int = DEFAULT_RESIZE,
                crop: int = DEFAULT_CROP) -> tuple[np.ndarray, VideoInfo]:
    """Every frame, resized and cropped: ``(N, crop, crop, 3)`` uint8 (for short videos and checks)."""
    path = Path(path)
    info = probe(path)
    container = _open(path)
    frames = []
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frames.append(frame_to_rgb(frame, resize, crop))
    except _av_errors() as exc:
        raise S4AQAError(f"{path}: cannot decode frame {len(frames)} ({_short(exc)}); the file may be damaged") from None
    finally:
        container.close()
    if not frames:
        raise S4AQAError(f"{path}: no decodable video frames")
    info.frames = len(frames)
    return np.stack(frames), info


def to_model_input(clips: np.ndarray | torch.Tensor, device=None, dtype=None) -> torch.Tensor:
    """``(B, L, H, W, 3)`` uint8 → ``(B, 3, L, H, W)`` float in ``[-1, 1]`` (``x / 127.5 - 1``).

    The uint8 data moves to ``device`` first (a quarter of the bytes), then is converted there.
    """
    x = torch.as_tensor(clips)
    if device is not None:
        x = x.to(device, non_blocking=True)
    x = x.permute(0, 4, 1, 2, 3).to(dtype or torch.float32)
    return x.div_(127.5).sub_(1.0)


def find_videos(inputs: list[str | os.PathLike]) -> list[Path]:
    """Expand the given paths: files as they are, folders to the video files directly inside them."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir()
                                if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS))
        else:
            found.append(path)
    return found
