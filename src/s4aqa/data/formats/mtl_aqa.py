"""Reader for MTL-AQA (diving, 1412 clips) with its split 0.

On disk::

    root/
      final_annotations_dict.pkl     {(video, clip): {final_score, difficulty, position, armstand,
                                      rotation_type, ss_no, tw_no, ...}}; CoRe's
                                      (core_)final_annotations_dict_with_dive_number.pkl also works
      train_split_0.pkl, test_split_0.pkl   lists of (video, clip) keys (1059 / 353)
      features/<video:02d>_<clip:02d>.npy   one array per clip (unpadded <video>_<clip>.npy also found)

Features come in one of two forms:

- a folder (``root/features`` or ``features=FOLDER``) of per-clip arrays, (T, D) - usually
  (10, 1024) I3D features - or (D,), read as a single segment (a clip-level vector);
- one pickle file (``features=FILE.pkl``) holding ``train_feat``, ``train_final_score``,
  ``test_feat`` and ``test_final_score`` (features (N, T, D), (N, D) or a list of per-clip arrays).
  That file defines the split; the split pickles are not read. With ``train_keys`` / ``test_keys``
  ((video, clip) lists) in it, ids are ``VV_CC`` and labels come from the annotation file; without
  them ids are ``train_0000``, ``test_0000``, ... and only ``target='final_score'`` is available.

- ``target``: 'final_score' (default) or 'difficulty'.
- ``aux``: the multi-task labels position, armstand, rotation_type, ss_no, tw_no (int64).
  ``meta``: 'difficulty' (float) and 'video' (the source video number).
- ``segments``: None keeps the native T when all clips share it (e.g. 10); else pass a number.
- One action class in the paper's tables: no groups, no ``task``. Extra feature files are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import _common as common
from s4aqa.data.formats import register_reader
from s4aqa.errors import S4AQAError

ANNOTATION_FILES = (
    "final_annotations_dict.pkl",
    "final_annotations_dict_with_dive_number.pkl",
    "core_final_annotations_dict_with_dive_number.pkl",
)
SPLIT_FILES = {"train": "train_split_0.pkl", "test": "test_split_0.pkl"}
TARGETS = ("final_score", "difficulty")
AUX_LABELS = ("position", "armstand", "rotation_type", "ss_no", "tw_no")
PICKLE_KEYS = ("train_feat", "train_final_score", "test_feat", "test_final_score")
HINT = "root must hold MTL-AQA's final_annotations_dict.pkl, train_split_0.pkl and test_split_0.pkl"


def clip_id(key: tuple[int, int]) -> str:
    return f"{key[0]:02d}_{key[1]:02d}"


def _clip_key(key: Any, source: str) -> tuple[int, int]:
    key = common.as_clip_key(key, source)
    if not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in key):
        raise S4AQAError(f"{source}: key {key!r:.60} is not a pair of numbers (video, clip); check the file")
    return int(key[0]), int(key[1])


def _annotation_path(root: Path) -> Path:
    path = common.first_existing(root / name for name in ANNOTATION_FILES)
    if path is None:
        raise S4AQAError(f"{root}: no {ANNOTATION_FILES[0]} found; {HINT}")
    return path


def read_annotations(path: Path) -> dict[tuple[int, int], dict]:
    raw = common.load_pickle(path, dict, "annotation dict", HINT)
    if not raw:
        raise S4AQAError(f"{path}: the annotation dict is empty; check it is the right file")
    return {_clip_key(key, str(path)): value for key, value in raw.items()}


def read_split(path: Path) -> list[tuple[int, int]]:
    raw = common.load_pickle(path, (list, tuple), "split list", HINT)
    if not raw:
        raise S4AQAError(f"{path}: the split list is empty; check it is the right file")
    return [_clip_key(key, str(path)) for key in raw]


def _labels(annotations: dict, keys: list[tuple[int, int]], source: Path) -> dict[str, np.ndarray]:
    """final_score, difficulty and the aux classes of ``keys``, checked."""
    missing = [clip_id(key) for key in keys if key not in annotations]
    if missing:
        raise S4AQAError(
            f"{source}: {len(missing)} split keys have no annotation ({common.describe(missing)}); "
            "use the annotation and split files of the same release"
        )
    columns: dict[str, np.ndarray] = {}
    for field in ("final_score", "difficulty") + AUX_LABELS:
        values = [common.annotation_number(annotations[key], field, key, str(source)) for key in keys]
        if field in AUX_LABELS:
            if any(v != int(v) for v in values):
                raise S4AQAError(f"{source}: '{field}' must be whole class numbers; check the file")
            columns[field] = np.array(values, dtype=np.int64)
        else:
            columns[field] = np.array(values, dtype=np.float64)
    return columns


def _pickled_features(path: Path) -> tuple[list[str], list[np.ndarray], np.ndarray, list[str], list | None]:
    """ids, per-clip arrays, scores, splits and (video, clip) keys (or None) from one pickle."""
    content = common.load_pickle(path, dict, "feature pickle",
                                 f"it must be a dict with {', '.join(PICKLE_KEYS)}")
    absent = [key for key in PICKLE_KEYS if key not in content]
    if absent:
        raise S4AQAError(f"{path}: the feature pickle has no {', '.join(absent)}; "
                         f"it must be a dict with {', '.join(PICKLE_KEYS)}")
    ids, sequences, scores, splits, keys = [], [], [], [], []
    has_keys = all(f"{split}_keys" in content for split in ("train", "test"))
    for split in ("train", "test"):
        feats, split_scores = content[f"{split}_feat"], content[f"{split}_final_score"]
        if isinstance(feats, np.ndarray):
            if feats.ndim not in (2, 3):
                raise S4AQAError(f"{path}: {split}_feat has shape {feats.shape}, expected (N, T, D) or (N, D)")
            feats = list(feats)
        elif not isinstance(feats, (list, tuple)):
            raise S4AQAError(f"{path}: {split}_feat is a {type(feats).__name__}, expected an array or list")
        split_scores = np.asarray(split_scores)
        if split_scores.dtype.kind not in "iuf" or split_scores.ndim != 1 or len(split_scores) != len(feats):
            raise S4AQAError(
                f"{path}: {split}_final_score must be {len(feats)} numbers (one per row of {split}_feat); "
                "check the file"
            )
        if not np.all(np.isfinite(split_scores)):
            raise S4AQAError(f"{path}: {split}_final_score contains NaN or inf; fix the file")
        if has_keys:
            split_keys = [_clip_key(k, str(path)) for k in content[f"{split}_keys"]]
            if len(split_keys) != len(feats):
                raise S4AQAError(f"{path}: {len(split_keys)} {split}_keys but {len(feats)} {split}_feat rows")
            keys += split_keys
            ids += [clip_id(k) for k in split_keys]
        else:
            ids += [f"{split}_{i:04d}" for i in range(len(feats))]
        sequences += [common.as_feature_array(f, f"{path} {split}_feat[{i}]", allow_vector=True)
                      for i, f in enumerate(feats)]
        scores.append(split_scores.astype(np.float64))
        splits += [split] * len(feats)
    return ids, sequences, np.concatenate(scores), splits, (keys if has_keys else None)


def detect(root: Path) -> bool:
    root = Path(root)
    return common.is_file(root / SPLIT_FILES["train"]) and \
        common.first_existing(root / name for name in ANNOTATION_FILES) is not None


@register_reader("mtl_aqa", detect=detect)
def read(root: Path, *, target: str | None = None, task: str | None = None,
         segments: int | None = None, features: str | os.PathLike | None = None) -> FeatureSet:
    """Read MTL-AQA annotations, split 0 and per-clip features (folder or one pickle)."""
    root = Path(root)
    target = common.choose_target(target, TARGETS, "final_score", "mtl_aqa", {"score": "final_score"})
    common.refuse_task(task, "mtl_aqa")
    segments = common.check_segments(segments, None)
    common.require_dir(root, "MTL-AQA", "check --root")
    feature_path = common.as_path(features) or root / "features"

    if common.is_file(feature_path):
        ids, sequences, scores, splits, keys = _pickled_features(feature_path)
        annotation_path = common.first_existing(root / name for name in ANNOTATION_FILES)
        common.check_unique(ids, [f"{feature_path.name} {split}" for split in splits], "mtl_aqa")
        if keys is None or annotation_path is None:
            if target != "final_score":
                raise S4AQAError(
                    f"{feature_path}: target {target!r} needs train_keys/test_keys in the pickle and "
                    f"{ANNOTATION_FILES[0]} in {root}; use --target final_score"
                )
            return FeatureSet.from_sequences(ids, sequences, scores, splits, segments, name="mtl_aqa", target=target)
        labels = _labels(read_annotations(annotation_path), keys, annotation_path)
    else:
        annotation_path = _annotation_path(root)
        keys, splits = [], []
        for split, name in SPLIT_FILES.items():
            split_keys = read_split(root / name)
            keys += split_keys
            splits += [split] * len(split_keys)
        ids = [clip_id(key) for key in keys]
        common.check_unique(ids, [SPLIT_FILES[split] for split in splits], "mtl_aqa")
        # labels first: a broken label file is reported before thousands of feature files are read
        labels = _labels(read_annotations(annotation_path), keys, annotation_path)
        common.require_dir(feature_path, "features",
                           "put the per-clip <VV>_<CC>.npy files in root/features or pass --features FOLDER")
        paths = common.locate_features(
            ids, feature_path,
            lambda video_id: [f"{video_id}.npy", "_".join(str(int(p)) for p in video_id.split("_")) + ".npy"],
            "mtl_aqa", "train_split_0.pkl/test_split_0.pkl")
        sequences = common.load_sequences(paths, allow_vector=True)

    return FeatureSet.from_sequences(
        ids, sequences, labels[target], splits, segments,
        meta={"difficulty": labels["difficulty"], "video": np.array([k[0] for k in keys], dtype=np.int64)},
        aux={name: labels[name] for name in AUX_LABELS},
        name="mtl_aqa", target=target,
    )
