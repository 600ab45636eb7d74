"""One run end to end: data, split, method, predictions, metrics, checkpoint."""

from __future__ import annotations

import csv
import hashlib
import io as _io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s4aqa import io
from s4aqa.config import RunConfig
from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import load_dataset
from s4aqa.data.splits import Split, make_split
from s4aqa.engine.checkpoint import save_checkpoint
from s4aqa.engine.metrics import evaluate
from s4aqa.engine.trainer import STATE_FILE
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create

_DATA_CACHE: dict[tuple, FeatureSet] = {}


def check_device(device: str) -> str:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise S4AQAError(f"--device {device} asked for, but no CUDA device is available; use --device cpu")
    try:
        torch.device(device)
    except RuntimeError:
        raise S4AQAError(f"unknown device '{device}'; use cpu or cuda") from None
    return device


def load_data(config: RunConfig) -> FeatureSet:
    """The dataset of ``config`` (cached in this process), with its fold made the test split."""
    key = (config.dataset, config.root, config.target, config.task, config.segments,
           config.features)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_dataset(config.dataset, config.root, target=config.target,
                                        task=config.task, segments=config.segments,
                                        features=config.features)
    data = _DATA_CACHE[key]
    if config.fold is not None:
        data = data.with_fold_as_test(int(config.fold))
    if config.holdout:
        data = data.with_holdout(int(config.holdout))
    return data


@dataclass
class RunResult:
    method: Any
    split: Split
    metrics: dict[str, Any]
    test_ids: list[str]
    predictions: np.ndarray
    truth: np.ndarray


def split_of(config: RunConfig, data: FeatureSet) -> Split:
    """The labeled / unlabeled / validation / test draw of ``config`` on ``data``."""
    return make_split(data, config.label_ratio, config.seed, config.val_fraction,
                      shift=config.shift)


def training_sets(data: FeatureSet, split: Split, method) -> tuple:
    """(labeled, unlabeled, validation) for ``method.fit``.

    A method that selects nothing on the validation slice trains on it: its labels would
    otherwise be held out for no use.
    """
    labeled_ids, validation = list(split.labeled), None
    if split.validation:
        if method.uses_validation:
            validation = data.select_ids(split.validation)
        else:
            labeled_ids += split.validation
    return (data.select_ids(labeled_ids),
            data.select_ids(split.unlabeled) if split.unlabeled else None, validation)


def config_fingerprint(config: RunConfig) -> str:
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_training(config: RunConfig, data: FeatureSet | None = None,
                 state_dir: str | Path | None = None) -> RunResult:
    """Train ``config.method`` on the split of ``config`` and evaluate it on the test split.

    With ``state_dir``, deep methods save resumable training state there and resume from it.
    """
    check_device(config.device)
    data = load_data(config) if data is None else data
    split = split_of(config, data)
    method = create(config.method, config.options, seed=config.seed * 1000 + config.init,
                    device=config.device)
    if state_dir is not None:
        method.state_dir = Path(state_dir)
        method.state_fingerprint = config_fingerprint(config)
    started = time.perf_counter()
    method.fit(*training_sets(data, split, method))
    seconds = time.perf_counter() - started
    # the test split is read here, once, after training and model selection
    test = data.select_ids(split.test)
    if len(test) == 0:
        raise S4AQAError(f"{data.name}: no test videos to evaluate on")
    predictions = method.predict(test)
    metrics = evaluate(predictions, test)
    if split.validation:
        validation = data.select_ids(split.validation)
        metrics["val_spearman"] = evaluate(method.predict(validation), validation,
                                           prefix="val")["val_spearman"]
    metrics.update({"method": config.method, "label_ratio": config.label_ratio,
                    "seed": config.seed, "init": config.init, "train_seconds": seconds,
                    "n_labeled": len(split.labeled), "n_unlabeled": len(split.unlabeled),
                    "n_validation": len(split.validation)})
    return RunResult(method, split, metrics, split.test, predictions, test.scores)


def run_training_group(configs: list[RunConfig], data: FeatureSet | None = None) -> list[RunResult]:
    """Train runs that differ only by seed (or init) as one batched model; see engine.grouped.

    Falls back to one run after another where the method cannot be grouped.
    """
    from s4aqa.engine.grouped import can_group, train_group

    if not configs:
        return []
    for config in configs:
        check_device(config.device)
    data = load_data(configs[0]) if data is None else data
    splits = [split_of(c, data) for c in configs]
    methods = [create(c.method, c.options, seed=c.seed * 1000 + c.init, device=c.device)
               for c in configs]
    if len(configs) == 1 or not can_group(methods):
        return [run_training(c, data) for c in configs]
    parts = [training_sets(data, s, m) for s, m in zip(splits, methods)]
    started = time.perf_counter()
    train_group(methods, *map(list, zip(*parts)))
    seconds = (time.perf_counter() - started) / len(configs)
    results = []
    for config, split, method in zip(configs, splits, methods):
        test = data.select_ids(split.test)
        predictions = method.predict(test)
        metrics = evaluate(predictions, test)
        metrics.update({"method": config.method, "label_ratio": config.label_ratio,
                        "seed": config.seed, "init": config.init, "train_seconds": seconds,
                        "n_labeled": len(split.labeled), "n_unlabeled": len(split.unlabeled),
                        "n_validation": len(split.validation), "grouped": len(configs)})
        results.append(RunResult(method, split, metrics, split.test, predictions, test.scores))
    return results


def predictions_csv(ids: list[str], predictions: np.ndarray, truth: np.ndarray | None = None) -> str:
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "predicted"] + (["score"] if truth is not None else []))
    for i, vid in enumerate(ids):
        row = [vid, f"{predictions[i]:.6f}"]
        if truth is not None:
            row.append("" if np.isnan(truth[i]) else f"{truth[i]:.6f}")
        writer.writerow(row)
    return buffer.getvalue()


def write_run(out: str | Path, config: RunConfig, result: RunResult) -> None:
    """Write a finished run; metrics.json goes last and marks the run complete."""
    out = Path(out)
    result.split.save(out / "split.json")
    io.write_json(out / "config.json", config.to_dict())
    io.write_text(out / "predictions.csv",
                  predictions_csv(result.test_ids, result.predictions, result.truth))
    io.write_json(out / "history.json", result.method.history)
    save_checkpoint(out, result.method, config.to_dict())
    io.write_json(out / "metrics.json", result.metrics)
    (out / STATE_FILE).unlink(missing_ok=True)  # the run is complete: no state to resume
