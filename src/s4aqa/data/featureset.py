"""FeatureSet: the one currency between data readers and methods.

A FeatureSet holds N videos, each a fixed-length sequence of T segment features of dimension D,
with a score, a split ('train' / 'test'), an optional group (apparatus, task, action type) and
per-video metadata (original length, difficulty, fold, auxiliary labels).

A score may be missing (NaN). A test video without one is a video to be scored, left out of
every metric; a training video without one is an unlabeled video by the user's own say: it is
never labeled, whatever label ratio a protocol draws (``data.splits``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from s4aqa.errors import S4AQAError

SPLITS = ("train", "test")


# meta key: 1 for a video a reader found as a feature file that no line of its score table
# names (an unlabeled training video; ``data.formats.folder``)
UNLISTED = "unlisted"

HOLDOUT_SEED = 12345  # the held-out draw is fixed, like a real test split

# features are held in the precision they come in where that is float16 (an archive of 100,000
# videos of (10, 1024) is 2 GB so, 4 GB as float32), else as float32; every method converts a
# batch at a time, so the values it computes with are those of a float32 copy
STORAGE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32))
BLOCK_VALUES = 1 << 24  # feature values converted (checked, hashed) at a time: 64 MiB as float32


def storage_array(array) -> np.ndarray:
    """``array`` as a features array: float16 kept as it is, anything else float32."""
    array = np.asarray(array)
    return array if array.dtype in STORAGE_DTYPES else array.astype(np.float32)


def blocks(array: np.ndarray):
    """``array`` a block of leading rows at a time, each about BLOCK_VALUES values."""
    per_row = max(int(np.prod(array.shape[1:], dtype=np.int64)), 1)
    step = max(1, BLOCK_VALUES // per_row)
    for start in range(0, len(array), step):
        yield array[start:start + step]


def resample_segments(array: np.ndarray, length: int) -> np.ndarray:
    """Resample a (T, D) sequence to (length, D).

    Longer sequences are shortened by adaptive average pooling over time (every output segment
    averages the input segments it covers); shorter ones are stretched by linear interpolation.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 2:
        raise S4AQAError(f"expected a (T, D) array of segment features, got shape {array.shape}")
    if array.shape[0] == length:
        return array
    if array.shape[0] == 0:
        raise S4AQAError("a video has no segments (T = 0)")
    seq = torch.from_numpy(np.ascontiguousarray(array.T))[None]  # (1, D, T)
    if array.shape[0] > length:
        out = F.adaptive_avg_pool1d(seq, length)
    elif array.shape[0] == 1:
        out = seq.expand(1, seq.shape[1], length)
    else:
        out = F.interpolate(seq, size=length, mode="linear", align_corners=True)
    return out[0].T.contiguous().numpy()


def check_finite(array: np.ndarray, what: str) -> None:
    if not all(np.isfinite(block).all() for block in blocks(np.asarray(array))):
        raise S4AQAError(f"{what} contains NaN or inf; clean or re-extract it")


def _hash_array(digest, name: str, array: np.ndarray) -> None:
    array = np.asarray(array)
    if array.dtype.kind in "biuf":
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    else:  # strings or objects: their text
        digest.update(f"{name}:{array.shape}:".encode())
        digest.update(json.dumps([str(v) for v in array.reshape(-1)]).encode())


def _hash_features(digest, array: np.ndarray) -> None:
    """The features' float32 values, as ``_hash_array`` hashes a float32 array, a block at a
    time: a dataset's fingerprint does not depend on the precision it is held in."""
    digest.update(f"features:{np.dtype(np.float32).newbyteorder('<').str}:{array.shape}".encode())
    for block in blocks(array):
        block = np.ascontiguousarray(block, dtype=np.dtype(np.float32).newbyteorder("<"))
        digest.update(memoryview(block).cast("B"))


@dataclass
class FeatureSet:
    """N videos of (T, D) segment features with scores, splits, groups and metadata.

    ``features`` is (N, T, D) float32, or float16 where it was given so (``STORAGE_DTYPES``:
    methods convert a batch at a time); ``scores`` is (N,) float64 (NaN where unknown);
    ``split`` is (N,) of 'train'/'test'; ``groups`` is (N,) of str (one group '' when the
    dataset has none); ``meta`` maps a name to an (N,) or (N, k) array (e.g. 'length', 'fold');
    ``aux`` maps an auxiliary label name to an (N,) array: integer dtype for classes, float for
    regression targets (used by multi-task baselines).
    """

    ids: list[str]
    features: np.ndarray
    scores: np.ndarray
    split: np.ndarray
    groups: np.ndarray | None = None
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "features"
    target: str | None = None  # which score of the dataset ``scores`` holds, as the reader chose

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        n = len(self.ids)
        self.features = storage_array(self.features)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.split = np.asarray(self.split, dtype=object).reshape(-1)
        if self.groups is None:
            self.groups = np.array([""] * n, dtype=object)
        self.groups = np.asarray(self.groups, dtype=object).reshape(-1)
        if self.features.ndim != 3:
            raise S4AQAError(
                f"{self.name}: features must be (N, T, D), got shape {self.features.shape}"
            )
        for what, arr in (("scores", self.scores), ("split", self.split), ("groups", self.groups),
                          ("features", self.features)):
            if len(arr) != n:
                raise S4AQAError(f"{self.name}: {n} ids but {len(arr)} {what}")
        for what, arr in list(self.meta.items()) + list(self.aux.items()):
            if len(arr) != n:
                raise S4AQAError(f"{self.name}: {n} ids but {len(arr)} values of '{what}'")
        if len(set(self.ids)) != n:
            dup = sorted({i for i in self.ids if self.ids.count(i) > 1})[:5]
            raise S4AQAError(f"{self.name}: duplicate video ids {dup}; ids must be unique")
        bad = sorted(set(self.split) - set(SPLITS))
        if bad:
            raise S4AQAError(f"{self.name}: unknown split names {bad}; use 'train' or 'test'")
        check_finite(self.features, f"{self.name}: features")
        if np.any(np.isinf(self.scores)):
            raise S4AQAError(f"{self.name}: scores contain inf; fix the label file")

    # ---- identity ----------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A content hash of everything a run reads: ids, scores, splits, groups, metadata,
        auxiliary labels and the feature arrays as loaded (SHA-256; about 40 ms for Fis-V).

        Resume state and cached runs are keyed on it, so changed data is never served a result
        computed on the old data."""
        digest = hashlib.sha256()
        digest.update(json.dumps({"ids": self.ids, "split": [str(s) for s in self.split],
                                  "groups": [str(g) for g in self.groups]}).encode())
        _hash_array(digest, "scores", self.scores)
        for kind, arrays in (("meta", self.meta), ("aux", self.aux)):
            for name in sorted(arrays):
                _hash_array(digest, f"{kind}/{name}", arrays[name])
        _hash_features(digest, self.features)
        return digest.hexdigest()

    # ---- shape -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_segments(self) -> int:
        return int(self.features.shape[1])

    @property
    def dim(self) -> int:
        return int(self.features.shape[2])

    @property
    def has_groups(self) -> bool:
        return len(set(self.groups)) > 1

    @property
    def scored(self) -> np.ndarray:
        """(N,) bool: whether each video has a score."""
        return ~np.isnan(self.scores)

    # ---- selection ---------------------------------------------------------------------
    def subset(self, index: Sequence[int] | np.ndarray) -> "FeatureSet":
        """The videos at ``index`` (positions or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64)
        return FeatureSet(
            ids=[self.ids[i] for i in index],
            features=self.features[index],
            scores=self.scores[index],
            split=self.split[index],
            groups=self.groups[index],
            meta={k: v[index] for k, v in self.meta.items()},
            aux={k: v[index] for k, v in self.aux.items()},
            name=self.name,
            target=self.target,
        )

    def select_ids(self, ids: Sequence[str]) -> "FeatureSet":
        position = {vid: i for i, vid in enumerate(self.ids)}
        missing = [vid for vid in ids if vid not in position]
        if missing:
            raise S4AQAError(f"{self.name}: unknown video ids {missing[:5]}")
        return self.subset([position[vid] for vid in ids])

    def train(self) -> "FeatureSet":
        return self.subset(self.split == "train")

    def test(self) -> "FeatureSet":
        return self.subset(self.split == "test")

    def where_group(self, group: str) -> "FeatureSet":
        mask = self.groups == group
        if not mask.any():
            known = sorted(set(self.groups))
            raise S4AQAError(f"{self.name}: no videos in group '{group}'; groups are {known}")
        return self.subset(mask)

    def with_fold_as_test(self, fold: int) -> "FeatureSet":
        """Cross-validation: videos of ``fold`` become the test split, all others train."""
        if "fold" not in self.meta:
            raise S4AQAError(f"{self.name}: this dataset has no folds; drop --fold")
        folds = np.asarray(self.meta["fold"]).astype(int)
        if fold not in set(folds.tolist()):
            raise S4AQAError(f"{self.name}: no fold {fold}; folds are {sorted(set(folds.tolist()))}")
        out = self.subset(np.arange(len(self)))
        out.split = np.where(folds == fold, "test", "train").astype(object)
        return out

    def with_holdout(self, count: int, seed: int = HOLDOUT_SEED) -> "FeatureSet":
        """Tuning without the test split: the test videos are dropped and ``count`` scored
        training videos (a fixed draw) become the test split in their place (unscored
        training videos stay unlabeled training videos)."""
        train = self.train()
        count = int(count)
        scored = np.flatnonzero(train.scored)
        if not 0 < count < len(scored):
            raise S4AQAError(f"{self.name}: cannot hold out {count} of {len(scored)} scored "
                             "training videos; choose a number between 1 and their number - 1")
        # the draw over the scored videos' positions: on a fully scored set, the draw it was
        held = scored[np.random.default_rng(seed).permutation(len(scored))[:count]]
        split = np.array(["train"] * len(train), dtype=object)
        split[held] = "test"
        train.split = split
        return train

    @staticmethod
    def from_sequences(
        ids: Sequence[str],
        sequences: Sequence[np.ndarray],
        scores: Sequence[float],
        split: Sequence[str],
        segments: int | None,
        groups: Sequence[str] | None = None,
        meta: dict[str, np.ndarray] | None = None,
        aux: dict[str, np.ndarray] | None = None,
        name: str = "features",
        target: str | None = None,
    ) -> "FeatureSet":
        """Build from per-video (T_i, D) arrays (or one (N, T, D) array), resampled to
        ``segments`` (or kept if all equal)."""
        if len(sequences) == 0:
            raise S4AQAError(f"{name}: no videos found")
        lengths = np.array([np.asarray(s).shape[0] for s in sequences], dtype=np.int64)
        dims = {np.asarray(s).shape[-1] if np.asarray(s).ndim == 2 else -1 for s in sequences}
        if -1 in dims:
            bad = next(i for i, s in zip(ids, sequences) if np.asarray(s).ndim != 2)
            raise S4AQAError(f"{name}: video '{bad}' is not a (T, D) array; re-extract it")
        if len(dims) != 1:
            each = [np.asarray(s).shape[-1] for s in sequences]
            usual = max(set(each), key=each.count)
            odd = next(i for i, d in zip(ids, each) if d != usual)
            raise S4AQAError(f"{name}: video '{odd}' has features of dimension "
                             f"{each[list(ids).index(odd)]} where the others have {usual}; "
                             "re-extract it the same way as the others")
        if segments is None:
            if len(set(lengths.tolist())) != 1:
                raise S4AQAError(
                    f"{name}: videos have {lengths.min()}..{lengths.max()} segments; "
                    "pass a fixed number of segments (--segments T) to resample them"
                )
            segments = int(lengths[0])
        if isinstance(sequences, np.ndarray):  # already stacked (a reader's fast path)
            finite = np.concatenate([np.isfinite(b).all(axis=(1, 2)) for b in blocks(sequences)])
            if not finite.all():
                check_finite(sequences[np.argmin(finite)],
                             f"{name}: video '{ids[int(np.argmin(finite))]}'")
        else:
            for vid, seq in zip(ids, sequences):
                check_finite(np.asarray(seq), f"{name}: video '{vid}'")
        # float16 stays float16 where no video is resampled (resampling computes in float32,
        # and its values are kept as computed)
        resampled = bool(np.any(lengths != segments))
        if isinstance(sequences, np.ndarray) and not resampled:
            features = storage_array(sequences)
        else:
            half = not resampled and all(np.asarray(s).dtype == np.float16 for s in sequences)
            features = np.empty((len(sequences), segments, dims.pop()),
                                dtype=np.float16 if half else np.float32)
            for i, seq in enumerate(sequences):
                features[i] = seq if not resampled else resample_segments(seq, segments)
        meta = dict(meta or {})
        meta.setdefault("length", lengths)
        return FeatureSet(ids=list(ids), features=features, scores=np.asarray(scores, float),
                          split=np.asarray(split, dtype=object), groups=groups, meta=meta,
                          aux=dict(aux or {}), name=name, target=target)
