"""S4L: the temporal pretext tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create
from s4aqa.methods.s4l import chunk_orders


def test_chunk_orders_are_permutations_of_contiguous_chunks():
    orders = chunk_orders(8, 3)  # chunks [0,1,2] [3,4,5] [6,7]
    assert orders.shape == (6, 8)
    assert orders[0].tolist() == list(range(8))
    assert orders[-1].tolist() == [6, 7, 3, 4, 5, 0, 1, 2]
    for row in orders:
        assert sorted(row.tolist()) == list(range(8))
    assert len({tuple(r.tolist()) for r in orders}) == 6


@pytest.mark.parametrize("pretext", ["order", "shuffle"])
def test_pretext_batches(pretext, fit, deep_tiny):
    method = fit("s4l", {**deep_tiny, "steps": 20, "pretext": pretext})
    x = torch.arange(2 * 8 * 3, dtype=torch.float32).reshape(2, 8, 3).repeat(20, 1, 1)
    reordered, target = method.pretext_batch(x)
    assert reordered.shape == x.shape and target.shape == (40,)
    assert target.max() < method.classes
    for original, video, label in zip(x, reordered, target):
        same = torch.equal(video, original)
        if label == 0:
            assert same
        elif pretext == "order":
            assert not same  # a shuffle may by chance leave a video as it was
        assert sorted(video[:, 0].tolist()) == sorted(original[:, 0].tolist())
    assert all("pretext" in r for r in method.history)


@pytest.mark.parametrize("pretext", ["order", "shuffle"])
def test_the_pretext_task_is_learned(pretext, deep_tiny):
    """Videos whose segments follow a fixed temporal pattern: their order is easy to tell."""
    rng = np.random.default_rng(0)
    n, segments, dim = 60, 8, 16
    pattern = rng.standard_normal((segments, dim)) * 2
    skill = rng.standard_normal(n)
    features = pattern[None] + 0.5 * skill[:, None, None] + 0.3 * rng.standard_normal((n, segments, dim))
    data = FeatureSet(ids=[str(i) for i in range(n)], features=features, scores=skill,
                      split=np.array(["train"] * n, dtype=object))
    method = create("s4l", {**deep_tiny, "steps": 60, "pretext": pretext})
    method.fit(data.subset(np.arange(20)), data.subset(np.arange(20, n)))
    chance = np.log(method.classes)
    assert method.history[-1]["pretext"] < 0.3 * chance < method.history[0]["pretext"]


def test_option_checks():
    with pytest.raises(S4AQAError, match="chunks"):
        create("s4l", {"chunks": 7})
