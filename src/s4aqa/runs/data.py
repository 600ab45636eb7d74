"""The data a run reads: the dataset as read (kept for later runs of one process), its
fingerprint, and the run's view of it (a fold made the test split, or training videos held out
in its place)."""

from __future__ import annotations

import dataclasses

from s4aqa.config import RunConfig
from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import load_dataset


def read_data(config: RunConfig, cache: dict | None = None) -> FeatureSet:
    """The dataset ``config`` reads, as read (no fold or holdout applied). ``cache``: a dict
    that keeps what was read for later calls with the same reading options (a reproduction
    reads its dataset once per process; a single run reads it afresh)."""
    key = (config.dataset, config.root, config.target, config.task, config.segments,
           config.features, config.unlisted)
    if cache is not None and key in cache:
        return cache[key]
    data = load_dataset(config.dataset, config.root, target=config.target, task=config.task,
                        segments=config.segments, features=config.features,
                        unlisted=config.unlisted)
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


def origin_of_test_videos(config: RunConfig) -> str:
    """Where a run's test videos come from, in words."""
    if config.holdout:
        return f"{config.holdout} scored training videos held out (--holdout, a fixed draw)"
    if config.fold is not None:
        return f"fold {config.fold} of the dataset's cross-validation folds"
    return "the dataset's test split"
