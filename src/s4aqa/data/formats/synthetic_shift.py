"""``synthetic_shift``: the built-in generator with three groups, for the ``--shift`` protocol.

``source`` is the generator as it is; ``look`` has other-looking videos of the same skills (a
covariate shift of 1.5 appearance standard deviations); ``skill`` has athletes one standard
deviation more skilled (a shift of the scores themselves). ``--shift source:look`` labels
source videos and leaves look videos unlabeled: distribution alignment has something to undo.
``--shift source:skill`` is the case where aligning labeled and unlabeled videos hides a real
difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from s4aqa.data.featureset import FeatureSet, resample_segments
from s4aqa.data.formats import register_reader
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError

GROUP_SHIFTS = {"source": {}, "look": {"look": 1.5}, "skill": {"skill": 1.0}}


@register_reader("synthetic_shift", generated=True)
def read(root: Path | None = None, *, target=None, task=None, segments=None, features=None,
         seed: int = 0) -> FeatureSet:
    """The dataset reader interface: ``root`` is ignored; ``task`` keeps one group."""
    if target not in (None, "score"):
        raise S4AQAError(f"synthetic data has one target, 'score' (got '{target}')")
    data = make_staged_actions(n_train=600, n_test=300, seed=seed, group_shifts=GROUP_SHIFTS)
    data.name = "synthetic_shift"
    if task is not None:
        if task not in GROUP_SHIFTS:
            raise S4AQAError(f"synthetic_shift has groups {', '.join(GROUP_SHIFTS)}; "
                             f"got --task {task}")
        data = data.where_group(task)
    if segments is not None and segments != data.num_segments:
        data.features = np.stack([resample_segments(v, segments) for v in data.features])
    return data
