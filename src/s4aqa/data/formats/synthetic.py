"""``synthetic``: the built-in staged-action generator (``s4aqa.data.synthetic``) as a dataset:
the default dataset of `s4aqa demo` and the tests. It reads no files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from s4aqa.data.featureset import FeatureSet, resample_segments
from s4aqa.data.formats import register_reader
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError


@register_reader("synthetic", generated=True)
def read(root: Path | None = None, *, target=None, task=None, segments=None, features=None,
         seed: int = 0) -> FeatureSet:
    """The dataset reader interface: ``root`` is ignored; ``segments`` resamples if given."""
    if target not in (None, "score"):
        raise S4AQAError(f"synthetic data has one target, 'score' (got '{target}')")
    if task is not None:
        raise S4AQAError("synthetic data has no tasks; drop --task")
    data = make_staged_actions(seed=seed)
    if segments is not None and segments != data.num_segments:
        data.features = np.stack([resample_segments(v, segments) for v in data.features])
    return data
