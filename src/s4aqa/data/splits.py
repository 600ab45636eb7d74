"""Labeled / unlabeled / validation draws of a training split: the user's own scores, or a
share of them by label ratio and seed.

A training video without a score is unlabeled by the user's say, under every ratio and seed.
The labeled videos are drawn from the scored training videos: within each group (apparatus,
task, action type) a ratio ``r`` of them is labeled, and the scored videos the draw sets aside
join the unscored ones in the unlabeled set (that is how the paper's protocols simulate few
labels). A ratio of None is the data's default (``default_ratio``): every score given where
some training videos are unscored, else the paper's 10% draw. A seed fixes the draw: every
method run under one seed sees the same labeled videos. A validation slice is carved from the
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from s4aqa import io
from s4aqa.data.featureset import UNLISTED, FeatureSet
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
    # where each set came from, in words (``counts_line``); empty in split files made before
    sources: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {part: len(getattr(self, part))
                for part in ("labeled", "validation", "unlabeled", "test")}

    def save(self, path: str | os.PathLike) -> None:
        io.write_json(path, {**asdict(self), "counts": self.counts()})

    @staticmethod
    def load(path: str | os.PathLike) -> "Split":
        path = Path(path)
        try:
            values = json.loads(path.read_text())
            values.pop("counts", None)  # written for readers, implied by the lists
            return Split(**values)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise S4AQAError(f"{path}: not a readable split file ({exc})") from None


DEFAULT_RATIO = 0.1  # the paper's protocol: where every training video is scored


def default_ratio(features: FeatureSet) -> float:
    """The label ratio a run without one draws: every score given (1) where some training
    videos are unscored (the user's own unlabeled videos), else ``DEFAULT_RATIO``."""
    train = features.split == "train"
    return 1.0 if np.any(train & ~features.scored) else DEFAULT_RATIO


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
    label_ratio: float | None,
    seed: int,
    val_fraction: float = 0.2,
    min_validation: int = 3,
    min_train: int = 3,
    shift: str | None = None,
    need_validation: bool = True,
    unlabeled_share: float = 1.0,
) -> Split:
    """Draw labeled, unlabeled and validation ids from the training split.

    Labeled videos are drawn from the scored training videos, per group (stratified) so every
    group keeps its share; ``label_ratio`` None is ``default_ratio``. Unscored training videos
    are unlabeled. The validation slice takes ``val_fraction`` of the labeled videos (at least
    ``min_validation``), or none when ``val_fraction`` is 0 (then methods train for a fixed
    schedule), or when too few videos are labeled for one and ``need_validation`` is off (a
    method that selects nothing on the slice trains on it anyway). ``shift``
    (``"labeled groups:unlabeled groups"``) separates the groups the two sets come from.
    ``unlabeled_share`` keeps that share of the unlabeled videos (a nested draw per seed).
    ``Split.sources`` says where each set came from.
    """
    given = label_ratio is not None
    label_ratio = check_ratio(label_ratio if given else default_ratio(features))
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
    scored_index = train_index[features.scored[train_index]]
    if scored_index.size == 0:
        raise S4AQAError(f"{features.name}: no training video has a score; give the scores you "
                         "have (a training video without one is an unlabeled video)")
    labeled_index: list[int] = []
    drawn_from = 0
    for group in sorted(set(features.groups[scored_index])):
        if labeled_groups is not None and str(group) not in labeled_groups:
            continue
        members = scored_index[features.groups[scored_index] == group]
        drawn_from += members.size
        count = max(1, int(round(label_ratio * members.size)))
        labeled_index.extend(rng.permutation(members)[:count].tolist())
    if not labeled_index:
        raise S4AQAError(f"--shift {shift!r}: no scored training video in the labeled groups")
    labeled_index = rng.permutation(np.array(labeled_index)).tolist()
    n_val = 0
    if val_fraction > 0:
        n_val = max(min_validation, int(round(val_fraction * len(labeled_index))))
        if len(labeled_index) - n_val < min_train and not need_validation:
            n_val = 0
        elif len(labeled_index) - n_val < min_train:
            raise S4AQAError(
                f"only {len(labeled_index)} labeled videos at ratio {label_ratio:g}: too few for "
                f"a validation slice of {n_val} and {min_train} to train on; raise the label "
                "ratio, score more videos, or set --val-fraction 0 (fixed training schedule)"
            )
    validation = labeled_index[:n_val]
    labeled = labeled_index[n_val:]
    taken = set(labeled_index)
    unlabeled = [int(i) for i in train_index if i not in taken and (
        unlabeled_groups is None or str(features.groups[i]) in unlabeled_groups)]
    whole_pool = len(unlabeled)
    if unlabeled_share < 1.0:
        pool = np.random.default_rng(np.random.SeedSequence([int(seed), POOL_STREAM]))
        keep = int(round(unlabeled_share * len(unlabeled)))
        unlabeled = pool.permutation(np.array(unlabeled, dtype=int))[:keep].tolist()
    test = np.flatnonzero((features.split == "test") & in_run).tolist()
    ids = features.ids
    sources = {
        "labeled": _labeled_source(label_ratio, given, len(labeled_index), drawn_from, seed,
                                   labeled_groups),
        "unlabeled": _unlabeled_source(features, np.array(unlabeled, dtype=int), whole_pool,
                                       unlabeled_share, unlabeled_groups),
        "validation": (f"{val_fraction:g} of the labeled videos, for model selection"
                       if n_val else "none"),
    }
    return Split(
        label_ratio=label_ratio,
        seed=int(seed),
        val_fraction=float(val_fraction),
        labeled=sorted(ids[i] for i in labeled),
        unlabeled=sorted(ids[i] for i in unlabeled),
        validation=sorted(ids[i] for i in validation),
        test=[ids[i] for i in test],
        sources=sources,
    )


def _labeled_source(ratio: float, given: bool, labeled: int, scored: int, seed: int,
                    groups: list[str] | None) -> str:
    where = f" of groups {','.join(groups)}" if groups else ""
    if labeled == scored:
        return f"every score given{where}"
    how = "" if given else ", the default label ratio"
    return f"a {ratio:g} draw of the {scored} scored training videos{where}, seed {seed}{how}"


def _unlabeled_source(features: FeatureSet, unlabeled: np.ndarray, whole: int, share: float,
                      groups: list[str] | None) -> str:
    if not unlabeled.size:
        return "none" if whole == 0 else f"none of {whole} (--unlabeled-share {share:g})"
    unscored = ~features.scored[unlabeled]
    unlisted = np.zeros(unlabeled.size, dtype=bool)
    if UNLISTED in features.meta:
        unlisted = np.asarray(features.meta[UNLISTED], dtype=bool)[unlabeled]
    parts = [(int((unscored & ~unlisted).sum()), "with an empty score"),
             (int(unlisted.sum()), "feature files with no line in the score table"),
             (int((~unscored).sum()), "scored ones the draw set aside")]
    text = ", ".join(f"{count} {what}" for count, what in parts if count)
    if groups:
        text += f"; of groups {','.join(groups)}"
    if share < 1.0:
        text += f"; a {share:g} share of {whole} kept (--unlabeled-share)"
    return text
