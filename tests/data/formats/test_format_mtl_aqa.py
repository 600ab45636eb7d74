"""The MTL-AQA reader: annotation and split pickles, per-clip features or one feature pickle."""

from __future__ import annotations

import os
import pickle

import format_examples as examples
import numpy as np
import pytest

from s4aqa.data import safe_pickle
from s4aqa.data.formats import load_dataset, mtl_aqa
from s4aqa.errors import S4AQAError

_dump = examples.dump


# ---- the real annotations with generated features ----------------------------------------------
@pytest.fixture(scope="module")
def real_keys(shared_data):
    root = shared_data / "mtl_aqa"
    return safe_pickle.load(root / "train_split_0.pkl"), safe_pickle.load(root / "test_split_0.pkl")


@pytest.fixture(scope="module")
def real_features(real_keys, tmp_path_factory):
    """(10, 8) random arrays for every clip of split 0, named <video:02d>_<clip:02d>.npy."""
    folder = tmp_path_factory.mktemp("mtl_features")
    rng = np.random.default_rng(0)
    for video, clip in real_keys[0] + real_keys[1]:
        np.save(folder / f"{video:02d}_{clip:02d}.npy", rng.standard_normal((10, 8)).astype(np.float32))
    return folder


@pytest.mark.shared_data
def test_real_mtl_aqa_split_0(shared_data, real_features, real_keys):
    features = load_dataset("mtl_aqa", shared_data / "mtl_aqa", features=real_features)
    assert len(features) == 1412 and (features.split == "train").sum() == 1059
    assert features.features.shape == (1412, 10, 8)  # native T kept
    annotations = safe_pickle.load(shared_data / "mtl_aqa" / "final_annotations_dict.pkl")
    video, clip = real_keys[0][0]
    first = annotations[(video, clip)]
    assert features.ids[0] == f"{video:02d}_{clip:02d}"
    assert features.scores[0] == first["final_score"]
    assert features.meta["difficulty"][0] == first["difficulty"] and features.meta["video"][0] == video
    for name in mtl_aqa.AUX_LABELS:
        assert features.aux[name].dtype == np.int64 and features.aux[name][0] == first[name]
    assert not features.has_groups


@pytest.mark.shared_data
def test_real_mtl_aqa_difficulty_target_from_the_core_annotations(shared_data, real_features, tmp_path):
    for name in ("core_final_annotations_dict_with_dive_number.pkl", "train_split_0.pkl", "test_split_0.pkl"):
        (tmp_path / name).write_bytes((shared_data / "mtl_aqa" / name).read_bytes())
    features = mtl_aqa.read(tmp_path, target="Difficulty", features=real_features, segments=5)
    np.testing.assert_array_equal(features.scores, features.meta["difficulty"])
    assert features.num_segments == 5


@pytest.mark.shared_data
def test_real_mtl_aqa_from_one_feature_pickle(shared_data, real_keys, tmp_path):
    rng = np.random.default_rng(1)
    train, test = real_keys
    content = {
        "train_feat": rng.standard_normal((len(train), 1, 8)).astype(np.float32),
        "train_final_score": np.linspace(20, 100, len(train)),
        "test_feat": rng.standard_normal((len(test), 1, 8)).astype(np.float32),
        "test_final_score": np.linspace(20, 100, len(test)),
    }
    anonymous = mtl_aqa.read(shared_data / "mtl_aqa", features=_dump(tmp_path / "f.pkl", content))
    assert anonymous.ids[0] == "train_0000" and anonymous.ids[-1] == f"test_{len(test) - 1:04d}"
    assert anonymous.aux == {} and anonymous.features.shape == (1412, 1, 8)
    np.testing.assert_allclose(anonymous.scores[: len(train)], content["train_final_score"])
    content.update(train_keys=train, test_keys=test)
    keyed = mtl_aqa.read(shared_data / "mtl_aqa", features=_dump(tmp_path / "g.pkl", content),
                         target="difficulty")
    assert keyed.ids[0] == "%02d_%02d" % train[0] and set(keyed.aux) == set(mtl_aqa.AUX_LABELS)


# ---- tiny generated datasets -------------------------------------------------------------------
_entry = examples.mtl_aqa_entry


@pytest.fixture
def tiny(tmp_path):
    return examples.mtl_aqa(tmp_path)


def test_tiny_mtl_aqa(tiny):
    features = mtl_aqa.read(tiny)
    assert features.ids == ["01_01", "02_10", "03_04", "01_02"]
    assert list(features.split) == ["train", "train", "train", "test"]
    np.testing.assert_array_equal(features.scores, [50, 70.5, 80, 60])
    np.testing.assert_array_equal(features.aux["tw_no"], [1, 1, 4, 1])
    np.testing.assert_array_equal(mtl_aqa.read(tiny, target="difficulty").scores, [2, 2, 2, 3])


def test_unpadded_names_and_clip_vectors_are_accepted(tiny, save_npy):
    (tiny / "features" / "01_02.npy").unlink()
    save_npy(tiny / "features" / "1_2.npy", np.ones(4))  # one clip-level vector
    with pytest.raises(S4AQAError, match="1..10 segments"):
        mtl_aqa.read(tiny)
    assert mtl_aqa.read(tiny, segments=10).features.shape == (4, 10, 4)


@pytest.mark.parametrize("name, value, message", [
    ("train_split_0.pkl", [(1, 1), (9, 9)], r"1 split keys have no annotation \('09_09'\)"),
    ("train_split_0.pkl", [(1, 1), (1, 2)], r"'01_02' appears twice \(train_split_0.pkl and test_split_0.pkl\)"),
    ("train_split_0.pkl", ["1_1"], r"train_split_0.pkl: entry '1_1' is not a \(video, clip\) pair"),
    ("train_split_0.pkl", [("a", 1)], r"train_split_0.pkl: key \('a', 1\) is not a pair of numbers"),
    ("train_split_0.pkl", [], r"train_split_0.pkl: the split list is empty"),
    ("test_split_0.pkl", {"x": 1}, r"test_split_0.pkl: the split list should hold a list or tuple"),
    ("final_annotations_dict.pkl", {(1, 1): _entry(50.0), (2, 10): {"final_score": 1}, (3, 4): _entry(1),
                                    (1, 2): _entry(1)}, r"annotation of \(2, 10\) has no 'difficulty'"),
    ("final_annotations_dict.pkl", {(1, 1): _entry("high"), (2, 10): _entry(1), (3, 4): _entry(1),
                                    (1, 2): _entry(1)}, r"'final_score' of \(1, 1\) is 'high', not a number"),
    ("final_annotations_dict.pkl", {(1, 1): _entry(1, position=1.5), (2, 10): _entry(1), (3, 4): _entry(1),
                                    (1, 2): _entry(1)}, r"'position' must be whole class numbers"),
    ("final_annotations_dict.pkl", {}, r"final_annotations_dict.pkl: the annotation dict is empty"),
])
def test_bad_annotation_and_split_pickles(tiny, name, value, message):
    _dump(tiny / name, value)
    with pytest.raises(S4AQAError, match=message) as error:
        mtl_aqa.read(tiny)
    assert ".pkl" in str(error.value)


def test_missing_and_unsafe_pickles(tiny):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tiny / "test_split_0.pkl").write_bytes(pickle.dumps([Exploit()]))
    with pytest.raises(S4AQAError, match="test_split_0.pkl: refused to unpickle"):
        mtl_aqa.read(tiny)
    (tiny / "test_split_0.pkl").write_bytes(pickle.dumps([(1, 2)])[:-3])
    with pytest.raises(S4AQAError, match="test_split_0.pkl: (not a readable pickle|refused to unpickle|the pickle is truncated)"):
        mtl_aqa.read(tiny)
    (tiny / "test_split_0.pkl").unlink()
    with pytest.raises(S4AQAError, match="test_split_0.pkl: split list file not found"):
        mtl_aqa.read(tiny)
    (tiny / "final_annotations_dict.pkl").unlink()
    with pytest.raises(S4AQAError, match="no final_annotations_dict.pkl found"):
        mtl_aqa.read(tiny)


def test_missing_features(tiny):
    (tiny / "features" / "03_04.npy").unlink()
    with pytest.raises(S4AQAError, match=r"1 of 4 videos .* no feature file .*'03_04'.*03_04.npy"):
        mtl_aqa.read(tiny)
    with pytest.raises(S4AQAError, match="nowhere: features folder not found"):
        mtl_aqa.read(tiny, features=tiny / "nowhere")


def test_broken_feature_file_is_named(tiny, bad_npy, bad_npy_kind):
    bad_npy(tiny / "features" / "02_10.npy", bad_npy_kind, dim=4)
    with pytest.raises(S4AQAError, match=r"02_10\.npy"):
        mtl_aqa.read(tiny)


def _feature_pickle(**overrides):
    content = {"train_feat": np.ones((3, 2, 4)), "train_final_score": np.array([1.0, 2, 3]),
               "test_feat": [np.ones((2, 4))], "test_final_score": [4.0]}
    content.update(overrides)
    return content


@pytest.mark.parametrize("overrides, message", [
    ({"test_feat": None}, r"test_feat is a NoneType"),
    ({"train_feat": np.ones(3)}, r"train_feat has shape \(3,\)"),
    ({"train_final_score": [1.0, 2]}, r"train_final_score must be 3 numbers"),
    ({"train_final_score": ["a", "b", "c"]}, r"train_final_score must be 3 numbers"),
    ({"test_final_score": [np.nan]}, r"test_final_score contains NaN"),
    ({"test_feat": [np.full((2, 4), np.inf)]}, r"test_feat\[0\]: features contain NaN or inf"),
    ({"test_feat": [np.array([["a"] * 4])]}, r"test_feat\[0\]: features have dtype"),
    ({"train_keys": [(1, 1)], "test_keys": [(1, 2)]}, r"1 train_keys but 3 train_feat rows"),
])
def test_bad_feature_pickles(tiny, overrides, message):
    path = _dump(tiny / "feats.pkl", _feature_pickle(**overrides))
    with pytest.raises(S4AQAError, match=message) as error:
        mtl_aqa.read(tiny, features=path)
    assert "feats.pkl" in str(error.value)


def test_feature_pickle_layouts(tiny):
    path = _dump(tiny / "feats.pkl", {"train_feat": np.ones((3, 4))})
    with pytest.raises(S4AQAError, match="feature pickle has no train_final_score, test_feat"):
        mtl_aqa.read(tiny, features=path)
    path = _dump(tiny / "feats.pkl", _feature_pickle())
    features = mtl_aqa.read(tiny, features=path)
    assert features.ids == ["train_0000", "train_0001", "train_0002", "test_0000"]
    with pytest.raises(S4AQAError, match="target 'difficulty' needs train_keys/test_keys"):
        mtl_aqa.read(tiny, features=path, target="difficulty")
    keyed = _dump(tiny / "keyed.pkl", _feature_pickle(train_keys=[(1, 1), (2, 10), (3, 4)], test_keys=[[1, 2]]))
    np.testing.assert_array_equal(mtl_aqa.read(tiny, features=keyed).scores, [50, 70.5, 80, 60])


def test_arguments_are_checked(tiny):
    with pytest.raises(S4AQAError, match="choose one of final_score, difficulty"):
        mtl_aqa.read(tiny, target="execution")
    with pytest.raises(S4AQAError, match="drop --task"):
        mtl_aqa.read(tiny, task="10m")
