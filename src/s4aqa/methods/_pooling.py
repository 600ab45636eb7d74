"""Videos as arrays and as single vectors: the input checks every method shares and the pooling
the classical methods (and the deep methods' closed-form partner) read."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from s4aqa.data.featureset import FeatureSet, storage_array
from s4aqa.errors import S4AQAError
from s4aqa.options import choice


def as_array(features: np.ndarray | FeatureSet) -> np.ndarray:
    """(N, T, D) features as they are held: float16 or float32 (a FeatureSet's, or an array's
    where it is either), anything else as float32. Never a float32 copy of a float16 pool:
    what reads it converts a block at a time."""
    if isinstance(features, FeatureSet):
        return features.features
    array = storage_array(features)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise S4AQAError(f"expected features of shape (N, T, D), got {array.shape}")
    return array


def video_blocks(features: np.ndarray | FeatureSet | Sequence[FeatureSet],
                 size: int) -> Iterator[np.ndarray]:
    """``size`` videos at a time of ``features``, or of several FeatureSets as if they were
    concatenated (only a block that spans two of them is joined): what is computed per block
    is then what one concatenated array would give, without the copy of a large pool."""
    arrays = ([as_array(f) for f in features] if isinstance(features, (list, tuple))
              else [as_array(features)])
    pending: list[np.ndarray] = []
    held = 0
    for array in arrays:
        start = 0
        if pending:  # fill the block begun in the previous array
            take = array[:size - held]
            pending.append(take)
            held += len(take)
            start = len(take)
            if held == size:
                yield np.concatenate(pending)
                pending, held = [], 0
        for begin in range(start, len(array), size):
            block = array[begin:begin + size]
            if len(block) == size:
                yield block
            else:
                pending, held = [block], len(block)
    if held:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def video_count(features: np.ndarray | FeatureSet | Sequence[FeatureSet]) -> int:
    if isinstance(features, (list, tuple)):
        return sum(len(as_array(f)) for f in features)
    return len(as_array(features))


def check_shape(array: np.ndarray, shape: tuple[int, int] | None, label: str = "method") -> None:
    """Raise a clear error when (N, T, D) features do not match the trained (T, D)."""
    if shape is None:
        raise S4AQAError(f"method '{label}' has not been trained or loaded")
    if tuple(array.shape[1:]) != tuple(shape):
        raise S4AQAError(
            f"features have shape (T, D) = {tuple(array.shape[1:])} but the model was "
            f"trained on {tuple(shape)}; resample or re-extract them"
        )


def z_scores(scores: np.ndarray) -> tuple[float, float]:
    """(mean, std) that z-score ``scores`` (std 1 where they are all equal): every method
    learns scores in these units and returns them in the dataset's."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(scores.mean()), float(scores.std()) or 1.0


POOLINGS = ("mean", "mean_max", "mean_std")


def pooling_option() -> Any:
    """The ``pool`` option of the classical methods: how a video becomes one vector."""
    return choice(*POOLINGS)


def pool_segments(features: np.ndarray | FeatureSet | Sequence[FeatureSet],
                  how: str = "mean") -> np.ndarray:
    """One vector per video for the classical methods: (N, T, D) -> (N, D) mean over segments,
    or (N, 2D) with the maximum (``mean_max``) or the standard deviation (``mean_std``) appended.
    Computed in float64 a block of videos at a time (each row as if all were converted at once),
    so a large pool never needs a float64 copy of all its segments; several FeatureSets give
    the rows of their concatenation."""
    if how not in POOLINGS:
        raise S4AQAError(f"unknown pooling '{how}'; use one of {', '.join(POOLINGS)}")
    first = as_array(features[0] if isinstance(features, (list, tuple)) else features)
    segments, dim = first.shape[1], first.shape[2]
    out = np.empty((video_count(features), dim * (1 if how == "mean" else 2)))
    step = max(1, POOL_BLOCK // max(segments * dim, 1))
    start = 0
    for block in video_blocks(features, step):
        array = block.astype(np.float64)
        mean = array.mean(axis=1)
        if how == "mean":
            out[start:start + len(array)] = mean
        else:
            extra = array.max(axis=1) if how == "mean_max" else array.std(axis=1)
            out[start:start + len(array)] = np.concatenate([mean, extra], axis=1)
        start += len(array)
    return out


POOL_BLOCK = 1 << 22  # segment values converted to float64 at a time (32 MiB)
