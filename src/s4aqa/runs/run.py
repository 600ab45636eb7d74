"""One run end to end: data, split, method, training, predictions, metrics, run folder.

``prepare`` makes every check that can be made before training (device, data, split, method,
options, what the method needs of the data); ``run_training`` trains and evaluates one run,
``run_group`` several runs that differ only by seed as one stacked model; ``write_run``
writes a run folder. The test split is read once, after training.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import importlib.metadata
import io as _io
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from s4aqa import io
from s4aqa.config import RunConfig
from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import load_dataset
from s4aqa.data.splits import Split, make_split
from s4aqa.device import resolve_device
from s4aqa.errors import S4AQAError, Unsupported
from s4aqa.methods.intervals import fit_intervals, interval_metrics, too_few
from s4aqa.methods.registry import create, method_options
from s4aqa.runs.checkpoint import save_checkpoint
from s4aqa.runs.identity import run_key
from s4aqa.training.hooks import STATE_FILE, Checkpoint, Progress
from s4aqa.methods.base import Method
from s4aqa.methods.deep import DeepMethod
from s4aqa.training.loop import Trainer
from s4aqa.training.metrics import evaluate
from s4aqa.threads import available_cores, check_threads, limited_threads
from s4aqa.training.stacked import can_group

# fewer than this many labeled (or scored test) videos: results a user should be warned about
FEW_VIDEOS = 5


def read_data(config: RunConfig, cache: dict | None = None) -> FeatureSet:
    """The dataset ``config`` reads, as read (no fold or holdout applied). ``cache``: a dict
    that keeps what was read for later calls with the same reading options (a reproduction
    reads its dataset once per process; a single run reads it afresh)."""
    key = (config.dataset, config.root, config.target, config.task, config.segments,
           config.features)
    if cache is not None and key in cache:
        return cache[key]
    data = load_dataset(config.dataset, config.root, target=config.target, task=config.task,
                        segments=config.segments, features=config.features)
    if cache is not None:
        cache[key] = data
    return data


def data_fingerprint(config: RunConfig, cache: dict | None = None) -> str:
    """The fingerprint of the dataset ``config`` reads, as read with every task (its task, fold
    and holdout are settings of the run); kept in ``cache`` beside the data."""
    whole = dataclasses.replace(config, task=None)
    data = read_data(whole, cache)
    if cache is None:
        return data.fingerprint()
    return cache.setdefault(("fingerprint", id(data)), data.fingerprint())


def load_data(config: RunConfig, cache: dict | None = None) -> FeatureSet:
    """The dataset of ``config``, with its fold made the test split or its holdout applied."""
    data = read_data(config, cache)
    if config.fold is not None:
        data = data.with_fold_as_test(int(config.fold))
    if config.holdout:
        data = data.with_holdout(int(config.holdout))
    return data


@dataclass
class RunResult:
    config: RunConfig  # as run: options typed, the target the reader chose
    method: Any
    split: Split
    metrics: dict[str, Any]
    test_ids: list[str]
    predictions: np.ndarray
    truth: np.ndarray
    # prediction intervals (methods.intervals): the state, and the test videos' bounds
    intervals: Any = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def split_of(config: RunConfig, data: FeatureSet, need_validation: bool = True) -> Split:
    """The labeled / unlabeled / validation / test draw of ``config`` on ``data``."""
    return make_split(data, config.label_ratio, config.seed, config.val_fraction,
                      shift=config.shift, need_validation=need_validation,
                      unlabeled_share=config.unlabeled_share)


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


def no_test_videos(data: FeatureSet) -> S4AQAError:
    return S4AQAError(
        f"{data.name}: no test videos to evaluate on; mark some as test (for a folder dataset, a "
        "split column in scores.csv with train or test per video) or pass --holdout N to "
        "evaluate on N training videos held out")


def prepare(config: RunConfig, data: FeatureSet | None = None):
    """Everything a run checks before its first training step: device, data, split (ratio,
    shift, groups, test videos), method and options, and what the method needs of the data.

    Returns (data, split, method, (labeled, unlabeled, validation)).
    """
    resolve_device(config.device)
    check_threads(config.threads)
    # an unknown method or option is said before anything about the data
    method_options(config.method, config.options)
    data = load_data(config) if data is None else data
    if not np.any(data.split == "test"):
        raise no_test_videos(data)
    method = create(config.method, config.options, seed=config.method_seed,
                    device=config.device)
    split = split_of(config, data, need_validation=method.uses_validation)
    if not split.test:  # a --shift may leave out the groups of every test video
        raise no_test_videos(data)
    sets = training_sets(data, split, method)
    unmet = method.unmet_needs(sets[0], sets[1])
    if unmet and sets[1] is None and config.unlabeled_share < 1.0:
        unmet += (f" (--unlabeled-share {config.unlabeled_share:g} kept none of them: raise it, "
                  "or --set unlabeled=false for the method on the labeled videos only)")
    if unmet:
        raise Unsupported(unmet)
    return data, split, method, sets


def as_run(config: RunConfig, data: FeatureSet) -> RunConfig:
    """``config`` as it runs on ``data``: options typed by the method (``--set neighbours=3``
    is 3, as a YAML file gives it) and the target the reader chose where none was given, so a
    run's record says what was trained and does not depend on where a setting came from."""
    options = method_options(config.method, config.options)
    return dataclasses.replace(config, target=config.target or data.target,
                               options={k: getattr(options, k) for k in config.options})


def run_training(config: RunConfig, data: FeatureSet | None = None,
                 state_dir: str | Path | None = None, fresh: bool = False,
                 notify: Callable[[str], None] | None = None,
                 progress: bool | None = False) -> RunResult:
    """Train ``config.method`` on the split of ``config`` and evaluate it on the test split.

    With ``state_dir``, deep methods save resumable training state there and resume from it
    when it was saved by a run of the same settings on the same data (``fresh``: never);
    ``notify`` is told in one line why a saved state was not used. ``progress``: a progress
    bar (None: on a terminal only).
    """
    data, split, method, sets = prepare(config, data)
    config = as_run(config, data)
    if notify is not None:
        for line in caveats(data, split, sets):
            notify(line)
        few = too_few(len(sets[0]), config.coverage)  # the intervals' residuals
        if few:
            notify(few)
    hooks = []
    if state_dir is not None:
        if fresh:
            (Path(state_dir) / STATE_FILE).unlink(missing_ok=True)
        key = {"settings": run_key(config) + "/" + config.device, "data": data.fingerprint()}
        hooks.append(Checkpoint(state_dir, key, notify=notify))
    if progress is not False:
        hooks.append(Progress(config.method, enabled=progress))
    started = time.perf_counter()
    with limited_threads(config.threads):
        train_method(method, sets, hooks)
        seconds = time.perf_counter() - started
        return _evaluated(config, data, split, method, sets, {"train_seconds": seconds})


def train_method(method: Method, sets, hooks=()) -> None:
    """How any method trains in a run: a deep method through its lifecycle with a Trainer
    that holds the run's hooks (saving and resuming, progress), any other by its ``fit``."""
    if isinstance(method, DeepMethod):
        method.fit(*sets, trainer=Trainer(hooks))
    else:
        method.fit(*sets)


def caveats(data: FeatureSet, split: Split, sets) -> list[str]:
    """Warnings, one line each, about numbers that so few videos cannot support."""
    lines = []
    n_labeled = len(sets[0])
    if n_labeled < FEW_VIDEOS:
        lines.append(f"warning: only {n_labeled} labeled video(s) to train on; its scores will "
                     "be unreliable: raise --label-ratio or add scored videos")
    scored = int(np.sum(~np.isnan(data.select_ids(split.test).scores)))
    if scored < FEW_VIDEOS:
        lines.append(f"warning: only {scored} scored test video(s); a Spearman over so few is "
                     "mostly chance (with 2 it is always -1 or +1)")
    return lines


def _evaluated(config, data, split, method, sets, extra: dict[str, Any]) -> RunResult:
    # the test split is read here, once, after training and model selection
    test = data.select_ids(split.test)
    predictions = method.predict(test)
    metrics = evaluate(predictions, test)
    metrics.update(run_facts(config, sets, method))
    # prediction intervals from the labeled videos only (methods.intervals)
    intervals = fit_intervals(method, sets[0], config.coverage)
    low, high = intervals.bounds(predictions)
    metrics.update(interval_metrics(low, high, test))
    metrics.update({"coverage": intervals.coverage, "interval_source": intervals.source,
                    "interval_residuals": intervals.n})
    metrics.update(extra)
    return RunResult(config, method, split, metrics, split.test, predictions, test.scores,
                     intervals, low, high)


def run_facts(config: RunConfig, sets, method) -> dict[str, Any]:
    """What a run's metrics say of it besides the test metrics: the videos actually trained on
    and, where the method held a validation slice out, its Spearman there."""
    labeled, unlabeled, validation = sets
    facts = {"method": config.method, "label_ratio": config.label_ratio, "seed": config.seed,
             "init": config.init, "n_labeled": len(labeled),
             "n_unlabeled": len(unlabeled) if unlabeled is not None and method.uses_unlabeled else 0,
             "n_validation": len(validation) if validation is not None else 0}
    if validation is not None and len(validation):
        facts["val_spearman"] = evaluate(method.predict(validation), validation,
                                         prefix="val")["val_spearman"]
    return facts


def run_group(configs: list[RunConfig], data: FeatureSet | None = None) -> list[RunResult]:
    """Train runs that differ only by seed (or init) as one stacked model
    (``training.stacked``); falls back to one run after another where the method cannot be
    grouped."""
    if not configs:
        return []
    prepared = [prepare(c, data) for c in configs]
    methods = [p[2] for p in prepared]
    if len(configs) == 1 or not can_group(methods):
        return [run_training(c, data) for c in configs]
    data = prepared[0][0]
    # the lifecycle of each method, with one Trainer stacking every member of every run
    networks, network_sets, trained = [], [], []
    for method, (labeled, unlabeled, validation) in zip(methods, (p[3] for p in prepared)):
        unlabeled = method.unlabeled_for(unlabeled)
        networks += method.begin(labeled, unlabeled, validation, compile=False)
        network_sets += [(labeled, unlabeled, validation)] * len(method.members)
        trained.append((labeled, unlabeled))
    started = time.perf_counter()
    with limited_threads(configs[0].threads):
        Trainer(stack=True).train(networks, *map(list, zip(*network_sets)))
        for method, (labeled, unlabeled) in zip(methods, trained):
            method.end(labeled, unlabeled)
        seconds = (time.perf_counter() - started) / len(configs)
        return [_evaluated(as_run(config, data), data, split, method, sets,
                           {"train_seconds": seconds, "grouped": len(configs)})
                for config, (_, split, method, sets) in zip(configs, prepared)]


def predictions_csv(ids: list[str], predictions: np.ndarray, truth: np.ndarray | None = None,
                    split: np.ndarray | None = None, low: np.ndarray | None = None,
                    high: np.ndarray | None = None) -> str:
    """id,predicted[,score][,split][,low,high] lines (a score left empty where it is not
    known; low and high: the prediction interval, inf where infinite; last, so that readers
    of the earlier columns by position are not moved)."""
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    bands = low is not None and high is not None
    writer.writerow(["id", "predicted"] + (["score"] if truth is not None else [])
                    + (["split"] if split is not None else [])
                    + (["low", "high"] if bands else []))
    for i, vid in enumerate(ids):
        row = [vid, f"{predictions[i]:.6f}"]
        if truth is not None:
            row.append("" if np.isnan(truth[i]) else f"{truth[i]:.6f}")
        if split is not None:
            row.append(str(split[i]))
        if bands:
            row += [f"{low[i]:.6f}", f"{high[i]:.6f}"]
        writer.writerow(row)
    return buffer.getvalue()


def check_run_folder(out: str | Path, config: RunConfig,
                     notify: Callable[[str], None] | None = None) -> None:
    """Before training: ``out`` must be a folder (or not exist yet); a finished run in it is
    replaced, and ``notify`` says so."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise S4AQAError(f"--out {out} is a file; name a folder for the run (new or a run "
                         "folder to replace)")
    if notify is None or not (out / "metrics.json").is_file():
        return
    try:
        method = json.loads((out / "config.json").read_text()).get("method")
    except (OSError, ValueError, AttributeError):
        method = None
    what = f"'{method}' run" if method else "run"
    notify(f"{out} holds a finished {what}; it is replaced by this '{config.method}' run "
           "(use another --out to keep it)")


def environment(config: RunConfig) -> dict[str, Any]:
    """What a run's numbers were made with: versions, threads, device, machine and date."""
    versions = {"python": platform.python_version()}
    for package in ("s4aqa", "torch", "numpy", "scipy", "scikit-learn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"versions": versions, "threads": int(config.threads), "device": config.device,
            "cores": available_cores(), "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def write_run(out: str | Path, result: RunResult) -> None:
    """Write a finished run; metrics.json goes last and marks the run complete. The config
    written is the one the run ran with (``result.config``)."""
    out = Path(out)
    config = result.config
    result.split.save(out / "split.json")
    io.write_json(out / "config.json", config.to_dict())
    io.write_json(out / "environment.json", environment(config))
    io.write_text(out / "predictions.csv",
                  predictions_csv(result.test_ids, result.predictions, result.truth,
                                  low=result.low, high=result.high))
    io.write_json(out / "history.json", result.method.history)
    save_checkpoint(out, result.method, config.to_dict(),
                    intervals=result.intervals.to_json() if result.intervals is not None
                    else None)
    io.write_json(out / "metrics.json", result.metrics)
    (out / STATE_FILE).unlink(missing_ok=True)  # the run is complete: no state to resume
