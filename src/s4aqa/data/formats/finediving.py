"""Reader for FineDiving (3000 dives) with its official train/test split.

On disk::

    root/
      FineDiving_coarse_annotation.pkl   {(event_name, idx): {action_type, dive_score, difficulty,
                                          judge_scores, start_frame, end_frame}}
      train_split.pkl, test_split.pkl    lists of (event_name, idx) keys (2251 / 749)
      features/<event_name>_<idx>.npy    one array per dive (``features=FOLDER`` elsewhere);
                                         <event_name>/<idx>.npy is found too

- Arrays are (T, D) or (D,), the latter read as a single segment (a dive-level vector).
- ``target``: 'dive_score' (default) or 'difficulty'.
- ``aux['action_type']``: int64 class index into the sorted action types of the whole annotation
  file (so indices do not depend on the split); ``meta['action_type']`` keeps the names (e.g.
  '407c') and ``meta['difficulty']`` the degree of difficulty.
- ``segments``: None keeps the native T when all dives share it; else pass a number.
- No groups and no ``task``. Feature files that no split key names are ignored.
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

ANNOTATION_FILE = "FineDiving_coarse_annotation.pkl"
SPLIT_FILES = {"train": "train_split.pkl", "test": "test_split.pkl"}
TARGETS = ("dive_score", "difficulty")
HINT = f"root must hold FineDiving's {ANNOTATION_FILE}, train_split.pkl and test_split.pkl"


def _dive_key(key: Any, source: str) -> tuple[str, int]:
    event, index = common.as_clip_key(key, source)
    if not isinstance(event, str) or not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise S4AQAError(f"{source}: key {key!r:.80} is not an (event name, number) pair; check the file")
    common.check_file_name(event, source)
    return event, int(index)


def dive_id(key: tuple[str, int]) -> str:
    return f"{key[0]}_{key[1]}"


def _feature_names(key: tuple[str, int]) -> list[str]:
    return [f"{dive_id(key)}.npy", f"{key[0]}/{key[1]}.npy"]


def _action_type(entry: Any, key: Any, source: Path) -> str:
    if not isinstance(entry, dict) or not isinstance(entry.get("action_type"), str):
        raise S4AQAError(f"{source}: annotation of {key!r} has no action_type name; check the file")
    return entry["action_type"]


def detect(root: Path) -> bool:
    return common.is_file(Path(root) / ANNOTATION_FILE)


@register_reader("finediving", detect=detect)
def read(root: Path, *, target: str | None = None, task: str | None = None,
         segments: int | None = None, features: str | os.PathLike | None = None) -> FeatureSet:
    """Read FineDiving's coarse annotations, official split and per-dive features."""
    root = Path(root)
    target = common.choose_target(target, TARGETS, "dive_score", "finediving", {"score": "dive_score"})
    common.refuse_task(task, "finediving")
    segments = common.check_segments(segments, None)
    common.require_dir(root, "FineDiving", "check --root")
    annotation_path = root / ANNOTATION_FILE
    raw = common.load_pickle(annotation_path, dict, "annotation dict", HINT)
    if not raw:
        raise S4AQAError(f"{annotation_path}: the annotation dict is empty; check it is the right file")
    annotations = {_dive_key(key, str(annotation_path)): value for key, value in raw.items()}
    action_types = sorted({_action_type(v, k, annotation_path) for k, v in annotations.items()})

    keys, splits = [], []
    for split, name in SPLIT_FILES.items():
        split_keys = common.load_pickle(root / name, (list, tuple), "split list", HINT)
        if not split_keys:
            raise S4AQAError(f"{root / name}: the split list is empty; check it is the right file")
        keys += [_dive_key(key, str(root / name)) for key in split_keys]
        splits += [split] * len(split_keys)
    ids = [dive_id(key) for key in keys]
    common.check_unique(ids, [SPLIT_FILES[split] for split in splits], "finediving")
    missing = [dive_id(key) for key in keys if key not in annotations]
    if missing:
        raise S4AQAError(
            f"{annotation_path}: {len(missing)} split keys have no annotation ({common.describe(missing)}); "
            "use the annotation and split files of the same release"
        )

    # labels first: a broken annotation is reported before thousands of feature files are read
    source = str(annotation_path)
    scores = np.array([common.annotation_number(annotations[k], target, k, source) for k in keys])
    difficulty = np.array([common.annotation_number(annotations[k], "difficulty", k, source) for k in keys])
    names = [annotations[k]["action_type"] for k in keys]
    class_index = {name: i for i, name in enumerate(action_types)}

    folder = common.as_path(features) or root / "features"
    common.require_dir(folder, "features",
                       "put the <event>_<idx>.npy files in root/features or pass --features FOLDER")
    by_id = dict(zip(ids, keys))
    paths = common.locate_features(ids, folder, lambda video_id: _feature_names(by_id[video_id]),
                                   "finediving", "train_split.pkl/test_split.pkl")
    sequences = common.load_sequences(paths, allow_vector=True)
    return FeatureSet.from_sequences(
        ids, sequences, scores, splits, segments,
        meta={"difficulty": difficulty, "action_type": np.array(names, dtype=object)},
        aux={"action_type": np.array([class_index[n] for n in names], dtype=np.int64)},
        name="finediving", target=target,
    )
