"""One network's input side: feature statistics without a copy of the pool, and batches
standardised as they are drawn, so float16 features train as their float32 values do."""

from __future__ import annotations

import numpy as np
import pytest

import s4aqa.data.featureset as featureset
from s4aqa.data.featureset import FeatureSet
from s4aqa.methods.network import segment_statistics
from s4aqa.methods.registry import create


def _as(data: FeatureSet, dtype) -> FeatureSet:
    return FeatureSet(ids=data.ids, features=data.features.astype(dtype), scores=data.scores,
                      split=data.split, groups=data.groups, name=data.name)


def test_segment_statistics_are_numpys_of_the_concatenated_rows(staged, monkeypatch):
    monkeypatch.setattr(featureset, "BLOCK_VALUES", 100)  # many blocks, sums carried across
    sets = [staged["labeled"], staged["unlabeled"], staged["validation"]]
    rows = np.concatenate([fs.features.reshape(-1, fs.dim) for fs in sets])
    mean, std = segment_statistics(sets)
    assert mean.dtype == std.dtype == np.float32
    assert np.array_equal(mean, rows.mean(axis=0)) and np.array_equal(std, rows.std(axis=0))


@pytest.mark.parametrize("name", ["aa+graph", "pseudo_label"])
def test_float16_features_train_to_the_predictions_of_their_float32_values(
        name, staged, tiny):
    """Held as float16 and standardised a batch at a time, or widened to float32 first: the
    network reads the same values, so training gives the same predictions bit for bit."""
    half = {part: _as(fs, np.float16) for part, fs in staged.items()}
    widened = {part: _as(fs, np.float32) for part, fs in half.items()}
    runs = []
    for sets in (half, widened):
        method = create(name, {**tiny(name), "members": 2}, seed=3)
        method.fit(sets["labeled"], sets["unlabeled"], sets["validation"])
        runs.append(method.predict(sets["test"]))
    assert half["labeled"].features.dtype == np.float16
    assert np.array_equal(runs[0], runs[1])
