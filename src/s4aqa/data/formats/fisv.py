"""Reader for Fis-V (figure skating, ladies' short program) in GDLT's release layout.

On disk::

    root/
      train.txt, test.txt              no header, whitespace-separated: <id> <TES> <PCS> [<deductions>]
      swintx_avg_fps25_clip32/<id>.npy (T, 1024) Video Swin features, one row per 32-frame clip
                                       (T = 124..302); any float dtype (float16 is converted)

- ``target``: 'tes' (default), 'pcs' or 'total' (any case). 'total' is TES + PCS; deductions are
  not subtracted (GDLT's protocol regresses TES and PCS) and are kept in ``meta['deductions']``
  (NaN where a line has no fourth column).
- ``segments``: 32 by default. Fis-V videos have 124..302 clips; each is shortened by adaptive
  average pooling to 32 segments so every video has one fixed length. Pass ``segments`` for more.
- ``features``: another folder of ``<id>.npy`` files instead of ``root/swintx_avg_fps25_clip32``.
- One action class, so no groups and no ``task``. Feature files that no label line names are
  ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import _common as common
from s4aqa.data.formats import register_reader
from s4aqa.errors import S4AQAError

FEATURE_FOLDER = "swintx_avg_fps25_clip32"
DEFAULT_SEGMENTS = 32
TARGETS = ("tes", "pcs", "total")
HINT = "each line must be '<id> <TES> <PCS> [<deductions>]' (GDLT's train.txt / test.txt)"


def read_labels(path: Path) -> list[tuple[str, float, float, float, str]]:
    """(id, TES, PCS, deductions or NaN, 'file line N') for every line of a GDLT label file."""
    rows = []
    for line, fields in common.text_rows(common.read_text(path, "label", HINT)):
        where = f"{path} line {line}"
        if len(fields) not in (3, 4):
            raise S4AQAError(f"{where}: {len(fields)} columns; {HINT}")
        video_id = common.check_file_name(fields[0], where)
        tes = common.parse_number(fields[1], where, "TES")
        pcs = common.parse_number(fields[2], where, "PCS")
        deductions = common.parse_number(fields[3], where, "deductions") if len(fields) == 4 else np.nan
        rows.append((video_id, tes, pcs, deductions, f"{path.name} line {line}"))
    return rows


def detect(root: Path) -> bool:
    root = Path(root)
    return all(common.is_file(root / f"{split}.txt") for split in ("train", "test")) and \
        common.is_dir(root / FEATURE_FOLDER)


@register_reader("fisv", detect=detect)
def read(root: Path, *, target: str | None = None, task: str | None = None,
         segments: int | None = None, features: str | os.PathLike | None = None) -> FeatureSet:
    """Read Fis-V's train.txt / test.txt and per-video Swin features into one FeatureSet."""
    root = Path(root)
    target = common.choose_target(target, TARGETS, "tes", "fisv")
    common.refuse_task(task, "fisv")
    segments = common.check_segments(segments, DEFAULT_SEGMENTS)
    common.require_dir(root, "Fis-V", "check --root")
    rows, splits = [], []
    for split in ("train", "test"):
        split_rows = read_labels(root / f"{split}.txt")
        rows += split_rows
        splits += [split] * len(split_rows)
    ids = [row[0] for row in rows]
    common.check_unique(ids, [row[4] for row in rows], "fisv")
    tes = np.array([row[1] for row in rows])
    pcs = np.array([row[2] for row in rows])
    scores = {"tes": tes, "pcs": pcs, "total": tes + pcs}[target]
    folder = common.as_path(features) or root / FEATURE_FOLDER
    common.require_dir(folder, "features",
                       f"put the <id>.npy files in {root / FEATURE_FOLDER} or pass --features FOLDER")
    paths = common.locate_features(ids, folder, lambda video_id: [f"{video_id}.npy"], "fisv",
                                   "train.txt/test.txt")
    return FeatureSet.from_sequences(
        ids, common.load_sequences(paths), scores, splits, segments,
        meta={"tes": tes, "pcs": pcs, "deductions": np.array([row[3] for row in rows])},
        name="fisv", target=target,
    )
