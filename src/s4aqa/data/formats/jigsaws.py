"""Reader for JIGSAWS surgical skill (Suturing, Needle Passing, Knot Tying) in the release layout.

On disk::

    root/
      <Task>/meta_file_<Task>.txt            one line per trial, tab-separated (blank columns
                                             allowed): trial, skill (N/I/E), GRS total, 6 GRS items
      <Task>/kinematics/AllGestures/<trial>.txt   76 whitespace-separated columns per frame
      <Task>/folds.txt | <Task>/folds.json | folds.json   optional fold assignment (see below)

``root`` may also be one ``<Task>`` folder itself.

Features: each trial's kinematics are cut into ``segments`` (default 16) contiguous windows of
(nearly) equal length; each window is described by the mean and the standard deviation of each
of the 76 channels, so D = 152 (means first, then standard deviations). The statistics are raw:
a reader cannot know which trials will be training ones, so standardising here would leak test
statistics; methods standardise with their training statistics. ``features=FOLDER`` reads
``<trial>.npy`` (T, D) arrays from that folder instead of the kinematics (resampled to
``segments``, default 16).

- score: GRS total (``target`` 'grs', the default) or one GRS item ('respect_for_tissue',
  'suture_needle_handling', 'time_and_motion', 'flow_of_operation', 'overall_performance',
  'quality_of_final_product').
- ``aux``: the six GRS items as float arrays named ``grs_<item>``. ``meta``: 'fold' (int),
  'skill' ('N' / 'I' / 'E') and, from kinematics, 'length_frames' (frames in the trial).
- group = task name (e.g. 'Suturing'); ``task`` keeps one task ('suturing', 'knot_tying',
  'Needle Passing' ... all match).
- Every trial has split 'train'; the usual protocol is 4-fold cross-validation per task, with
  ``FeatureSet.with_fold_as_test(k)`` making fold k the test set.
- Folds: ``<Task>/folds.txt`` ('<trial> <fold>' per line), else ``<Task>/folds.json``, else
  ``root/folds.json`` (JSON: {"trial": fold} or [[trials of fold 0], [fold 1], ...]). Without a
  fold file the assignment is deterministic and stratified by skill: per task, trials sorted by
  (skill N < I < E, name) are dealt round-robin into folds 0..3. With fewer than 4 trials only
  the first folds exist.
- Trials listed in a meta file without a kinematics (or feature) file are skipped, because the
  development sample ships kinematics for 2 trials per task only; an error is raised when no
  trial of the selected tasks remains.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import _common as common
from s4aqa.data.formats import register_reader
from s4aqa.errors import S4AQAError

DEFAULT_SEGMENTS = 16
CHANNELS = 76
NUM_FOLDS = 4
SKILLS = ("N", "I", "E")  # novice, intermediate, expert: also the sort order for dealing folds
GRS_ITEMS = ("respect_for_tissue", "suture_needle_handling", "time_and_motion",
             "flow_of_operation", "overall_performance", "quality_of_final_product")
META_HINT = "each line must be: trial, skill (N/I/E), GRS total, then the 6 GRS item scores"
KINEMATICS_HINT = f"each line must hold the {CHANNELS} kinematic values of one frame"

log = logging.getLogger(__name__)


# ---- meta files ------------------------------------------------------------------------------
def find_tasks(root: Path) -> dict[str, Path]:
    """Task name -> its meta file, from root/<Task>/meta_file_<Task>.txt or root/meta_file_<Task>.txt."""
    try:
        found = sorted(root.glob("meta_file_*.txt")) + sorted(root.glob("*/meta_file_*.txt"))
    except OSError as exc:
        raise S4AQAError(f"{root}: cannot list the folder ({exc.strerror}); check --root") from None
    tasks: dict[str, Path] = {}
    for path in found:
        name = path.stem[len("meta_file_"):]
        if name and common.is_file(path):
            tasks.setdefault(name, path)
    if not tasks:
        raise S4AQAError(
            f"{root}: no JIGSAWS meta file found; expected <Task>/meta_file_<Task>.txt "
            "(e.g. Suturing/meta_file_Suturing.txt) under --root"
        )
    return tasks


def read_meta(path: Path) -> list[dict]:
    """One dict per trial: trial, skill, grs (total), items (6 floats), source ('file line N')."""
    trials = []
    for line, fields in common.text_rows(common.read_text(path, "meta", META_HINT)):
        where = f"{path} line {line}"
        if len(fields) != 3 + len(GRS_ITEMS):
            raise S4AQAError(f"{where}: {len(fields)} values, expected {3 + len(GRS_ITEMS)}; {META_HINT}")
        trial = common.check_file_name(fields[0], where)
        skill = fields[1].upper()
        if skill not in SKILLS:
            raise S4AQAError(f"{where}: skill is {fields[1][:20]!r}; use N, I or E")
        grs = common.parse_number(fields[2], where, "GRS total")
        items = [common.parse_number(text, where, f"GRS item '{item}'")
                 for text, item in zip(fields[3:], GRS_ITEMS)]
        trials.append({"trial": trial, "skill": skill, "grs": grs, "items": items,
                       "source": f"{path.name} line {line}"})
    return trials


# ---- kinematics ------------------------------------------------------------------------------
def _first_bad_line(text: str, path: Path) -> S4AQAError:
    for line, fields in common.text_rows(text):
        if len(fields) != CHANNELS:
            return S4AQAError(f"{path} line {line}: {len(fields)} values, expected {CHANNELS}; {KINEMATICS_HINT}")
        for value in fields:
            try:
                float(value)
            except ValueError:
                return S4AQAError(f"{path} line {line}: {value[:30]!r} is not a number; {KINEMATICS_HINT}")
    return S4AQAError(f"{path}: unreadable kinematics; {KINEMATICS_HINT}")


def read_kinematics(path: Path) -> np.ndarray:
    """(frames, 76) float64 kinematics of one trial."""
    text = common.read_text(path, "kinematics", KINEMATICS_HINT)
    tokens = text.split()
    lines = sum(1 for line in text.splitlines() if line.strip())
    if len(tokens) != lines * CHANNELS:
        raise _first_bad_line(text, path)
    try:
        frames = np.array(tokens, dtype=np.float64).reshape(lines, CHANNELS)
    except ValueError:
        raise _first_bad_line(text, path) from None
    if not np.all(np.isfinite(frames)):
        bad_line = int(np.flatnonzero(~np.isfinite(frames).all(axis=1))[0]) + 1
        raise S4AQAError(f"{path}: frame {bad_line} holds NaN or inf; clean the kinematics")
    return frames


def window_statistics(frames: np.ndarray, windows: int) -> np.ndarray:
    """(windows, 2C) float32: per contiguous window, the channel means then the channel stds.

    Windows split the frames as evenly as possible; with fewer frames than windows a window
    holds one frame (its std is 0), so any trial with at least one frame works.
    """
    count = len(frames)
    starts = (np.arange(windows) * count) // windows
    ends = np.maximum(((np.arange(windows) + 1) * count) // windows, starts + 1)
    out = np.empty((windows, 2 * frames.shape[1]), dtype=np.float64)
    for k, (start, end) in enumerate(zip(starts, ends)):
        window = frames[start:end]
        out[k, : frames.shape[1]] = window.mean(axis=0)
        out[k, frames.shape[1]:] = window.std(axis=0)
    return out.astype(np.float32)


# ---- folds -----------------------------------------------------------------------------------
def _fold_number(value: object, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise S4AQAError(f"{source}: fold {value!r:.30} is not a whole number >= 0; fix the file")
    fold = common.parse_int(str(value), source, "fold")
    if fold < 0:
        raise S4AQAError(f"{source}: fold {fold} is negative; use 0, 1, 2, ...")
    return fold


def read_fold_file(path: Path) -> dict[str, int]:
    """trial -> fold from folds.txt ('<trial> <fold>' lines) or folds.json."""
    hint = "folds.txt holds '<trial> <fold>' lines; folds.json {\"trial\": fold} or [[trials], ...]"
    text = common.read_text(path, "fold", hint)
    folds: dict[str, int] = {}
    if path.suffix == ".json":
        try:
            content = json.loads(text)
        except ValueError as exc:
            raise S4AQAError(f"{path}: not valid JSON ({exc}); {hint}") from None
        if isinstance(content, dict):
            pairs = list(content.items())
        elif isinstance(content, list) and all(isinstance(group, list) for group in content):
            pairs = [(trial, fold) for fold, group in enumerate(content) for trial in group]
        else:
            raise S4AQAError(f"{path}: unexpected JSON layout; {hint}")
        for trial, fold in pairs:
            if not isinstance(trial, str):
                raise S4AQAError(f"{path}: trial {trial!r:.30} is not a name; {hint}")
            if trial in folds:
                raise S4AQAError(f"{path}: trial {trial!r} is listed twice; keep one")
            folds[trial] = _fold_number(fold, str(path))
        return folds
    for line, fields in common.text_rows(text):
        where = f"{path} line {line}"
        if len(fields) != 2:
            raise S4AQAError(f"{where}: {len(fields)} values; {hint}")
        if fields[0] in folds:
            raise S4AQAError(f"{where}: trial {fields[0]!r} is listed twice; keep one")
        folds[fields[0]] = _fold_number(fields[1], where)
    return folds


def assign_folds(trials: list[dict], fold_file: Path | None) -> list[int]:
    """Fold of each trial (of one task): from ``fold_file`` or dealt by (skill, name)."""
    if fold_file is not None:
        folds = read_fold_file(fold_file)
        missing = [t["trial"] for t in trials if t["trial"] not in folds]
        if missing:
            raise S4AQAError(
                f"{fold_file}: {len(missing)} trials have no fold ({common.describe(missing)}); add them"
            )
        return [folds[t["trial"]] for t in trials]
    order = sorted(range(len(trials)),
                   key=lambda i: (SKILLS.index(trials[i]["skill"]), trials[i]["trial"]))
    fold_of = [0] * len(trials)
    for position, index in enumerate(order):
        fold_of[index] = position % NUM_FOLDS
    return fold_of


# ---- reader ----------------------------------------------------------------------------------
def _target(target: str | None) -> str:
    aliases = {"grs_total": "grs", "total": "grs", "score": "grs"}
    aliases.update({f"grs_{item}": item for item in GRS_ITEMS})
    return common.choose_target(target, ("grs",) + GRS_ITEMS, "grs", "jigsaws", aliases)


def detect(root: Path) -> bool:
    root = Path(root)
    return bool(sorted(root.glob("meta_file_*.txt")) or sorted(root.glob("*/meta_file_*.txt")))


@register_reader("jigsaws", detect=detect)
def read(root: Path, *, target: str | None = None, task: str | None = None,
         segments: int | None = None, features: str | os.PathLike | None = None) -> FeatureSet:
    """Read JIGSAWS meta files and kinematics (or per-trial .npy features) of one or all tasks."""
    root = Path(root)
    target = _target(target)
    segments = common.check_segments(segments, DEFAULT_SEGMENTS)
    common.require_dir(root, "JIGSAWS", "check --root")
    feature_folder = common.as_path(features)
    if feature_folder is not None:
        common.require_dir(feature_folder, "features", "point --features at a folder of <trial>.npy files")
    tasks = find_tasks(root)
    if task is not None:
        chosen = common.select_group(list(tasks), task, "jigsaws")
        tasks = {chosen: tasks[chosen]}

    kept: list[dict] = []
    listed = 0
    for task_name, meta_path in tasks.items():
        task_dir = meta_path.parent
        trials = read_meta(meta_path)
        common.check_unique([t["trial"] for t in trials], [t["source"] for t in trials], str(meta_path))
        listed += len(trials)
        available = []
        for trial in trials:
            if feature_folder is not None:
                trial["path"] = feature_folder / f"{trial['trial']}.npy"
            else:
                trial["path"] = task_dir / "kinematics" / "AllGestures" / f"{trial['trial']}.txt"
            if common.is_file(trial["path"]):
                available.append(trial)
        if len(available) < len(trials):
            log.warning("jigsaws: %d of %d trials in %s have no %s file; skipped", len(trials) - len(available),
                        len(trials), meta_path.name, "feature" if feature_folder else "kinematics")
        fold_file = common.first_existing([task_dir / "folds.txt", task_dir / "folds.json",
                                           root / "folds.json"])
        for trial, fold in zip(available, assign_folds(available, fold_file)):
            trial["fold"], trial["task"] = fold, task_name
            kept.append(trial)
    if not kept:
        where = feature_folder or "<Task>/kinematics/AllGestures/"
        raise S4AQAError(
            f"jigsaws: none of the {listed} trials in the meta files of {', '.join(tasks)} has a "
            f"{'feature' if feature_folder else 'kinematics'} file in {where}; check --root / --features"
        )
    common.check_unique([t["trial"] for t in kept], [t["source"] for t in kept], "jigsaws")

    meta: dict[str, np.ndarray] = {
        "fold": np.array([t["fold"] for t in kept], dtype=np.int64),
        "skill": np.array([t["skill"] for t in kept], dtype=object),
    }
    if feature_folder is not None:
        sequences = common.load_sequences([t["path"] for t in kept])
    else:
        kinematics = [read_kinematics(t["path"]) for t in kept]
        sequences = [window_statistics(frames, segments) for frames in kinematics]
        meta["length_frames"] = np.array([len(frames) for frames in kinematics], dtype=np.int64)
    items = np.array([t["items"] for t in kept], dtype=np.float64)
    scores = (np.array([t["grs"] for t in kept]) if target == "grs"
              else items[:, GRS_ITEMS.index(target)])
    return FeatureSet.from_sequences(
        [t["trial"] for t in kept], sequences, scores, ["train"] * len(kept), segments,
        groups=[t["task"] for t in kept], meta=meta,
        aux={f"grs_{item}": items[:, i] for i, item in enumerate(GRS_ITEMS)},
        name="jigsaws", target=target,
    )
