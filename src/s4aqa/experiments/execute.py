"""One run of a reproduction, or a group of runs that differ only by seed, in whatever process
a backend gives it: read the data (once per process, or take it from the backend), check it is
the data the reproduction read, train, and save the run's record in the cache (or hand it back
for the caller to save: the Ray backend's driver does, so the nodes need no shared disk). Every
outcome is recorded: a finished run (*ok*), a method that cannot use the data (*skipped*), a
user-fixable problem (*failed*, with its message) or a bug (*failed*, internal, with its
traceback)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

import s4aqa
from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError, Unsupported
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import EMBEDDING, RunSpec
from s4aqa.runs.identity import key_fields
from s4aqa.runs.data import data_fingerprint, load_data
from s4aqa.runs.prepare import prepare
from s4aqa.runs.run import run_group, run_training


def new_record(spec: RunSpec) -> dict[str, Any]:
    """A run's record before it runs: its key, spec and what the key is made of."""
    config = spec.config
    return {
        "key": spec.key, "spec": spec.to_dict(),
        "key_fields": key_fields(config, spec.data_fingerprint),
        "device": config.device, "extras": [], "metrics": {}, "seconds": None,
        "versions": {"s4aqa": s4aqa.__version__, "torch": torch.__version__,
                     "numpy": np.__version__},
    }


def _fill_record(record: dict[str, Any], spec: RunSpec, data, result,
                 seconds: float) -> dict[str, np.ndarray]:
    """Put a finished run's metrics and predictions in its record; returns its extra arrays."""
    record["seconds"] = seconds
    record["metrics"] = result.metrics
    record["test_ids"] = list(result.test_ids)
    record["predictions"] = [float(p) for p in result.predictions]
    arrays: dict[str, np.ndarray] = {}
    if EMBEDDING in spec.extras:
        ids = result.split.unlabeled
        unlabeled = data.select_ids(ids)
        embedding = (result.method.embed(unlabeled) if len(ids)
                     else np.zeros((0, 0), np.float32))
        arrays = {"embedding": np.asarray(embedding, np.float32),
                  "score": np.asarray(unlabeled.scores, np.float64),
                  "ids": np.asarray(ids, dtype=str)}
        record["extras"] = [EMBEDDING]
    record.update(status=run_cache.OK, message="")
    return arrays


OUTCOME = "outcome"  # a summary's unsaved record and arrays, when no directory was given


def _save(record: dict[str, Any], arrays: dict[str, np.ndarray],
          directory: str | None) -> dict[str, Any]:
    """Save a finished run in the cache of ``directory`` and return its summary; with no
    directory, the summary carries the record and arrays (OUTCOME) for ``save_outcome``."""
    record["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    summary = {"key": record["key"], "status": record["status"],
               "message": record.get("message", ""), "internal": bool(record.get("internal")),
               "test_spearman": record["metrics"].get("test_spearman")}
    if directory is None:
        summary[OUTCOME] = (record, arrays)
    else:
        run_cache.RunCache(directory).save(record, arrays or None)
    return summary


def save_outcome(summary: dict[str, Any], cache: run_cache.RunCache) -> dict[str, Any]:
    """Save the record a run handed back (``directory`` None) in ``cache``, in the same atomic
    way as a run that saves itself; returns the summary without it."""
    summary = dict(summary)
    record, arrays = summary.pop(OUTCOME)
    cache.save(record, arrays or None)
    return summary


def _failed(record: dict[str, Any], exc: Exception) -> None:
    if isinstance(exc, S4AQAError):
        record.update(status=run_cache.FAILED, message=str(exc), internal=False)
    else:  # a bug somewhere: record it, keep the reproduction going
        record.update(status=run_cache.FAILED, internal=True,
                      message=f"internal error: {type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())


# the datasets read in this process (``runs.data.read_data``'s cache), for the runs of one
# reproduction: its driver empties it at the start, so the data is read afresh
DATASETS: dict = {}


def datasets_read() -> dict:
    """The datasets read in this process, by the key ``read_data`` files them under."""
    return {key: value for key, value in DATASETS.items() if isinstance(value, FeatureSet)}


def use_datasets(token: str, fetch: Callable[[], Mapping]) -> bool:
    """Serve the runs of this process from the datasets ``fetch`` gives (``datasets_read`` of
    the process that expanded the reproduction) instead of reading the disk. Fetched once per
    ``token``: a worker process reused by a later reproduction starts afresh. The fingerprint
    is computed here again, so ``check_fingerprint`` still compares what the runs read with
    what the reproduction read. Returns whether it fetched."""
    marker = ("datasets from", token)
    if marker in DATASETS:
        return False
    datasets = fetch()
    DATASETS.clear()
    DATASETS.update(datasets)
    DATASETS[marker] = True
    return True


def check_fingerprint(spec: RunSpec) -> None:
    """A run is keyed on the data its reproduction read; refuse to run on other data."""
    if spec.data_fingerprint and data_fingerprint(spec.config, DATASETS) != spec.data_fingerprint:
        raise S4AQAError("the data changed while the reproduction was running; run the same "
                         "command again to rerun on the new data")


def execute_run(spec_values: Mapping[str, Any], directory: str | None) -> dict[str, Any]:
    """Run one spec and save its record under ``directory``; returns a short summary (with no
    directory, the summary carries the record for the caller to save: ``save_outcome``).

    S4AQAError and other exceptions become a failed record; KeyboardInterrupt propagates.
    """
    spec = RunSpec.from_dict(spec_values)
    config = spec.config
    record = new_record(spec)
    arrays: dict[str, np.ndarray] = {}
    try:
        data = load_data(config, DATASETS)
        check_fingerprint(spec)
        started = time.perf_counter()
        result = run_training(config, data)  # checks what the method needs before training
        arrays = _fill_record(record, spec, data, result, time.perf_counter() - started)
    except Unsupported as exc:  # the method cannot use this data: skipped, not failed
        record.update(status=run_cache.SKIPPED, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - any error is a failed run's record (a bug:
        _failed(record, exc)  # internal, with its traceback, and a non-zero exit at the end)
        arrays = {}
    return _save(record, arrays, directory)


def execute_group(group_values: Sequence[Mapping[str, Any]],
                  directory: str | None) -> list[dict[str, Any]]:
    """Runs that differ only by seed, trained together as one stacked model (training.stacked).

    Runs to skip, and groups that cannot be batched, go one by one through ``execute_run``.
    """
    specs = [RunSpec.from_dict(v) for v in group_values]
    configs = [spec.config for spec in specs]
    runnable = []
    try:
        data = load_data(configs[0], DATASETS)
        check_fingerprint(specs[0])
        for i, config in enumerate(configs):
            with contextlib.suppress(Unsupported):
                prepare(config, data)
                runnable.append(i)
    except Exception:  # noqa: BLE001 - the single runs below meet the same error again and
        runnable = []  # each records it in its own record, with its traceback
    if len(runnable) < 2:
        return [execute_run(v, directory) for v in group_values]
    summaries = [execute_run(group_values[i], directory)
                 for i in range(len(specs)) if i not in runnable]
    records = [new_record(specs[i]) for i in runnable]
    started = time.perf_counter()
    try:
        results = run_group([configs[i] for i in runnable], data)
    except Exception as exc:  # noqa: BLE001 - every run of the group is recorded as failed
        for record in records:
            _failed(record, exc)
        return summaries + [_save(record, {}, directory) for record in records]
    seconds = (time.perf_counter() - started) / len(runnable)
    for i, record, result in zip(runnable, records, results):
        try:
            arrays = _fill_record(record, specs[i], data, result, seconds)
        except Exception as exc:  # noqa: BLE001 - this run's record, as execute_run's
            _failed(record, exc)
            arrays = {}
        summaries.append(_save(record, arrays, directory))
    return summaries
