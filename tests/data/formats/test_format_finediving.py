"""The FineDiving reader: coarse annotations, official split, per-dive features."""

from __future__ import annotations

import format_examples as examples
import numpy as np
import pytest

from s4aqa.data import safe_pickle
from s4aqa.data.formats import finediving, load_dataset
from s4aqa.errors import S4AQAError

_dump = examples.dump


@pytest.fixture(scope="module")
def real_features(shared_data, tmp_path_factory):
    """A random (8,) dive-level vector for every dive of the official split."""
    folder = tmp_path_factory.mktemp("finediving_features")
    rng = np.random.default_rng(0)
    for name in ("train_split.pkl", "test_split.pkl"):
        for event, index in safe_pickle.load(shared_data / "finediving" / name):
            np.save(folder / f"{event}_{index}.npy", rng.standard_normal(8).astype(np.float32))
    return folder


@pytest.mark.shared_data
def test_real_finediving_split(shared_data, real_features):
    features = load_dataset("finediving", shared_data / "finediving", features=real_features)
    assert len(features) == 3000 and (features.split == "test").sum() == 749
    assert features.features.shape == (3000, 1, 8)
    annotations = safe_pickle.load(shared_data / "finediving" / finediving.ANNOTATION_FILE)
    event, index = features.ids[0].rsplit("_", 1)
    first = annotations[(event, int(index))]
    assert features.scores[0] == first["dive_score"] and features.meta["difficulty"][0] == first["difficulty"]
    action = features.aux["action_type"]
    assert action.dtype == np.int64 and action.max() < 52
    types = sorted({entry["action_type"] for entry in annotations.values()})
    assert types[action[0]] == first["action_type"] == features.meta["action_type"][0]
    difficulty = finediving.read(shared_data / "finediving", features=real_features, target="difficulty")
    np.testing.assert_array_equal(difficulty.scores, features.meta["difficulty"])


_entry = examples.finediving_entry


@pytest.fixture
def tiny(tmp_path):
    return examples.finediving(tmp_path)


def test_tiny_finediving(tiny):
    features = finediving.read(tiny)
    assert features.ids == ["Event_A_1", "Event_B_1", "Event_A_2", "Event_B_7"]
    assert list(features.split) == ["train", "train", "train", "test"]
    np.testing.assert_array_equal(features.scores, [60, 80.5, 70, 90])
    # classes index the sorted action types of the whole file: 107b, 205b, 407c, 5253b
    np.testing.assert_array_equal(features.aux["action_type"], [2, 1, 0, 3])
    assert features.features.shape == (4, 6, 4) and not features.has_groups


def test_nested_feature_names_are_found(tiny, save_npy):
    (tiny / "features" / "Event_B_7.npy").rename(tiny / "features" / "x")
    save_npy(tiny / "features" / "Event_B" / "7.npy", np.ones((3, 4)))
    assert finediving.read(tiny, segments=6).ids[-1] == "Event_B_7"


@pytest.mark.parametrize("name, value, message", [
    ("train_split.pkl", [("Event_A", 1), ("Event_C", 3)], r"1 split keys have no annotation \('Event_C_3'\)"),
    ("train_split.pkl", [("Event_B", 7)], r"'Event_B_7' appears twice \(train_split.pkl and test_split.pkl\)"),
    ("train_split.pkl", [("Event_A", "1")], r"train_split.pkl: key .* is not an \(event name, number\) pair"),
    ("train_split.pkl", [("../up", 1)], r"train_split.pkl: video id '../up' cannot be a file name"),
    ("test_split.pkl", "Event_B_7", r"test_split.pkl: the split list should hold a list or tuple, found str"),
    (finediving.ANNOTATION_FILE, {("Event_A", 1): _entry(1), ("Event_A", 2): _entry(None),
                                  ("Event_B", 1): _entry(1), ("Event_B", 7): _entry(1)},
     r"'dive_score' of \('Event_A', 2\) is None, not a number"),
    (finediving.ANNOTATION_FILE, {("Event_A", 1): _entry(1), ("Event_A", 2): _entry(1, action=None),
                                  ("Event_B", 1): _entry(1), ("Event_B", 7): _entry(1)},
     r"annotation of \('Event_A', 2\) has no action_type name"),
    (finediving.ANNOTATION_FILE, [1, 2], r"should hold a dict, found list"),
])
def test_bad_annotation_and_split_pickles(tiny, name, value, message):
    _dump(tiny / name, value)
    with pytest.raises(S4AQAError, match=message) as error:
        finediving.read(tiny)
    assert ".pkl" in str(error.value)


def test_missing_files(tiny):
    (tiny / "features" / "Event_A_2.npy").unlink()
    with pytest.raises(S4AQAError, match=r"1 of 4 videos .* no feature file .*'Event_A_2'"):
        finediving.read(tiny)
    with pytest.raises(S4AQAError, match="nowhere: features folder not found"):
        finediving.read(tiny, features=tiny / "nowhere")
    (tiny / "test_split.pkl").write_bytes(b"")
    with pytest.raises(S4AQAError, match="test_split.pkl: file is empty"):
        finediving.read(tiny)
    (tiny / finediving.ANNOTATION_FILE).unlink()
    with pytest.raises(S4AQAError, match="FineDiving_coarse_annotation.pkl: annotation dict file not found"):
        finediving.read(tiny)


def test_broken_feature_file_is_named(tiny, bad_npy, bad_npy_kind):
    bad_npy(tiny / "features" / "Event_B_1.npy", bad_npy_kind, dim=4)
    with pytest.raises(S4AQAError, match=r"Event_B_1\.npy"):
        finediving.read(tiny)


def test_arguments_are_checked(tiny):
    with pytest.raises(S4AQAError, match="choose one of dive_score, difficulty"):
        finediving.read(tiny, target="judge")
    with pytest.raises(S4AQAError, match="drop --task"):
        finediving.read(tiny, task="407c")
    assert len(finediving.read(tiny, target="SCORE")) == 4
