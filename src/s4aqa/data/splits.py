"""Labeled / unlabeled / validation draws of a training split, by label ratio and seed.

A seed fixes the draw: every method run under one seed sees the same labeled videos. Within
each group (apparatus, task, action type) a ratio ``r`` of the training videos is labeled, the
rest of the training split is the unlabeled set, and a validation slice is carved from the
labeled part for model selection. Test videos are listed but never drawn from.

An *unlabeled share* ``S`` keeps the first ``round(S * n)`` of the ``n`` unlabeled videos in a
permutation of their own (seeded by the split seed and a constant the labeled draw does not
use): the labeled and validation videos are those of the whole pool, and a smaller share's
videos are among a larger share's, so a pool grows by adding videos, never by swapping them.

A *group shift* (``shift="A,B:C"``) draws the labeled videos from groups A and B only and the
unlabeled videos from group C only, as when unlabeled videos come from unseen actions; the
ratio then applies to the labeled groups' training videos, and videos of groups named on
neither side are left out of the run (training and test).
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


def check_share(share: float) -> float:
    share = float(share)
    if not 0.0 <= share <= 1.0:
        raise S4AQAError(f"--unlabeled-share {share}: use a share from 0 to 1 (1 keeps every "
                         "unlabeled video)")
    return share


# the unlabeled pool's own draw: apart from the labeled draw (0x5EED), so it leaves that alone
POOL_STREAM = 0x9001


def parse_shift(shift: str, groups: list[str]) -> tuple[list[str], list[str]]:
    """``"A,B:C"`` to (labeled groups, unlabeled groups), checked against the dataset's groups."""
    sides = str(shift).split(":")
    if len(sides) != 2:
        raise S4AQAError(f"--shift {shift!r}: expected LABELED:UNLABELED groups, e.g. source:look")
    labeled, unlabeled = ([g.strip() for g in side.split(",") if g.strip()] for side in sides)
    if not labeled or not unlabeled or set(labeled) & set(unlabeled):
        raise S4AQAError(f"--shift {shift!r}: name at least one group on each side, none on both")
    unknown = sorted(set(labeled + unlabeled) - set(groups))
    if unknown:
        raise S4AQAError(f"--shift {shift!r}: no group {', '.join(unknown)} in this dataset; its "
                         f"groups are {', '.join(groups) or 'none (it has a single group)'}")
    return labeled, unlabeled


def make_split(
    features: FeatureSet,
    label_ratio: float,
    seed: int,
    val_fraction: float = 0.2,
    min_validation: int = 3,
    min_train: int = 3,
    shift: str | None = None,
    need_validation: bool = True,
    unlabeled_share: float = 1.0,
) -> Split:
    """Draw labeled, unlabeled and validation ids from the training split.

    Labeled videos are drawn per group (stratified) so every group keeps its share; the
    validation slice takes ``val_fraction`` of the labeled videos (at least ``min_validation``),
    or none when ``val_fraction`` is 0 (then methods train for a fixed schedule), or when too few
    videos are labeled for one and ``need_validation`` is off (a method that selects nothing on
    the slice trains on it anyway). ``shift``
    (``"labeled groups:unlabeled groups"``) separates the groups the two sets come from.
    ``unlabeled_share`` keeps that share of the unlabeled videos (a nested draw per seed).
    """
    label_ratio = check_ratio(label_ratio)
    unlabeled_share = check_share(unlabeled_share)
    if not 0.0 <= val_fraction < 1.0:
        raise S4AQAError(f"validation fraction {val_fraction} is outside [0, 1)")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    train_mask = features.split == "train"
    in_run = np.ones(len(features.ids), dtype=bool)
    labeled_groups = unlabeled_groups = None
    if shift:
        groups = sorted(str(g) for g in set(features.groups)) if features.has_groups else []
        labeled_groups, unlabeled_groups = parse_shift(shift, groups)
        in_run = np.isin(features.groups.astype(str), labeled_groups + unlabeled_groups)
    train_index = np.flatnonzero(train_mask & in_run)
    if train_index.size == 0:
        raise S4AQAError(f"{features.name}: no training videos")
    labeled_index: list[int] = []
    for group in sorted(set(features.groups[train_index])):
        if labeled_groups is not None and str(group) not in labeled_groups:
            continue
        members = train_index[features.groups[train_index] == group]
        count = max(1, int(round(label_ratio * members.size)))
        labeled_index.extend(rng.permutation(members)[:count].tolist())
    labeled_index = rng.permutation(np.array(labeled_index)).tolist()
    n_val = 0
    if val_fraction > 0:
        n_val = max(min_validation, int(round(val_fraction * len(labeled_index))))
        if len(labeled_index) - n_val < min_train and not need_validation:
            n_val = 0
        elif len(labeled_index) - n_val < min_train:
            raise S4AQAError(
                f"only {len(labeled_index)} labeled videos at ratio {label_ratio}: too few for a "
                f"validation slice of {n_val} and {min_train} to train on; raise the label ratio "
                "or set --val-fraction 0 (fixed training schedule)"
            )
    validation = labeled_index[:n_val]
    labeled = labeled_index[n_val:]
    taken = set(labeled_index)
    unlabeled = [int(i) for i in train_index if i not in taken and (
        unlabeled_groups is None or str(features.groups[i]) in unlabeled_groups)]
    if unlabeled_share < 1.0:
        pool = np.random.default_rng(np.random.SeedSequence([int(seed), POOL_STREAM]))
        keep = int(round(unlabeled_share * len(unlabeled)))
        unlabeled = pool.permutation(np.array(unlabeled, dtype=int))[:keep].tolist()
    test = np.flatnonzero((features.split == "test") & in_run).tolist()
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
