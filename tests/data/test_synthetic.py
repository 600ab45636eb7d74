import numpy as np

from s4aqa.data.formats.synthetic import read
from s4aqa.data.synthetic import make_staged_actions


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


def test_group_shifts_move_the_look_or_the_skill_of_one_group():
    shifts = {"source": {}, "look": {"look": 2.0}, "skill": {"skill": 1.0}}
    data = make_staged_actions(n_train=600, n_test=0, seed=2, group_shifts=shifts)
    plain = make_staged_actions(n_train=600, n_test=0, seed=2)
    assert plain.groups.tolist() == [""] * 600  # no groups unless asked
    assert sorted(set(data.groups)) == ["look", "skill", "source"]
    mean_score = {g: data.scores[data.groups == g].mean() for g in shifts}
    skill = {g: data.meta["skill"][data.groups == g].mean() for g in shifts}
    # skill: better athletes, higher scores; look: same skills, other-looking features
    assert skill["skill"] - skill["source"] > 0.7 and abs(skill["look"] - skill["source"]) < 0.3
    assert mean_score["skill"] > mean_score["source"] + 3
    centre = {g: data.features[data.groups == g].mean(axis=(0, 1)) for g in shifts}
    gap = {g: np.linalg.norm(centre[g] - centre["source"]) for g in ("look", "skill")}
    assert gap["look"] > 3 * gap["skill"]
