"""A run folder: what ``train`` writes (split, config, environment, predictions, history,
checkpoint, metrics last) and what it checks of ``--out`` before training."""

from __future__ import annotations

import csv
import datetime
import importlib.metadata
import io as _io
import json
import platform
from pathlib import Path
from typing import Any, Callable

import numpy as np

from s4aqa import io
from s4aqa.config import RunConfig
from s4aqa.errors import S4AQAError
from s4aqa.runs.checkpoint import META, WEIGHTS, save_checkpoint
from s4aqa.runs.run import RunResult
from s4aqa.threads import available_cores
from s4aqa.training.resume import STATE_FILE

# what a run folder holds: a folder holding only these (or nothing) is a run folder
RUN_FILES = ("split.json", "config.json", "environment.json", "predictions.csv",
             "history.json", WEIGHTS, META, "metrics.json", STATE_FILE)


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
    replaced, and ``notify`` says so, as it says when the folder holds files that are not a
    run's (they are left alone, the run's files written beside them)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise S4AQAError(f"--out {out} is a file; name a folder for the run (new or a run "
                         "folder to replace)")
    if notify is None or not out.is_dir():
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in RUN_FILES)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        notify(f"--out {out} holds files that are not a run's ({shown}); the run's files are "
               "written beside them (use an empty or new folder to keep runs apart)")
    if not (out / "metrics.json").is_file():
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
    written is the one the run ran with (``result.config``), with the run's video counts and
    where they came from beside it (``videos``, also in split.json)."""
    out = Path(out)
    config = result.config
    result.split.save(out / "split.json")
    io.write_json(out / "config.json", {**config.to_dict(),
                                        **({"videos": result.counts} if result.counts else {})})
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
