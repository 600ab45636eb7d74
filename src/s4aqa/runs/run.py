"""One run end to end: prepared (``runs.prepare``), trained, evaluated on the test split.

``run_training`` trains and evaluates one run, ``run_group`` several runs that differ only
by seed as one stacked model; ``runs.run_folder`` writes a run folder. The test split is read
once, after training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from s4aqa.config import RunConfig
from s4aqa.data.featureset import FeatureSet
from s4aqa.data.splits import Split
from s4aqa.methods.intervals import cross_fitted, fit_intervals, interval_metrics, too_few
from s4aqa.methods.registry import create
from s4aqa.runs.identity import run_key
from s4aqa.runs.prepare import Prepared, caveats, counts_line, prepare, video_counts
from s4aqa.threads import limited_threads
from s4aqa.training.progress import Progress
from s4aqa.training.resume import STATE_FILE, Checkpoint
from s4aqa.training.loop import Trainer, own_random_state
from s4aqa.training.metrics import evaluate
from s4aqa.training.stacked import can_group


@dataclass
class RunResult:
    config: RunConfig  # as run: options typed, the target and label ratio resolved
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
    counts: dict[str, Any] | None = None  # the videos of the run and where they came from


def run_training(config: RunConfig, data: FeatureSet | None = None,
                 state_dir: str | Path | None = None, fresh: bool = False,
                 notify: Callable[[str], None] | None = None,
                 progress: bool | None = False) -> RunResult:
    """Train ``config.method`` on the split of ``config`` and evaluate it on the test split.

    With ``state_dir``, deep methods save resumable training state there and resume from it
    when it was saved by a run of the same settings on the same data (``fresh``: never);
    ``notify`` is told, first, the run's videos and where they come from, then in one line
    each what the user should know (scores set aside, too few videos, why a saved state was
    not used). ``progress``: a progress bar (None: on a terminal only).
    """
    prepared = prepare(config, data)
    config = prepared.config
    counts = video_counts(prepared)
    if notify is not None:
        notify(counts_line(counts))
        for line in caveats(prepared):
            notify(line)
        few = too_few(len(prepared.sets[0]), config.coverage)  # the intervals' residuals
        if few:
            notify(few)
    hooks = []
    if state_dir is not None:
        if fresh:
            (Path(state_dir) / STATE_FILE).unlink(missing_ok=True)
        key = {"settings": run_key(config) + "/" + config.device,
               "data": prepared.data.fingerprint()}
        hooks.append(Checkpoint(state_dir, key, notify=notify))
    if progress is not False:
        hooks.append(Progress(config.method, enabled=progress))
    started = time.perf_counter()
    with limited_threads(config.threads):
        prepared.method.fit(*prepared.sets, hooks=hooks)
        seconds = time.perf_counter() - started
        result = _evaluated(prepared, {"train_seconds": seconds})
    result.counts = counts
    return result


def _evaluated(prepared: Prepared, extra: dict[str, Any]) -> RunResult:
    config, data, split, method, sets = (prepared.config, prepared.data, prepared.split,
                                         prepared.method, prepared.sets)
    # the test split is read here, once, after training and model selection
    test = data.select_ids(split.test)
    predictions = method.predict(test)
    metrics = evaluate(predictions, test)
    metrics.update(run_facts(config, sets, method))
    # prediction intervals from the labeled videos only (methods.intervals)
    own = None
    if config.intervals == "crossfit":  # the method itself, refitted on folds
        own = cross_fitted(lambda: create(config.method, method.options,
                                          seed=config.method_seed, device=config.device),
                           *sets, seed=config.seed)
    intervals = fit_intervals(method, sets[0], config.coverage, own)
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
    if method.notes:  # e.g. the compiler failed and training went on eagerly
        facts["notes"] = list(dict.fromkeys(method.notes))
    return facts


def run_group(configs: list[RunConfig], data: FeatureSet | None = None) -> list[RunResult]:
    """Train runs that differ only by seed (or init) as one stacked model
    (``training.stacked``); falls back to one run after another where the method cannot be
    grouped."""
    if not configs:
        return []
    prepared = [prepare(c, data) for c in configs]
    methods = [p.method for p in prepared]
    if len(configs) == 1 or not can_group(methods):
        return [run_training(c, data) for c in configs]
    # the lifecycle of each method, with one Trainer stacking every member of every run
    started = time.perf_counter()
    with limited_threads(configs[0].threads):
        with own_random_state(methods[0].device):
            networks, network_sets, trained = [], [], []
            for method, (labeled, unlabeled, validation) in zip(methods,
                                                                (p.sets for p in prepared)):
                unlabeled = method.unlabeled_for(unlabeled)
                networks += method.begin(labeled, unlabeled, validation, compile=False)
                network_sets += [(labeled, unlabeled, validation)] * len(method.members)
                trained.append((labeled, unlabeled))
            Trainer(stack=True).train(networks, *map(list, zip(*network_sets)))
            for method, (labeled, unlabeled) in zip(methods, trained):
                method.end(labeled, unlabeled)
        seconds = (time.perf_counter() - started) / len(configs)
        return [_evaluated(p, {"train_seconds": seconds, "grouped": len(configs)})
                for p in prepared]
