import numpy as np

from s4aqa.data.synthetic import make_staged_actions, read


def test_synthetic_shapes_and_determinism():
    a = make_staged_actions(n_train=30, n_test=10, stages=3, segments_per_stage=2, dim=8, seed=4)
    b = make_staged_actions(n_train=30, n_test=10, stages=3, segments_per_stage=2, dim=8, seed=4)
    assert a.features.shape == (40, 6, 8)
    np.testing.assert_array_equal(a.features, b.features)
    assert (a.split == "train").sum() == 30


def test_synthetic_stage_qualities_drive_the_score():
    data = make_staged_actions(n_train=300, n_test=0, seed=1)
    # skill drives every stage, so it must correlate strongly with the score
    assert np.corrcoef(data.meta["skill"], data.scores)[0, 1] > 0.7


def test_reader_interface_resamples():
    assert read(None, segments=8).features.shape[1] == 8
