"""Videos as blocks and as pooled vectors."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.data.featureset import FeatureSet
from s4aqa.methods._pooling import pool_segments, video_blocks, video_count


def _set(n: int, seed: int) -> FeatureSet:
    rng = np.random.default_rng(seed)
    return FeatureSet(ids=[f"{seed}_{i}" for i in range(n)],
                      features=rng.standard_normal((n, 3, 4)), scores=np.zeros(n),
                      split=["train"] * n)


@pytest.mark.parametrize("sizes", [(5, 7), (1, 300), (256, 256), (3,), (600, 10, 1)])
@pytest.mark.parametrize("size", [1, 4, 256, 1000])
def test_blocks_of_several_sets_are_the_blocks_of_their_concatenation(sizes, size):
    sets = [_set(n, k) for k, n in enumerate(sizes)]
    whole = np.concatenate([fs.features for fs in sets])
    got = list(video_blocks(sets, size))
    expected = [whole[i:i + size] for i in range(0, len(whole), size)]
    assert len(got) == len(expected) and video_count(sets) == len(whole)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_pooling_several_sets_pools_their_concatenation():
    sets = [_set(9, 0), _set(4, 1)]
    whole = np.concatenate([fs.features for fs in sets])
    for how in ("mean", "mean_max", "mean_std"):
        assert np.array_equal(pool_segments(sets, how), pool_segments(whole, how))


def test_a_float16_array_is_kept_as_it_is_and_pools_as_its_float32_values():
    from s4aqa.methods._pooling import as_array

    x = np.random.default_rng(2).standard_normal((6, 3, 4)).astype(np.float16)
    assert as_array(x) is x  # no float32 copy of a float16 pool
    assert as_array(x.astype(np.float64)).dtype == np.float32
    assert np.array_equal(pool_segments(x), pool_segments(x.astype(np.float32)))
