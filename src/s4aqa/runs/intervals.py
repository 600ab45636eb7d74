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


def widest(ids: list[str], low: np.ndarray, high: np.ndarray, count: int) -> list[int]:
    """The indices of the ``count`` videos whose intervals are widest (widest first; ties in
    the order given)."""
    width = np.asarray(high, dtype=np.float64) - np.asarray(low, dtype=np.float64)
    order = np.argsort(-width, kind="stable")
    return [int(i) for i in order[:max(int(count), 0)]]


def review_text(ids: list[str], predictions: np.ndarray, low: np.ndarray | None,
                high: np.ndarray | None, count: int) -> str:
    """For ``score --review K``: the K videos whose intervals are widest, one line each
    (widest first), or a line saying why there are none to list."""
    if low is None or high is None:
        return "review: this run's checkpoint holds no intervals (retrain it to get them)\n"
    order = widest(ids, low, high, count)
    width = np.asarray(high, dtype=np.float64) - np.asarray(low, dtype=np.float64)
    lines = [f"review: the {len(order)} video(s) with the widest intervals (look at these "
             "again):"]
    lines += [f"  {ids[i]}: {predictions[i]:.3f} [{low[i]:.3f}, {high[i]:.3f}] width "
              f"{width[i]:.3f}" for i in order]
    if len(width) > 1 and np.ptp(width) == 0:
        lines.append("  (every interval of this run has the same width: its construction "
                     "does not adapt to the video)")
    return "\n".join(lines) + "\n"
