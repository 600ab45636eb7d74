"""How a video is cut into clips for I3D: a small spec parsed from a string (``--segments``).

Three kinds, all by decoded-frame index (the frame rate is recorded, never used to resample):

``mtl``
    The MTL-AQA convention: the video is sampled to 103 frames (evenly spaced over the whole video;
    a 103-frame video is taken as is, a shorter one repeats frames) and cut into 10 clips of 16
    frames starting at 0, 10, 20, ..., 80 and 87.
``uniform:T``
    ``T`` clips spread evenly over the whole video: starts ``round(i * (N - L) / (T - 1))``
    (one clip: the centre one). Clips overlap when the video is short.
``stride:S``
    Consecutive clips starting at 0, S, 2S, ... as long as a whole clip fits.

The clip length ``L`` is 16 unless given with ``,clip=L`` (``uniform:10,clip=32``; ``mtl`` is
always 16). A video needs at least one clip's worth of frames (``L``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from s4aqa.errors import S4AQAError

MTL_FRAMES = 103
MTL_STARTS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 87)
DEFAULT_CLIP = 16
KINDS = ("mtl", "uniform", "stride")
SYNTAX = "use 'mtl', 'uniform:T' or 'stride:S', optionally followed by ',clip=L' (e.g. 'uniform:10,clip=16')"


def _round(x: np.ndarray) -> np.ndarray:
    """Round half up (numpy rounds half to even)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


@dataclass(frozen=True)
class SegmentSpec:
    """Where the clips of an ``n_frames`` video start and which frames they hold."""

    kind: str = "mtl"
    count: int | None = None  # T for uniform, S for stride, None for mtl
    clip: int = DEFAULT_CLIP

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise S4AQAError(f"unknown segments kind '{self.kind}'; {SYNTAX}")
        if self.kind == "mtl":
            if self.count is not None or self.clip != DEFAULT_CLIP:
                raise S4AQAError(f"segments 'mtl' take no arguments (10 clips of 16 of 103 frames); {SYNTAX}")
        elif self.count is None or self.count < 1:
            raise S4AQAError(f"segments '{self.kind}' need a positive number, e.g. '{self.kind}:10'")
        if self.clip < 1:
            raise S4AQAError(f"clip length must be at least 1, got {self.clip}")

    @classmethod
    def parse(cls, text: "str | SegmentSpec") -> "SegmentSpec":
        """Parse ``mtl``, ``uniform:T``, ``stride:S`` with an optional ``,clip=L``."""
        if isinstance(text, SegmentSpec):
            return text
        raw = str(text).strip().lower().replace(" ", "")
        head, *options = raw.split(",")
        kind, _, arg = head.partition(":")
        clip = DEFAULT_CLIP
        for option in options:
            key, _, value = option.partition("=")
            if key != "clip" or not value.isdigit():
                raise S4AQAError(f"cannot read segments '{text}'; {SYNTAX}")
            clip = int(value)
        if kind == "mtl":
            if arg:
                raise S4AQAError(f"segments 'mtl' take no number; {SYNTAX}")
            return cls("mtl", None, clip)
        if kind not in KINDS or not arg.isdigit():
            raise S4AQAError(f"cannot read segments '{text}'; {SYNTAX}")
        return cls(kind, int(arg), clip)

    def __str__(self) -> str:
        if self.kind == "mtl":
            return "mtl"
        text = f"{self.kind}:{self.count}"
        return text if self.clip == DEFAULT_CLIP else f"{text},clip={self.clip}"

    @property
    def min_frames(self) -> int:
        """The fewest frames a video may have: one clip."""
        return self.clip

    def num_clips(self, n_frames: int) -> int:
        return len(self.starts(n_frames))

    def starts(self, n_frames: int) -> list[int]:
        """Clip starts in the (for ``mtl``: resampled to 103) frame sequence."""
        if self.kind == "mtl":
            return list(MTL_STARTS)
        span = n_frames - self.clip
        if span < 0:
            return []
        if self.kind == "uniform":
            if self.count == 1:
                return [span // 2]
            return _round(np.arange(self.count) * span / (self.count - 1)).tolist()
        return list(range(0, span + 1, self.count))  # stride

    def check(self, n_frames: int, name: str = "video") -> None:
        """Raise a one-line error when the video is too short for one clip."""
        if n_frames < self.min_frames:
            raise S4AQAError(f"{name}: too short: {n_frames} frames, segments '{self}' need at least "
                             f"{self.min_frames} (one clip)")

    def stretched(self, n_frames: int) -> str | None:
        """Why a video of ``n_frames`` is cut with repeated frames (None: it is not)."""
        if self.kind == "mtl" and self.min_frames <= n_frames < MTL_FRAMES:
            return (f"{n_frames} frames, fewer than the {MTL_FRAMES} that segments 'mtl' sample: "
                    "frames were repeated to fill them ('uniform:T' suits shorter videos)")
        return None

    def frame_indices(self, n_frames: int) -> np.ndarray:
        """``(clips, L)`` indices of decoded frames, each row one clip."""
        if n_frames < self.min_frames:
            raise S4AQAError(f"too short: {n_frames} frames, segments '{self}' need at least {self.min_frames}")
        if self.kind == "mtl":
            frames = _round(np.linspace(0, n_frames - 1, MTL_FRAMES))
        else:
            frames = np.arange(n_frames, dtype=np.int64)
        starts = np.asarray(self.starts(n_frames), dtype=np.int64)
        return frames[starts[:, None] + np.arange(self.clip)[None, :]]
