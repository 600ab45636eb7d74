"""Labeled / unlabeled / validation draws of a training split, by label ratio and seed.

A seed fixes the draw: every method run under one seed sees the same labeled videos. Within
each group (apparatus, task, action type) a ratio ``r`` of the training videos is labeled, the
rest of the training split is the unlabeled set, and a validation slice is carved from the
labeled part for model selection. Test videos are listed but never drawn from.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from s4aqa import io
from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError


@dataclass
class Split:
    label_ratio: float
    seed: int
    val_fraction: float
    labeled: list[str]
    unlabeled: list[str]
    validation: list[str]
    test: list[str]

    def save(self, path: str | os.PathLike) -> None:
        io.write_json(path, asdict(self))

    @staticmethod
    def load(path: str | os.PathLike) -> "Split":
        path = Path(path)
        try:
            return Split(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise S4AQAError(f"{path}: not a readable split file ({exc})") from None


def check_ratio(label_ratio: float) -> float:
    label_ratio = float(label_ratio)
    if not 0.0 < label_ratio <= 1.0:
        raise S4AQAError(f"label ratio {label_ratio} is outside (0, 1]; use e.g. 0.1 for 10% labels")
    return label_ratio


def make_split(
    features: FeatureSet,
    label_ratio: float,
    seed: int,
    val_fraction: float = 0.2,
    min_validation: int = 3,
    min_train: int = 3,
) -> Split:
    """Draw labeled, unlabeled and validation ids from the training split.

    Labeled videos are drawn per group (stratified) so every group keeps its share; the
    validation slice takes ``val_fraction`` of the labeled videos (at least ``min_validation``),
    or none when ``val_fraction`` is 0 (then methods train for a fixed schedule).
    """
    label_ratio = check_ratio(label_ratio)
    if not 0.0 <= val_fraction < 1.0:
        raise S4AQAError(f"validation fraction {val_fraction} is outside [0, 1)")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    train_mask = features.split == "train"
    train_index = np.flatnonzero(train_mask)
    if train_index.size == 0:
        raise S4AQAError(f"{features.name}: no training videos")
    labeled_index: list[int] = []
    for group in sorted(set(features.groups[train_index])):
        members = train_index[features.groups[train_index] == group]
        count = max(1, int(round(label_ratio * members.size)))
        labeled_index.extend(rng.permutation(members)[:count].tolist())
    labeled_index = rng.permutation(np.array(labeled_index)).tolist()
    n_val = 0
    if val_fraction > 0:
        n_val = max(min_validation, int(round(val_fraction * len(labeled_index))))
        if len(labeled_index) - n_val < min_train:
            raise S4AQAError(
                f"only {len(labeled_index)} labeled videos at ratio {label_ratio}: too few for a "
                f"validation slice of {n_val} and {min_train} to train on; raise the label ratio "
                "or set --val-fraction 0 (fixed training schedule)"
            )
    validation = labeled_index[:n_val]
    labeled = labeled_index[n_val:]
    taken = set(labeled_index)
    unlabeled = [int(i) for i in train_index if i not in taken]
    test = np.flatnonzero(features.split == "test").tolist()
    ids = features.ids
    return Split(
        label_ratio=label_ratio,
        seed=int(seed),
        val_fraction=float(val_fraction),
        labeled=sorted(ids[i] for i in labeled),
        unlabeled=sorted(ids[i] for i in unlabeled),
        validation=sorted(ids[i] for i in validation),
        test=[ids[i] for i in test],
    )
