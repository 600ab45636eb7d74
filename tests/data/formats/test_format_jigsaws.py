"""The JIGSAWS reader: meta files, kinematics turned into window statistics, folds."""

from __future__ import annotations

import json

import format_examples as examples
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import jigsaws, load_dataset
from s4aqa.errors import S4AQAError


# ---- the real sample ---------------------------------------------------------------------------
@pytest.mark.shared_data
def test_real_sample_all_tasks(shared_data):
    root = shared_data / "jigsaws_sample"
    features = load_dataset("jigsaws", root)
    assert features.ids == ["Knot_Tying_B001", "Knot_Tying_E001", "Needle_Passing_B001",
                            "Needle_Passing_E001", "Suturing_B001", "Suturing_E001"]
    assert features.features.shape == (6, 16, 152)
    assert list(features.groups) == ["Knot_Tying"] * 2 + ["Needle_Passing"] * 2 + ["Suturing"] * 2
    assert set(features.split) == {"train"}
    np.testing.assert_array_equal(features.meta["fold"], [0, 1] * 3)  # N before E, dealt round-robin
    np.testing.assert_array_equal(features.meta["length_frames"], [900] * 6)
    # GRS total and items as written in the meta file (blank columns, CRLF line ends)
    first = (root / "Knot_Tying" / "meta_file_Knot_Tying.txt").read_text().split()
    assert features.scores[0] == float(first[2]) == 13
    assert [features.aux[f"grs_{item}"][0] for item in jigsaws.GRS_ITEMS] == [float(v) for v in first[3:9]]
    # the first window is the first 900 // 16 frames: its channel means, then its stds
    frames = np.loadtxt(root / "Knot_Tying" / "kinematics" / "AllGestures" / "Knot_Tying_B001.txt")
    np.testing.assert_allclose(features.features[0, 0, :76], frames[:56].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(features.features[0, 0, 76:], frames[:56].std(axis=0), atol=1e-5)
    test_fold = features.with_fold_as_test(1)
    assert list(test_fold.split) == ["train", "test"] * 3


@pytest.mark.shared_data
@pytest.mark.parametrize("task", ["knot_tying", "Knot Tying", "KNOT-TYING"])
def test_real_sample_one_task_by_any_spelling(shared_data, task):
    features = jigsaws.read(shared_data / "jigsaws_sample", task=task, segments=4,
                            target="quality_of_final_product")
    assert features.ids == ["Knot_Tying_B001", "Knot_Tying_E001"] and features.num_segments == 4
    np.testing.assert_array_equal(features.scores, features.aux["grs_quality_of_final_product"])


@pytest.mark.shared_data
def test_real_sample_task_folder_as_root(shared_data):
    assert jigsaws.read(shared_data / "jigsaws_sample" / "Suturing").ids == ["Suturing_B001", "Suturing_E001"]


# ---- tiny generated release --------------------------------------------------------------------
TRIALS = examples.JIGSAWS_TRIALS


_meta_line = examples.jigsaws_meta_line


@pytest.fixture
def tiny(tmp_path):
    """Suturing with 9 trials of 20..40 frames; Suturing_I001 has no kinematics."""
    return examples.jigsaws(tmp_path)


def _kinematics(root, trial):
    return root / "Suturing" / "kinematics" / "AllGestures" / f"{trial}.txt"


def test_tiny_release_skips_trials_without_kinematics_and_deals_stratified_folds(tiny):
    features = jigsaws.read(tiny)
    assert len(features) == 8 and "Suturing_I001" not in features.ids
    fold = dict(zip(features.ids, features.meta["fold"]))
    # sorted (N: B001 B002 G001, I: C001 F001, E: D001 E001 H001) and dealt 0, 1, 2, 3, 0, ...
    assert fold == {"Suturing_B001": 0, "Suturing_B002": 1, "Suturing_G001": 2, "Suturing_C001": 3,
                    "Suturing_F001": 0, "Suturing_D001": 1, "Suturing_E001": 2, "Suturing_H001": 3}
    assert features.features.shape == (8, 16, 152) and features.dim == 2 * jigsaws.CHANNELS
    np.testing.assert_array_equal(features.scores, [13, 17, 20, 25, 24, 18, 9, 28])
    np.testing.assert_array_equal(
        sum(features.aux[f"grs_{item}"] for item in jigsaws.GRS_ITEMS), features.scores)


def test_fewer_frames_than_windows(tiny):
    np.savetxt(_kinematics(tiny, "Suturing_B001"), np.ones((3, 76)))
    features = jigsaws.read(tiny)
    assert features.meta["length_frames"][0] == 3
    np.testing.assert_array_equal(features.features[0, :, 76:], 0)  # one frame per window: std 0


def test_window_statistics_cover_all_frames():
    frames = np.arange(10, dtype=float)[:, None]
    stats = jigsaws.window_statistics(frames, 3)  # windows [0:3], [3:6], [6:10]
    np.testing.assert_allclose(stats[:, 0], [1, 4, 7.5])
    np.testing.assert_allclose(stats[:, 1], [np.std([0, 1, 2]), np.std([3, 4, 5]), np.std([6, 7, 8, 9])])


@pytest.mark.parametrize("name, content", [
    ("Suturing/folds.txt", "".join(f"{t} {i % 2}\n" for i, (t, _, _) in enumerate(TRIALS))),
    ("Suturing/folds.json", json.dumps({t: i % 2 for i, (t, _, _) in enumerate(TRIALS)})),
    ("folds.json", json.dumps([[t for i, (t, _, _) in enumerate(TRIALS) if i % 2 == k] for k in (0, 1)])),
])
def test_fold_files_are_used(tiny, name, content):
    (tiny / name).write_text(content)
    features = jigsaws.read(tiny)
    np.testing.assert_array_equal(features.meta["fold"], [0, 1, 0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize("content, message", [
    ("Suturing_B001 0\n", r"folds.txt: 7 trials have no fold \('Suturing_B002'"),
    ("Suturing_B001 zero\n", r"folds.txt line 1: fold is 'zero', not a number"),
    ("Suturing_B001 -1\n", r"folds.txt line 1: fold -1 is negative"),
    ("Suturing_B001 1 2\n", r"folds.txt line 1: 3 values"),
    ("Suturing_B001 1\nSuturing_B001 2\n", r"folds.txt line 2: trial 'Suturing_B001' is listed twice"),
])
def test_bad_fold_files(tiny, content, message):
    (tiny / "Suturing" / "folds.txt").write_text(content)
    with pytest.raises(S4AQAError, match=message):
        jigsaws.read(tiny)


def test_bad_fold_json(tiny):
    (tiny / "folds.json").write_text("{not json")
    with pytest.raises(S4AQAError, match="folds.json: not valid JSON"):
        jigsaws.read(tiny)
    (tiny / "folds.json").write_text('{"Suturing_B001": 1.5}')
    with pytest.raises(S4AQAError, match="folds.json: fold 1.5 is not a whole number"):
        jigsaws.read(tiny)


def test_features_folder_replaces_kinematics(tiny, save_npy):
    save_npy(tiny / "video" / "Suturing_B001.npy", np.ones((30, 5)))
    save_npy(tiny / "video" / "Suturing_C001.npy", np.ones((20, 5)))
    features = jigsaws.read(tiny, features=tiny / "video")
    assert features.ids == ["Suturing_B001", "Suturing_C001"] and features.features.shape == (2, 16, 5)
    assert "length_frames" not in features.meta
    with pytest.raises(S4AQAError, match="none of the 9 trials .* has a feature file"):
        jigsaws.read(tiny, features=tiny / "Suturing")


@pytest.mark.parametrize("line, message", [
    ("Suturing_Z001\t\tN\t13\t\t2\t2\t2\t2\t2", r"meta_file_Suturing.txt line 11: 8 values, expected 9"),
    ("Suturing_Z001\t\tX\t13\t\t2\t2\t2\t2\t2\t3", r"line 11: skill is 'X'; use N, I or E"),
    ("Suturing_Z001\t\tN\tgood\t\t2\t2\t2\t2\t2\t3", r"line 11: GRS total is 'good', not a number"),
    ("Suturing_Z001\t\tN\t13\t\t2\t2\t2\t2\t2\t?", r"line 11: GRS item 'quality_of_final_product' is '\?'"),
    ("Suturing_B001\t\tN\t13\t\t2\t2\t2\t2\t2\t3", r"'Suturing_B001' appears twice .*line 1 and .*line 11"),
])
def test_bad_meta_lines(tiny, line, message):
    with open(tiny / "Suturing" / "meta_file_Suturing.txt", "a") as handle:
        handle.write(line + "\n")
    with pytest.raises(S4AQAError, match=message):
        jigsaws.read(tiny)


@pytest.mark.parametrize("content, message", [
    ("1 2 3\n", r"Suturing_C001.txt line 1: 3 values, expected 76"),
    (" ".join(["0.5"] * 76) + "\n" + " ".join(["x"] * 76) + "\n", r"Suturing_C001.txt line 2: 'x' is not a number"),
    (" ".join(["nan"] * 76) + "\n", r"Suturing_C001.txt: frame 1 holds NaN or inf"),
    ("", r"Suturing_C001.txt: the kinematics file is empty"),
])
def test_bad_kinematics_files(tiny, content, message):
    _kinematics(tiny, "Suturing_C001").write_text(content)
    with pytest.raises(S4AQAError, match=message):
        jigsaws.read(tiny)


def test_missing_layouts(tmp_path, tiny):
    with pytest.raises(S4AQAError, match="no JIGSAWS meta file found; expected <Task>/meta_file_<Task>.txt"):
        jigsaws.read(tmp_path / "Suturing" / "kinematics")
    for trial, _, _ in TRIALS[:-1]:
        _kinematics(tiny, trial).unlink()
    with pytest.raises(S4AQAError, match="none of the 9 trials in the meta files of Suturing has a kinematics file"):
        jigsaws.read(tiny)


def test_arguments_are_checked(tiny):
    with pytest.raises(S4AQAError, match="no task 'knot_tying'; choose one of Suturing"):
        jigsaws.read(tiny, task="knot_tying")
    with pytest.raises(S4AQAError, match="unknown target 'osats'"):
        jigsaws.read(tiny, target="osats")
    assert jigsaws.read(tiny, target="GRS_Total").scores[0] == 13


VALID_META = st.lists(
    st.tuples(st.sampled_from([t for t, _, _ in TRIALS]), st.sampled_from("NIEx"),
              st.integers(6, 30).map(str)),
    min_size=1, max_size=4, unique_by=lambda row: row[0],
).map(lambda rows: "".join(_meta_line(trial, skill, int(total)) for trial, skill, total in rows))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_meta_file_gives_a_featureset_or_a_clean_error(tiny, text_variants, data):
    (tiny / "Suturing" / "meta_file_Suturing.txt").write_bytes(data.draw(text_variants(VALID_META)))
    try:
        result = jigsaws.read(tiny, segments=2)
    except S4AQAError as error:
        assert str(error)
    else:
        assert isinstance(result, FeatureSet)
