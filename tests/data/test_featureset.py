import numpy as np
import pytest

from s4aqa.data.featureset import FeatureSet, resample_segments
from s4aqa.errors import S4AQAError


def _set(n=6, t=4, d=3, **kw):
    rng = np.random.default_rng(0)
    values = dict(ids=[f"v{i}" for i in range(n)], features=rng.normal(size=(n, t, d)),
                  scores=np.arange(n, dtype=float), split=["train"] * (n - 2) + ["test"] * 2)
    values.update(kw)
    return FeatureSet(**values)


def test_resample_pools_longer_and_stretches_shorter():
    x = np.arange(8, dtype=np.float32)[:, None].repeat(2, axis=1)
    pooled = resample_segments(x, 4)
    assert pooled.shape == (4, 2)
    np.testing.assert_allclose(pooled[:, 0], [0.5, 2.5, 4.5, 6.5])
    stretched = resample_segments(x[:2], 5)
    np.testing.assert_allclose(stretched[:, 0], [0, 0.25, 0.5, 0.75, 1.0])
    assert resample_segments(x[:1], 3).shape == (3, 2)


def test_from_sequences_resamples_to_fixed_length_and_keeps_length():
    seqs = [np.ones((5, 3)), np.ones((9, 3))]
    fs = FeatureSet.from_sequences(["a", "b"], seqs, [1.0, 2.0], ["train", "test"], segments=4)
    assert fs.features.shape == (2, 4, 3)
    assert fs.meta["length"].tolist() == [5, 9]


def test_from_sequences_with_unequal_lengths_needs_segments():
    with pytest.raises(S4AQAError, match="segments"):
        FeatureSet.from_sequences(["a", "b"], [np.ones((5, 3)), np.ones((9, 3))],
                                  [1.0, 2.0], ["train", "test"], segments=None)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_are_refused(bad):
    features = np.zeros((6, 4, 3))
    features[2, 1, 0] = bad
    with pytest.raises(S4AQAError, match="NaN or inf"):
        _set(features=features)


def test_wrong_rank_and_duplicates_and_unknown_ids():
    with pytest.raises(S4AQAError, match=r"\(N, T, D\)"):
        _set(features=np.zeros((6, 4)))
    with pytest.raises(S4AQAError, match="duplicate"):
        _set(ids=["a"] * 6)
    with pytest.raises(S4AQAError, match="unknown video ids"):
        _set().select_ids(["nope"])


def test_a_training_video_may_be_unscored():
    scores = np.arange(6, dtype=float)
    scores[0] = np.nan
    fs = _set(scores=scores)
    assert fs.split[0] == "train" and list(fs.scored) == [False] + [True] * 5


def test_subset_train_test_and_folds():
    fs = _set(meta={"fold": np.array([0, 0, 1, 1, 2, 2])})
    assert len(fs.train()) == 4 and len(fs.test()) == 2
    folded = fs.with_fold_as_test(1)
    assert folded.test().ids == ["v2", "v3"]
    with pytest.raises(S4AQAError, match="no fold 7"):
        fs.with_fold_as_test(7)
    with pytest.raises(S4AQAError, match="no folds"):
        _set().with_fold_as_test(0)


def test_holdout_replaces_the_test_split_by_a_fixed_draw_of_training_videos():
    fs = _set()
    held = fs.with_holdout(1)
    assert set(held.ids) == set(fs.train().ids)  # the real test videos are gone
    assert len(held.test()) == 1 and len(held.train()) == len(fs.train()) - 1
    assert held.test().ids == fs.with_holdout(1).test().ids  # the same draw every time
    for count in (0, len(fs.train())):
        with pytest.raises(S4AQAError, match="cannot hold out"):
            fs.with_holdout(count)


def test_float16_features_stay_float16_and_hash_as_their_float32_values():
    rng = np.random.default_rng(0)
    half = rng.standard_normal((6, 4, 3)).astype(np.float16)
    kwargs = dict(ids=list("abcdef"), scores=np.arange(6.0), split=["train"] * 6)
    stored = FeatureSet(features=half, **kwargs)
    assert stored.features.dtype == np.float16
    assert stored.subset([0, 2]).features.dtype == np.float16
    widened = FeatureSet(features=half.astype(np.float32), **kwargs)
    assert widened.features.dtype == np.float32
    assert stored.fingerprint() == widened.fingerprint()
    other = half.copy()
    other[5, 3, 2] += np.float16(0.5)
    assert FeatureSet(features=other, **kwargs).fingerprint() != stored.fingerprint()
    assert FeatureSet(features=half.astype(np.float64), **kwargs).features.dtype == np.float32


def test_from_sequences_keeps_float16_unless_a_video_is_resampled():
    rng = np.random.default_rng(1)
    videos = [rng.standard_normal((4, 3)).astype(np.float16) for _ in range(3)]
    kept = FeatureSet.from_sequences(list("abc"), videos, [1.0, 2.0, 3.0], ["train"] * 3, None)
    assert kept.features.dtype == np.float16
    assert np.array_equal(kept.features, np.stack(videos))
    stacked = FeatureSet.from_sequences(list("abc"), np.stack(videos), [1.0, 2.0, 3.0],
                                        ["train"] * 3, None)
    assert stacked.features.dtype == np.float16
    assert np.array_equal(stacked.features, kept.features)
    videos[1] = rng.standard_normal((7, 3)).astype(np.float16)
    resampled = FeatureSet.from_sequences(list("abc"), videos, [1.0, 2.0, 3.0], ["train"] * 3, 4)
    assert resampled.features.dtype == np.float32  # resampled values are kept as computed
    assert np.array_equal(resampled.features[1], resample_segments(videos[1], 4))


def test_a_stacked_array_with_a_non_finite_video_names_it():
    array = np.ones((3, 2, 2), dtype=np.float16)
    array[2, 1, 0] = np.inf
    with pytest.raises(S4AQAError, match="video 'c'"):
        FeatureSet.from_sequences(list("abc"), array, [1.0, 2.0, 3.0], ["train"] * 3, None)
