"""Reader for Rhythmic Gymnastics (RG, 1000 routines over four apparatus) in ACTION-NET's layout.

On disk::

    root/
      train.txt, test.txt   whitespace-separated, header line
                            Video_Name Difficulty_Score Execution_Score Total_Score Penalty Video_length
                            then e.g. 'Ball_001  10.50  8.30  18.80  0.00  92'
      <Video_Name>.npy      (T, D) segment features per routine (or in the ``features`` folder)

- Columns are found by header name (any case, any order); a file without the header line is read
  in the order above. Penalty and Video_length are optional and kept in ``meta['penalty']`` /
  ``meta['video_length']`` (NaN where absent).
- ``target``: 'total' (default), 'difficulty' or 'execution'.
- group = apparatus = the name's prefix before the first '_' (Ball, Clubs, Hoop, Ribbon; the whole
  name when it has no '_'). ``task`` keeps one apparatus (any case).
- ``segments``: 68 by default. A routine lasts about 90 s; at 25 fps and one feature per 32-frame
  clip that is about 70 clips, so 68 keeps roughly the native temporal resolution while giving every
  routine the same length (longer ones are average-pooled, shorter ones interpolated).
- Feature files that no label line names are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import _common as common
from s4aqa.data.formats import register_reader
from s4aqa.errors import S4AQAError

DEFAULT_SEGMENTS = 68
STANDARD_COLUMNS = ("video_name", "difficulty_score", "execution_score", "total_score",
                    "penalty", "video_length")
TARGET_COLUMNS = {"total": "total_score", "difficulty": "difficulty_score",
                  "execution": "execution_score"}
HINT = ("use ACTION-NET's label files: a header 'Video_Name Difficulty_Score Execution_Score "
        "Total_Score Penalty Video_length' and one line per routine")


def apparatus(video_name: str) -> str:
    return video_name.split("_", 1)[0]


def read_labels(path: Path, score_column: str) -> list[tuple[str, float, float, float, str]]:
    """(name, score, penalty, video_length, 'file line N') per line; NaN for absent optional columns."""
    rows = common.text_rows(common.read_text(path, "label", HINT))
    header_line, first_fields = rows[0]
    if "video_name" in (field.lower() for field in first_fields):
        header = [name.lower() for name in first_fields]
        rows = rows[1:]
        if len(set(header)) != len(header):
            raise S4AQAError(f"{path} line {header_line}: a column name appears twice; {HINT}")
        for needed in ("video_name", score_column):
            if needed not in header:
                raise S4AQAError(f"{path}: the header has no column {needed!r}; {HINT}")
    else:
        header = list(STANDARD_COLUMNS)
    if not rows:
        raise S4AQAError(f"{path}: has a header but no routines; add one line per routine")
    column = {name: index for index, name in enumerate(header)}
    labels = []
    for line, fields in rows:
        where = f"{path} line {line}"
        if len(fields) != len(header):
            raise S4AQAError(f"{where}: {len(fields)} columns but the header has {len(header)}; {HINT}")
        name = common.check_file_name(fields[column["video_name"]], where)
        optional = [common.parse_number(fields[column[c]], where, c) if c in column else np.nan
                    for c in ("penalty", "video_length")]
        score = common.parse_number(fields[column[score_column]], where, score_column)
        labels.append((name, score, optional[0], optional[1], f"{path.name} line {line}"))
    return labels


def detect(root: Path) -> bool:
    path = Path(root) / "train.txt"
    if not common.is_file(path):
        return False
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.readline().split()[:1] == ["Video_Name"]


@register_reader("rg", detect=detect)
def read(root: Path, *, target: str | None = None, task: str | None = None,
         segments: int | None = None, features: str | os.PathLike | None = None) -> FeatureSet:
    """Read RG's train.txt / test.txt and per-routine features; group = apparatus."""
    root = Path(root)
    target = common.choose_target(target, tuple(TARGET_COLUMNS), "total", "rg")
    segments = common.check_segments(segments, DEFAULT_SEGMENTS)
    common.require_dir(root, "RG", "check --root")
    rows, splits = [], []
    for split in ("train", "test"):
        split_rows = read_labels(root / f"{split}.txt", TARGET_COLUMNS[target])
        rows += split_rows
        splits += [split] * len(split_rows)
    common.check_unique([row[0] for row in rows], [row[4] for row in rows], "rg")
    groups = [apparatus(row[0]) for row in rows]
    if task is not None:
        keep_group = common.select_group(groups, task, "rg")
        keep = [i for i, group in enumerate(groups) if group == keep_group]
        rows, splits, groups = ([values[i] for i in keep] for values in (rows, splits, groups))
    ids = [row[0] for row in rows]
    folder = common.as_path(features) or root
    common.require_dir(folder, "features", "point --features at the folder of <Video_Name>.npy files")
    paths = common.locate_features(ids, folder, lambda video_id: [f"{video_id}.npy"], "rg",
                                   "train.txt/test.txt")
    return FeatureSet.from_sequences(
        ids, common.load_sequences(paths), np.array([row[1] for row in rows]), splits, segments,
        groups=groups,
        meta={"penalty": np.array([row[2] for row in rows]),
              "video_length": np.array([row[3] for row in rows])},
        name="rg", target=target,
    )
