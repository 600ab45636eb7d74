"""`s4aqa reproduce`: expand a protocol, skip the cached runs, run the rest, write the report.

Runs are independent: with ``workers`` > 1 they go to that many worker processes
(``concurrent.futures.ProcessPoolExecutor``, spawn start method); with one worker they run in
this process. Every run uses one torch thread: the models are small, so parallelism comes from
workers, and several threads per run on a busy machine oversubscribe the cores (a run measured
3x slower with 2 threads than with 1 on 2 shared cores). Each worker writes its run's record as soon as the run
finishes, so an interruption loses only the runs in flight; calling again resumes. A run that
raises S4AQAError (a user-fixable problem: a method that cannot handle the dataset, a label
ratio too small for a validation slice ...) is recorded as *failed* with its message and shown
in the report; any other exception is recorded the same way with its traceback and makes the
command exit non-zero. Failed runs are retried on the next call; skipped runs are not.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import multiprocessing
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

import s4aqa
from s4aqa.config import RunConfig
from s4aqa.errors import S4AQAError, Unsupported
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import EMBEDDING, DatasetInfo, RunSpec, expand, get_protocol


@dataclass
class ReproduceSummary:
    protocol: str
    dataset: str
    total: int
    cached: int
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    internal_errors: int = 0
    missing_methods: list[str] = field(default_factory=list)
    report: Path | None = None

    def line(self) -> str:
        text = (f"{self.protocol} on {self.dataset}: {self.total} runs ({self.cached} cached, "
                f"{self.ran} run now; {self.failed} failed, {self.skipped} skipped)")
        if self.report is not None:
            text += f"; report: {self.report}"
        return text


# ---- one run (in a worker or in this process) --------------------------------------------
def _worker_init() -> None:
    torch.set_num_threads(1)


def _new_record(spec: RunSpec, config) -> tuple[str, dict[str, Any]]:
    key = spec.key
    return key, {
        "key": key, "spec": spec.to_dict(),
        "key_fields": run_cache.key_fields(config, spec.data_fingerprint),
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


def _save(record: dict[str, Any], arrays: dict[str, np.ndarray], directory: str) -> dict[str, Any]:
    record["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    run_cache.RunCache(directory).save(record, arrays or None)
    return {"key": record["key"], "status": record["status"],
            "message": record.get("message", ""), "internal": bool(record.get("internal")),
            "test_spearman": record["metrics"].get("test_spearman")}


def _failed(record: dict[str, Any], exc: Exception) -> None:
    if isinstance(exc, S4AQAError):
        record.update(status=run_cache.FAILED, message=str(exc), internal=False)
    else:  # a bug somewhere: record it, keep the reproduction going
        record.update(status=run_cache.FAILED, internal=True,
                      message=f"internal error: {type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())


# the datasets read in this process, for the runs of one reproduction (emptied at its start)
_DATA: dict = {}


def check_fingerprint(spec: RunSpec) -> None:
    """A run is keyed on the data its reproduction read; refuse to run on other data."""
    from s4aqa.engine.run import data_fingerprint

    if spec.data_fingerprint and data_fingerprint(spec.config(), _DATA) != spec.data_fingerprint:
        raise S4AQAError("the data changed while the reproduction was running; run the same "
                         "command again to rerun on the new data")


def execute_run(spec_values: Mapping[str, Any], directory: str) -> dict[str, Any]:
    """Run one spec and save its record under ``directory``; returns a short summary.

    S4AQAError and other exceptions become a failed record; KeyboardInterrupt propagates.
    """
    from s4aqa.engine.run import load_data, run_training

    spec = RunSpec.from_dict(spec_values)
    config = spec.config()
    key, record = _new_record(spec, config)
    arrays: dict[str, np.ndarray] = {}
    try:
        data = load_data(config, _DATA)
        check_fingerprint(spec)
        started = time.perf_counter()
        result = run_training(config, data)  # checks what the method needs before training
        arrays = _fill_record(record, spec, data, result, time.perf_counter() - started)
    except Unsupported as exc:  # the method cannot use this data: skipped, not failed
        record.update(status=run_cache.SKIPPED, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded as a failed run
        _failed(record, exc)
        arrays = {}
    return _save(record, arrays, directory)


def execute_group(group_values: Sequence[Mapping[str, Any]], directory: str) -> list[dict[str, Any]]:
    """Runs that differ only by seed, trained together as one batched model (engine.grouped).

    Runs to skip, and groups that cannot be batched, go one by one through ``execute_run``.
    """
    from s4aqa.engine.run import load_data, prepare, run_training_group

    specs = [RunSpec.from_dict(v) for v in group_values]
    configs = [spec.config() for spec in specs]
    runnable = []
    try:
        data = load_data(configs[0], _DATA)
        check_fingerprint(specs[0])
        for i, config in enumerate(configs):
            with contextlib.suppress(Unsupported):
                prepare(config, data)
                runnable.append(i)
    except Exception:  # noqa: BLE001 - the single runs record the error
        runnable = []
    if len(runnable) < 2:
        return [execute_run(v, directory) for v in group_values]
    summaries = [execute_run(group_values[i], directory)
                 for i in range(len(specs)) if i not in runnable]
    records = [_new_record(specs[i], configs[i])[1] for i in runnable]
    started = time.perf_counter()
    try:
        results = run_training_group([configs[i] for i in runnable], data)
    except Exception as exc:  # noqa: BLE001 - every run of the group is recorded as failed
        for record in records:
            _failed(record, exc)
        return summaries + [_save(record, {}, directory) for record in records]
    seconds = (time.perf_counter() - started) / len(runnable)
    for i, record, result in zip(runnable, records, results):
        try:
            arrays = _fill_record(record, specs[i], data, result, seconds)
        except Exception as exc:  # noqa: BLE001
            _failed(record, exc)
            arrays = {}
        summaries.append(_save(record, arrays, directory))
    return summaries


def group_by_seed(specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """Specs equal but for their seed, in groups (order of first appearance kept)."""
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        values = spec.to_dict()
        values.pop("seed", None)
        groups.setdefault(repr(sorted(values.items(), key=lambda kv: kv[0])), []).append(spec)
    return list(groups.values())


# ---- many runs -------------------------------------------------------------------------------
def run_specs(specs: Sequence[RunSpec], directory: str | os.PathLike, workers: int = 1,
              progress: bool = True, desc: str = "runs",
              group_seeds: bool = False) -> list[dict[str, Any]]:
    """Run ``specs`` (none of them cached) and return their summaries as they finish.

    ``group_seeds`` trains the runs that differ only by seed as one batched model each.
    """
    directory = str(directory)
    workers = max(1, min(int(workers), len(specs) or 1))
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(specs), desc=desc, unit="run", disable=not progress or not specs,
               file=sys.stderr,
               dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} runs done "
                          "[{elapsed}<{remaining}{postfix}]")

    def finished(summaries: list[dict[str, Any]]) -> None:
        results.extend(summaries)
        failed = sum(r["status"] == run_cache.FAILED for r in results)
        bar.set_postfix_str(f"{len(specs) - len(results)} left, {failed} failed", refresh=False)
        bar.update(len(summaries))

    groups = group_by_seed(specs) if group_seeds else [[spec] for spec in specs]
    jobs = [[spec.to_dict() for spec in group] for group in groups]

    bar.set_postfix_str(f"{len(specs)} left, 0 failed", refresh=False)
    try:
        if workers == 1:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # as in a worker: same speed, no oversubscription
            try:
                for job in jobs:
                    finished(execute_group(job, directory))
            finally:
                torch.set_num_threads(threads)
        else:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                       initializer=_worker_init)
            try:
                futures = [pool.submit(execute_group, job, directory) for job in jobs]
                for future in as_completed(futures):
                    finished(future.result())
            except BrokenProcessPool:
                raise S4AQAError(
                    "a worker process died (out of memory?); the finished runs are saved: run "
                    "the same command again to resume, with fewer --workers if it repeats"
                ) from None
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
    finally:
        bar.close()
    return results


def dataset_info(dataset: str, root, target, segments, features) -> tuple[DatasetInfo, str]:
    """Load the dataset once here: checks --root early, gives its groups and folds and the
    fingerprint of what was read."""
    from s4aqa.engine.run import data_fingerprint, load_data

    config = RunConfig(dataset=dataset, root=None if root is None else str(root),
                       target=target, segments=segments,
                       features=None if features is None else str(features))
    return DatasetInfo.of(load_data(config, _DATA)), data_fingerprint(config, _DATA)


def preflight(runs: Sequence[RunSpec]) -> None:
    """What can be checked before any run, on the first seed of every cell and method variant:
    the split (label ratio, validation slice, shift, test videos), the method and its options.
    A method that cannot use the data (Unsupported) is left to be recorded as skipped."""
    from s4aqa.engine.run import load_data, prepare

    seen = set()
    for spec in runs:
        cell = (spec.target, spec.task, spec.fold, spec.label_ratio, spec.holdout, spec.shift,
                spec.val_fraction, spec.method, json.dumps(spec.options, sort_keys=True))
        if cell in seen:
            continue
        seen.add(cell)
        config = spec.config()
        with contextlib.suppress(Unsupported):
            prepare(config, load_data(config, _DATA))


def changed_data(out: Path, protocol: str, dataset: str, fingerprints) -> str:
    """Which targets' data differ from what the last call of this protocol in ``out`` read."""
    path = run_cache.manifest_path(out, protocol, dataset)
    try:
        previous = json.loads(path.read_text()).get("data") or {}
    except (OSError, ValueError, AttributeError):
        return ""
    changed = [str(t) for t, f in fingerprints.items()
               if str(t) in previous and previous[str(t)] != f]
    return ", ".join("target " + t if t != "None" else "its data" for t in changed)


def reproduce(protocol: str, *, out: str | os.PathLike, dataset: str = "synthetic",
              root: str | os.PathLike | None = None, targets: Sequence[str] | None = None,
              seeds: int = 3, inits: int = 1, methods: Sequence[str] | None = None,
              options: Mapping[str, Any] | None = None, ratios: Sequence[float] | None = None,
              workers: int = 1, device: str = "cpu", val_fraction: float = 0.2,
              segments: int | None = None, features: str | os.PathLike | None = None,
              progress: bool = True, report: bool = True,
              group_seeds: bool = False, holdout: int = 0,
              shift: str | None = None, fresh: bool = False) -> ReproduceSummary:
    """Reproduce ``protocol`` on ``dataset`` into ``out``; see the module docstring."""
    from s4aqa.engine.run import check_device

    check_device(device)
    _DATA.clear()  # read the data afresh: it may have changed since an earlier call
    spec = get_protocol(protocol)
    if int(workers) < 1:
        raise S4AQAError(f"--workers {workers}: use at least one worker")
    targets = list(targets) if targets else None
    from s4aqa.experiments.protocols import DATASET_TARGETS

    # every target is loaded once here, so a wrong --root or --target stops before any run
    loaded = {target: dataset_info(dataset, root, target, segments, features)
              for target in (targets or DATASET_TARGETS.get(dataset, (None,)))}
    info = next(iter(loaded.values()))[0]
    fingerprints = {target: fingerprint for target, (_, fingerprint) in loaded.items()}
    runs, missing = expand(spec, dataset=dataset, info=info, seeds=seeds, root=root,
                           targets=targets, inits=inits, methods=methods, options=options,
                           ratios=ratios, val_fraction=val_fraction, segments=segments,
                           features=features, device=device, holdout=holdout, shift=shift,
                           fingerprints=fingerprints)
    preflight(runs)
    out = Path(out)
    cache = run_cache.RunCache(out)
    changed = changed_data(out, spec.name, dataset, fingerprints)
    if changed:
        print(f"s4aqa: the data differs from the last `reproduce {spec.name}` in {out} "
              f"({changed}): its cached runs are not used", file=sys.stderr)
    run_cache.write_manifest(out, {
        "protocol": spec.name, "dataset": dataset, "root": runs[0].root if runs else None,
        "targets": sorted({str(r.target) for r in runs}), "seeds": int(seeds),
        "inits": int(inits), "methods": list(dict.fromkeys(r.method for r in runs)),
        "missing_methods": missing, "options": dict(options or {}),
        "ratios": sorted({r.label_ratio for r in runs}), "groups": info.groups,
        "folds": info.folds, "s4aqa": s4aqa.__version__, "holdout": int(holdout),
        "shift": shift or None,
        "data": {str(target): fingerprint for target, fingerprint in fingerprints.items()},
        "runs": [dict(r.to_dict(), key=r.key) for r in runs],
    })
    todo = [r for r in runs if fresh or not cache.is_done(r.key, r.extras)]
    summary = ReproduceSummary(spec.name, dataset, total=len(runs),
                               cached=len(runs) - len(todo), missing_methods=missing)
    if progress:
        print(f"{spec.name} on {dataset}: {len(runs)} runs, {summary.cached} cached, "
              f"{len(todo)} to run on {max(1, min(int(workers), len(todo) or 1))} worker(s)",
              file=sys.stderr)
    try:
        results = run_specs(todo, out, workers=workers, progress=progress,
                            desc=f"{spec.name} {dataset}", group_seeds=group_seeds)
    except KeyboardInterrupt:
        done = sum(cache.is_done(r.key, r.extras) for r in runs)
        print(f"s4aqa: interrupted with {done} of {len(runs)} runs saved in {out}; run the "
              "same command again to resume", file=sys.stderr)
        raise
    summary.ran = len(results)
    summary.failed = sum(r["status"] == run_cache.FAILED for r in results)
    summary.skipped = sum(r["status"] == run_cache.SKIPPED for r in results)
    summary.internal_errors = sum(r["internal"] for r in results)
    if report:
        from s4aqa.experiments.report import build_report

        summary.report = build_report(out)
    return summary
