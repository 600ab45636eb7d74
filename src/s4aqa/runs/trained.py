"""A trained run folder: its method, its data, and features made ready for it.

What ``evaluate``, ``predict``, ``score`` and ``explain`` share: the run's config with its data
where it moved (``--root``), feature files resampled and checked against the shape the method
was trained on, and the metrics or predictions of the run's method.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import numpy as np

from s4aqa.config import RunConfig, absolute_path
from s4aqa.data.featureset import FeatureSet, resample_segments
from s4aqa.data.formats._common import load_npy
from s4aqa.data.splits import Split
from s4aqa.errors import S4AQAError
from s4aqa.methods.intervals import interval_metrics
from s4aqa.runs.checkpoint import load_checkpoint
from s4aqa.runs.intervals import bounds_of
from s4aqa.runs.data import load_data
from s4aqa.runs.run_folder import predictions_csv
from s4aqa.training.metrics import evaluate


def run_config(meta: dict, root: str | os.PathLike | None = None) -> RunConfig:
    """A run's config, its data read from ``root`` where the data moved."""
    config = RunConfig.from_dict(meta["config"])
    return config if root is None else dataclasses.replace(config, root=absolute_path(root))


def run_data(meta: dict, root: str | os.PathLike | None = None) -> FeatureSet:
    """The run's dataset (read from ``root`` where it moved)."""
    return load_data(run_config(meta, root))


def feature_paths(path: str | os.PathLike) -> list[Path]:
    """The .npy file ``path``, or the .npy files of the folder ``path``."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise S4AQAError(f"{path}: no .npy feature files found")
        return files
    if path.suffix == ".npy" and path.is_file():
        return [path]
    raise S4AQAError(f"{path}: not an .npy file or a folder of them")


def feature_files(files: list[Path], shape, notify: Callable[[str], None] | None = None
                  ) -> tuple[list[str], np.ndarray]:
    """(ids, (N, T, D) features) of .npy files, resampled to the run's segment count and
    checked against its feature dimension (the file named where one differs); ``notify`` is
    told in one line how many files were resampled, as ``train`` would need ``--segments``."""
    segments, dim = shape
    arrays, lengths = [], []
    for path in files:
        array = load_npy(path)  # numeric, (T, D), finite, float32, or the project's error
        if array.shape[1] != dim:
            raise S4AQAError(f"{path}: features have dimension {array.shape[1]} but the model was "
                             f"trained on {dim}; extract them the same way as the training data")
        lengths.append(array.shape[0])
        arrays.append(resample_segments(array, segments))
    other = [n for n in lengths if n != segments]
    if other and notify is not None:
        span = f"{min(other)}" if min(other) == max(other) else f"{min(other)}..{max(other)}"
        notify(f"{len(other)} of {len(files)} feature files have {span} segments where the "
               f"model reads {segments}: resampled to {segments} (as `train --segments "
               f"{segments}` does)")
    return [p.stem for p in files], np.stack(arrays)


def evaluate_run(run: str | os.PathLike, root: str | os.PathLike | None = None,
                 device: str = "cpu") -> dict:
    """The test metrics of a trained run, recomputed from its checkpoint."""
    method, meta = load_checkpoint(run, device=device)
    split = Split.load(Path(run) / "split.json")
    test = run_data(meta, root).select_ids(split.test)
    predicted = method.predict(test)
    metrics = evaluate(predicted, test)
    low, high = bounds_of(meta, predicted)  # the run's prediction intervals, if it has them
    if low is not None:
        metrics.update(interval_metrics(low, high, test))
    return metrics


def predict_run(run: str | os.PathLike, features: str | os.PathLike | None = None,
                root: str | os.PathLike | None = None, device: str = "cpu",
                notify: Callable[[str], None] | None = None) -> tuple[str, int]:
    """(predictions CSV, how many) of a trained run: for the .npy files at ``features``, or
    for every video of the run's dataset (with its scores and splits). ``notify``: told what
    was done to the input (resampling)."""
    method, meta = load_checkpoint(run, device=device)
    if features is None:
        data = run_data(meta, root)
        predicted = method.predict(data)
        low, high = bounds_of(meta, predicted)  # the run's prediction intervals
        return (predictions_csv(data.ids, predicted, data.scores, data.split, low=low,
                                high=high), len(data))
    if method.shape is None:
        raise S4AQAError(f"{run}: the run's method does not record its feature shape")
    ids, arrays = feature_files(feature_paths(features), method.shape, notify)
    predicted = method.predict(arrays)
    low, high = bounds_of(meta, predicted)
    return predictions_csv(ids, predicted, low=low, high=high), len(ids)
