"""A run's prediction intervals (``methods.intervals``) as runs and the CLI use them: made
after training from the labeled videos, written beside the predictions and kept in the
checkpoint so that a later process gives a scored video the same interval."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from s4aqa.methods.intervals import Intervals

META_KEY = "intervals"  # where model.json keeps them


def checkpoint_intervals(meta: Mapping[str, Any]) -> Intervals | None:
    """The intervals a checkpoint's metadata holds; None for a checkpoint made before runs
    had intervals."""
    values = meta.get(META_KEY)
    return Intervals.from_json(values) if values else None


def bounds_of(meta: Mapping[str, Any], predictions: np.ndarray
              ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(low, high) for ``predictions`` by the checkpoint's intervals, or (None, None)."""
    intervals = checkpoint_intervals(meta)
    if intervals is None:
        return None, None
    return intervals.bounds(predictions)


def widths(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``high - low`` in float64 (inf where an interval is infinite, without a warning)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(high, dtype=np.float64) - np.asarray(low, dtype=np.float64)


def same_widths(width: np.ndarray, rtol: float = 1e-9) -> bool:
    """Whether every interval is as wide as the others, up to rounding: a constant ``± q``
    around different predictions differs from ``2q`` in the last bits."""
    if not len(width) or not np.all(np.isfinite(width)):
        return bool(len(width)) and not np.any(np.isfinite(width))
    return float(np.ptp(width)) <= rtol * max(1.0, float(np.abs(width).max()))


def widest(low: np.ndarray, high: np.ndarray, count: int) -> list[int]:
    """The indices of the ``count`` videos whose intervals are widest, widest first (ties in
    the order given); none where every interval has the same width (up to rounding) or is
    infinite: no video is then wider than another."""
    width = widths(low, high)
    if same_widths(width):
        return []
    order = np.argsort(-width, kind="stable")
    return [int(i) for i in order[:max(int(count), 0)]]


def review_text(ids: list[str], predictions: np.ndarray, low: np.ndarray | None,
                high: np.ndarray | None, count: int) -> str:
    """For ``score --review K``: the K videos whose intervals are widest, one line each
    (widest first), or a line saying why none is listed."""
    if low is None or high is None:
        return "review: this run's checkpoint holds no intervals (retrain it to get them)\n"
    width = widths(low, high)
    if len(width) and not np.any(np.isfinite(width)):
        return ("review: this run's intervals are infinite (too few labeled videos for its "
                "coverage), so none is wider than another; train with more scored videos or a "
                "lower --coverage\n")
    order = widest(low, high, count)
    if not order:
        return (f"review: every interval of this run has the same width ({width[0]:.3f}): its "
                "construction does not adapt to the video, so none is wider than another\n"
                if len(width) else "review: no videos scored\n")
    lines = [f"review: the {len(order)} video(s) with the widest intervals (look at these "
             "again):"]
    lines += [f"  {ids[i]}: {predictions[i]:.3f} [{low[i]:.3f}, {high[i]:.3f}] width "
              f"{width[i]:.3f}" for i in order]
    return "\n".join(lines) + "\n"
