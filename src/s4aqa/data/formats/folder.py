"""Reader for the layout we ask users to bring: a score table beside one .npy file per video.

On disk::

    root/
      scores.csv          header id,score[,split][,group], then one line per video
      <id>.npy            (T, D) segment features of video <id> (or in the ``features`` folder)

- ``id``: the file stem of the video's features; must be unique and usable as a file name.
- ``score``: a finite number, or empty where no expert scored the video: an unscored test
  video is a video to be scored (left out of the metrics), an unscored training video is an
  unlabeled video (the semi-supervised methods learn from it; it is never labeled).
- ``split``: ``train`` or ``test`` (any case). Without a split column every video is ``train``,
  and the split is drawn later (labeled / unlabeled / validation / test by ratio and seed).
- ``group``: optional action type or task name; ``task=`` keeps one group.
- Column names are case-insensitive and may come in any order. Any other column is refused
  (a misspelt ``split`` column would otherwise silently make every video a training video).
  A tab- or semicolon-separated file is accepted when its header has no comma.
- ``.npy`` files that no line of ``scores.csv`` names are unlabeled training videos too (an
  archive of unscored videos needs no line each); ``unlisted="ignore"`` keeps them out. With
  ``task``, they are left out (they belong to no group).
- Segments: with ``segments=None`` the native T is kept when all videos share it; otherwise
  pass ``segments`` and every video is resampled to that many segments.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from s4aqa.data.featureset import UNLISTED, FeatureSet
from s4aqa.data.formats import _common as common
from s4aqa.data.formats import UNLISTED_CHOICES, register_reader
from s4aqa.errors import S4AQAError

LABEL_FILE = "scores.csv"
COLUMNS = ("id", "score", "split", "group")
REQUIRED = ("id", "score")
HINT = "write scores.csv with a header line id,score[,split][,group] and one line per video"


def _delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    for candidate in ("\t", ";"):
        if candidate in header_line:
            return candidate
    return ","


def _rows(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) of every non-blank csv row."""
    first_line = next(line for line in text.splitlines() if line.strip())
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(first_line), strict=True)
    rows = []
    try:
        for cells in reader:
            cells = [cell.strip() for cell in cells]
            if any(cells):
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise S4AQAError(f"{path} line {reader.line_num}: not valid CSV ({exc}); {HINT}") from None
    if not rows:
        raise S4AQAError(f"{path}: the score table is empty; {HINT}")
    return rows


def _header(path: Path, line: int, cells: list[str]) -> dict[str, int]:
    names = [cell.lower() for cell in cells]
    while names and not names[-1]:  # trailing delimiter on the header line
        names.pop()
    if "id" not in names or "score" not in names:
        raise S4AQAError(
            f"{path} line {line}: the first line must be the header (found {','.join(cells)[:80]!r}); {HINT}"
        )
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise S4AQAError(
            f"{path} line {line}: unknown column {unknown[0][:40]!r}; the columns are "
            "id, score, split (optional), group (optional) - rename or remove it"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise S4AQAError(f"{path} line {line}: column {repeated[0]!r} appears twice; keep one")
    return {name: index for index, name in enumerate(names)}


def read_labels(path: Path) -> tuple[list[str], list[float], list[str], list[str] | None]:
    """ids, scores (NaN = unknown), splits and groups (None without a group column)."""
    rows = _rows(path, common.read_text(path, "score table", HINT))
    header_line, header_cells = rows[0]
    column = _header(path, header_line, header_cells)
    if len(rows) == 1:
        raise S4AQAError(f"{path}: has a header but no videos; add one line per video")
    ids, scores, splits, groups, sources = [], [], [], [], []
    for line, cells in rows[1:]:
        where = f"{path} line {line}"
        while len(cells) > len(column) and not cells[-1]:
            cells.pop()  # trailing delimiters
        if len(cells) > len(column):
            raise S4AQAError(
                f"{where}: {len(cells)} values but the header has {len(column)} columns; "
                "quote values that contain the delimiter or fix the line"
            )
        cells = cells + [""] * (len(column) - len(cells))
        video_id = common.check_file_name(cells[column["id"]], where)
        split = cells[column["split"]].lower() if "split" in column else "train"
        if split not in ("train", "test"):
            raise S4AQAError(f"{where}: split is {split[:40]!r}; use train or test")
        score_text = cells[column["score"]]
        # empty: a test video to be scored, or a training video that is unlabeled
        score = common.parse_number(score_text, where, "score") if score_text else float("nan")
        ids.append(video_id)
        scores.append(score)
        splits.append(split)
        groups.append(cells[column["group"]] if "group" in column else "")
        sources.append(f"line {line}")
    common.check_unique(ids, sources, str(path))
    return ids, scores, splits, (groups if "group" in column else None)


def detect(root: Path) -> bool:
    """Whether ``root`` looks like this format (for --root without --dataset)."""
    return common.is_file(Path(root) / LABEL_FILE)


def unlisted_files(folder: Path, listed: list[str]) -> list[str]:
    """The ids of the ``<id>.npy`` files in ``folder`` that no line of the score table names,
    sorted."""
    named = set(listed)
    try:
        stems = [path.stem for path in folder.glob("*.npy")]
    except OSError as exc:
        raise S4AQAError(f"{folder}: cannot list the feature files ({exc.strerror})") from None
    return sorted(stem for stem in stems if stem not in named)


@register_reader("folder", detect=detect, unlisted=True)
def read(root: Path, *, target: str | None = None, task: str | None = None,
         segments: int | None = None, features: str | os.PathLike | None = None,
         unlisted: str = "unlabeled") -> FeatureSet:
    """Read ``root/scores.csv`` and the ``<id>.npy`` files beside it (or in ``features``);
    ``unlisted``: what the feature files no line names are (module docstring)."""
    if unlisted not in UNLISTED_CHOICES:
        raise S4AQAError(f"--unlisted {unlisted}: use one of {', '.join(UNLISTED_CHOICES)}")
    root = Path(root)
    segments = common.check_segments(segments, None)
    if target is not None and str(target).strip().lower() != "score":
        raise S4AQAError(f"folder: scores.csv has one score column; drop --target {target}")
    common.require_dir(root, "dataset", "check --root")
    ids, scores, splits, groups = read_labels(root / LABEL_FILE)
    if task is not None:
        if groups is None:
            raise S4AQAError(
                f"{root / LABEL_FILE}: has no group column, so --task {task} cannot select videos; "
                "add a group column or drop --task"
            )
        keep_group = common.select_group(groups, task, "folder")
        keep = [i for i, group in enumerate(groups) if group == keep_group]
        ids, scores, splits, groups = ([values[i] for i in keep] for values in (ids, scores, splits, groups))
    folder = common.as_path(features) or root
    common.require_dir(folder, "features", "point --features at the folder of <id>.npy files")
    paths = common.locate_features(ids, folder, lambda video_id: [f"{video_id}.npy"], "folder", LABEL_FILE)
    extra = unlisted_files(folder, ids) if unlisted == "unlabeled" and task is None else []
    if extra:
        ids = ids + extra
        paths = paths + [folder / f"{video_id}.npy" for video_id in extra]
        scores = scores + [float("nan")] * len(extra)
        splits = splits + ["train"] * len(extra)
        groups = None if groups is None else groups + [""] * len(extra)
    sequences = common.load_stacked(paths)
    flags = np.zeros(len(ids), dtype=np.int8)
    flags[len(ids) - len(extra):] = 1
    return FeatureSet.from_sequences(
        ids, sequences, np.asarray(scores, dtype=np.float64), splits, segments,
        groups=groups, name="folder", target="score", meta={UNLISTED: flags},
    )
