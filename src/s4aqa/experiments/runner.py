"""`s4aqa reproduce`: expand a protocol, skip the cached runs, run the rest, write the report.

Runs are independent; a backend (``backends``) runs them. ``local``: with ``workers`` > 1 they
go to that many worker processes (``concurrent.futures.ProcessPoolExecutor``, spawn start
method); with one worker they run in this process. ``ray``: every job is a task on a Ray
instance or cluster, and this process saves the records as they come back. Every run uses one
torch thread: the models are small, so parallelism comes from workers, and several threads per
run on a busy machine oversubscribe the cores (a run measured 3x slower with 2 threads than
with 1 on 2 shared cores). Each run's record is saved as soon as the run finishes, so an
interruption loses only the runs in flight; calling again resumes. A run that
raises S4AQAError (a user-fixable problem: a method that cannot handle the dataset, a label
ratio too small for a validation slice ...) is recorded as *failed* with its message and shown
in the report; any other exception is recorded the same way with its traceback and makes the
command exit non-zero. Failed runs are retried on the next call; skipped runs are not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm import tqdm

import s4aqa
from s4aqa.cluster import check_device
from s4aqa.config import RunConfig
from s4aqa.device import resolve_device
from s4aqa.errors import Unsupported
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.backends import LocalBackend, RayBackend, make_backend
from s4aqa.experiments.execute import DATASETS
from s4aqa.experiments.protocols import DATASET_TARGETS, DatasetInfo, RunSpec, expand, get_protocol
from s4aqa.experiments.report import build_report
from s4aqa.runs.data import data_fingerprint, load_data
from s4aqa.runs.prepare import prepare


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


def group_by_seed(specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """Specs equal but for their seed, in groups (order of first appearance kept)."""
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        values = spec.to_dict()
        values["config"] = {k: v for k, v in values["config"].items() if k != "seed"}
        groups.setdefault(json.dumps(values, sort_keys=True, default=str), []).append(spec)
    return list(groups.values())


# ---- many runs -------------------------------------------------------------------------------
LOG_EVERY = 30.0  # seconds between progress lines in a log


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_specs(specs: Sequence[RunSpec], directory: str | os.PathLike, workers: int = 1,
              progress: bool = True, desc: str = "runs", group_seeds: bool = False,
              backend: LocalBackend | RayBackend | str = "local") -> list[dict[str, Any]]:
    """Run ``specs`` (none of them cached) on ``backend`` (a name: with ``workers``) and return
    their summaries as they finish.

    ``group_seeds`` trains the runs that differ only by seed as one batched model each.
    """
    if isinstance(backend, str):
        backend = make_backend(backend, workers)
    if not specs:
        return []
    results: list[dict[str, Any]] = []
    # a bar on a terminal; in a log (stderr redirected) a line at most every LOG_EVERY seconds
    logging = progress and not sys.stderr.isatty()
    started = last_line = time.monotonic()
    bar = tqdm(total=len(specs), desc=desc, unit="run", disable=not progress or logging,
               file=sys.stderr,
               dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} runs done "
                          "[{elapsed}<{remaining}{postfix}]")

    def finished(summaries: list[dict[str, Any]]) -> None:
        results.extend(summaries)
        failed = sum(r["status"] == run_cache.FAILED for r in results)
        bar.set_postfix_str(f"{len(specs) - len(results)} left, {failed} failed", refresh=False)
        bar.update(len(summaries))
        nonlocal last_line
        now = time.monotonic()
        if logging and (now - last_line >= LOG_EVERY or len(results) == len(specs)):
            last_line = now
            print(f"{desc}: {len(results)}/{len(specs)} runs done, {failed} failed, "
                  f"{now - started:.0f} s", file=sys.stderr, flush=True)

    groups = group_by_seed(specs) if group_seeds else [[spec] for spec in specs]
    jobs = [[spec.to_dict() for spec in group] for group in groups]
    bar.set_postfix_str(f"{len(specs)} left, 0 failed", refresh=False)
    try:
        backend.run(jobs, str(directory), finished,
                    say=(bar.write if not logging else _log) if progress else None)
    finally:
        bar.close()
    return results


def dataset_info(base: RunConfig, target: str | None) -> tuple[DatasetInfo, str]:
    """Load the dataset of ``base`` for ``target`` once here: checks --root early, gives its
    groups and folds and the fingerprint of what was read."""
    config = dataclasses.replace(base, target=target)
    return DatasetInfo.of(load_data(config, DATASETS)), data_fingerprint(config, DATASETS)


def preflight(runs: Sequence[RunSpec], device: str | None = None) -> None:
    """What can be checked before any run, on the first seed of every cell and method variant:
    the split (label ratio, validation slice, shift, test videos), the method and its options.
    A method that cannot use the data (Unsupported) is left to be recorded as skipped.
    ``device``: check on this device instead of the runs' own (a driver without their GPU)."""
    seen = set()
    for spec in runs:
        config = dataclasses.replace(spec.config, seed=0, init=0)
        if device is not None:
            config = dataclasses.replace(config, device=device)
        cell = json.dumps(config.to_dict(), sort_keys=True, default=str)
        if cell in seen:
            continue
        seen.add(cell)
        with contextlib.suppress(Unsupported):
            prepare(config, load_data(config, DATASETS))


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


def reproduce(protocol: str, base: RunConfig | None = None, *, out: str | os.PathLike,
              targets: Sequence[str] | None = None, seeds: int = 3, inits: int = 1,
              methods: Sequence[str] | None = None, options: Mapping[str, Any] | None = None,
              ratios: Sequence[float] | None = None, workers: int | None = None,
              progress: bool = True, report: bool = True, group_seeds: bool = False,
              fresh: bool = False, backend: str = "local", address: str | None = None,
              gpus_per_run: float = 0.0) -> ReproduceSummary:
    """Reproduce ``protocol`` on the data of ``base`` (dataset, root, segments, features,
    validation fraction, holdout, shift, device; default: the synthetic data) into ``out``;
    see the module docstring. ``backend``: ``local`` (``workers`` processes, default 1) or
    ``ray`` (a local Ray instance of ``workers`` CPUs, default every core, or the cluster at
    ``address``; ``gpus_per_run``: the share of a GPU each run asks for)."""
    base = (base or RunConfig()).resolved()
    engine = make_backend(backend, workers, address, gpus_per_run)
    driver_device = None
    if isinstance(engine, RayBackend):
        check_device(base.device, engine.gpus_per_run, "--gpus-per-run")
        if engine.gpus_per_run:  # the GPUs are on the nodes: check here on CPU
            driver_device = "cpu"
    resolve_device(driver_device or base.device)
    DATASETS.clear()  # read the data afresh: it may have changed since an earlier call
    spec = get_protocol(protocol)
    targets = list(targets) if targets else None
    dataset = base.dataset
    # every target is loaded once here, so a wrong --root or --target stops before any run
    loaded = {target: dataset_info(base, target)
              for target in (targets or DATASET_TARGETS.get(dataset, (None,)))}
    info = next(iter(loaded.values()))[0]
    fingerprints = {target: fingerprint for target, (_, fingerprint) in loaded.items()}
    runs, missing = expand(spec, base, info=info, seeds=seeds, targets=targets, inits=inits,
                           methods=methods, options=options, ratios=ratios,
                           fingerprints=fingerprints)
    preflight(runs, driver_device)
    out = Path(out)
    cache = run_cache.RunCache(out)
    changed = changed_data(out, spec.name, dataset, fingerprints)
    if changed:
        print(f"s4aqa: the data differs from the last `reproduce {spec.name}` in {out} "
              f"({changed}): its cached runs are not used", file=sys.stderr)
    run_cache.write_manifest(out, {
        "protocol": spec.name, "dataset": dataset, "root": base.root,
        "targets": sorted({str(r.config.target) for r in runs}), "seeds": int(seeds),
        "inits": int(inits), "methods": list(dict.fromkeys(r.config.method for r in runs)),
        "missing_methods": missing, "options": dict(options or {}),
        "ratios": sorted({r.config.label_ratio for r in runs}), "groups": info.groups,
        "folds": info.folds, "s4aqa": s4aqa.__version__, "holdout": int(base.holdout),
        "shift": base.shift or None,
        "data": {str(target): fingerprint for target, fingerprint in fingerprints.items()},
        "runs": [dict(r.to_dict(), key=r.key) for r in runs],
    })
    todo = [r for r in runs if fresh or not cache.is_done(r.key, r.extras)]
    summary = ReproduceSummary(spec.name, dataset, total=len(runs),
                               cached=len(runs) - len(todo), missing_methods=missing)
    jobs = len(group_by_seed(todo)) if group_seeds else len(todo)
    if progress:
        print(f"{spec.name} on {dataset}: {len(runs)} runs, {summary.cached} cached, "
              f"{len(todo)} to run on {engine.describe(jobs)}", file=sys.stderr)
    try:
        results = run_specs(todo, out, progress=progress, desc=f"{spec.name} {dataset}",
                            group_seeds=group_seeds, backend=engine)
    except KeyboardInterrupt:
        # counted once no worker is left to save more (the backend stopped them)
        done = sum(cache.is_done(r.key, r.extras) for r in runs)
        raise KeyboardInterrupt(f"interrupted with {done} of {len(runs)} runs saved in {out}; "
                                "run the same command again to resume") from None
    summary.ran = len(results)
    summary.failed = sum(r["status"] == run_cache.FAILED for r in results)
    summary.skipped = sum(r["status"] == run_cache.SKIPPED for r in results)
    summary.internal_errors = sum(r["internal"] for r in results)
    if report:
        summary.report = build_report(out)
    return summary
