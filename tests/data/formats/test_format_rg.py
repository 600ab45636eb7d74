"""The Rhythmic Gymnastics reader (ACTION-NET layout)."""

from __future__ import annotations

import shutil

import format_examples as examples
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import load_dataset, rg
from s4aqa.errors import S4AQAError

HEADER = examples.RG_HEADER


@pytest.fixture(scope="module")
def real_rg_root(shared_data, tmp_path_factory):
    """The real label files with random (60..80, 8) features for every routine they name."""
    root = tmp_path_factory.mktemp("rg")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        shutil.copy(shared_data / "rg" / f"{split}.txt", root / f"{split}.txt")
        for line in (root / f"{split}.txt").read_text().splitlines()[1:]:
            if line.strip():
                length = int(rng.integers(60, 81))
                np.save(root / f"{line.split()[0]}.npy", rng.standard_normal((length, 8)).astype(np.float32))
    return root


@pytest.mark.shared_data
def test_real_rg_labels_with_generated_features(real_rg_root):
    features = rg.read(real_rg_root)
    assert len(features) == 1000 and (features.split == "test").sum() == 200
    assert features.features.shape == (1000, rg.DEFAULT_SEGMENTS, 8)
    assert sorted(set(features.groups)) == ["Ball", "Clubs", "Hoop", "Ribbon"]
    first = features.ids.index("Ball_001")
    assert features.scores[first] == 18.80 and features.meta["video_length"][first] == 92
    execution = rg.read(real_rg_root, target="Execution", task="ribbon", segments=16)
    assert set(execution.groups) == {"Ribbon"} and len(execution) == 250
    assert execution.num_segments == 16


@pytest.fixture
def tiny(tmp_path):
    return examples.rg(tmp_path)


def test_tiny_rg(tiny):
    features = load_dataset("rg", tiny)
    assert features.ids == ["Ball_001", "Ball_002", "Hoop_001", "Hoop_002", "Ball_003", "Hoop_003"]
    assert list(features.groups) == ["Ball", "Ball", "Hoop", "Hoop", "Ball", "Hoop"]
    np.testing.assert_allclose(features.scores, [18.8, 10.8, 17, 16, 16.7, 11])
    assert features.features.shape == (6, 68, 4)
    difficulty = rg.read(tiny, target="difficulty", task="BALL")
    np.testing.assert_allclose(difficulty.scores, [10.5, 7.2, 9.1])


def test_columns_are_found_by_name_and_optional_ones_may_be_absent(tiny):
    (tiny / "train.txt").write_text("total_score video_name\n18.8 Ball_001\n")
    (tiny / "test.txt").write_text("Video_Name Total_Score\nBall_003 16.7\n")
    features = rg.read(tiny)
    assert features.ids == ["Ball_001", "Ball_003"]
    assert np.isnan(features.meta["penalty"]).all()
    with pytest.raises(S4AQAError, match="train.txt: the header has no column 'execution_score'"):
        rg.read(tiny, target="execution")


def test_headerless_files_use_the_standard_column_order(tiny):
    (tiny / "train.txt").write_text("Ball_001 10.5 8.3 18.8 0 92\n")
    (tiny / "test.txt").write_text("Ball_003 9.1 7.6 16.7 0 91\n")
    np.testing.assert_allclose(rg.read(tiny, target="execution").scores, [8.3, 7.6])


@pytest.mark.parametrize("line, message", [
    ("Clubs_001 1 2 3 0", r"train.txt line 6: 5 columns but the header has 6"),
    ("Clubs_001 1 2 x 0 90", r"train.txt line 6: total_score is 'x', not a number"),
    ("Clubs_001 1 2 3 0 ninety", r"train.txt line 6: video_length is 'ninety'"),
    ("Ball_003 1 2 3 0 90", r"'Ball_003' appears twice \(train.txt line 6 and test.txt line 2\)"),
    ("Clubs_001 1 2 3 0 90", r"1 of 7 videos in train.txt/test.txt have no feature file .*'Clubs_001'"),
])
def test_bad_label_lines(tiny, line, message):
    with open(tiny / "train.txt", "a") as handle:
        handle.write(line + "\n")
    with pytest.raises(S4AQAError, match=message):
        rg.read(tiny)


def test_missing_files_and_folders(tiny, tmp_path):
    with pytest.raises(S4AQAError, match="elsewhere: features folder not found"):
        rg.read(tiny, features=tmp_path / "elsewhere")
    (tiny / "test.txt").write_text(HEADER)
    with pytest.raises(S4AQAError, match="test.txt: has a header but no routines"):
        rg.read(tiny)
    (tiny / "train.txt").unlink()
    with pytest.raises(S4AQAError, match="train.txt: label file not found"):
        rg.read(tiny)


def test_broken_feature_file_is_named(tiny, bad_npy, bad_npy_kind):
    bad_npy(tiny / "Hoop_002.npy", bad_npy_kind, dim=4)
    with pytest.raises(S4AQAError, match=r"Hoop_002\.npy"):
        rg.read(tiny)


def test_arguments_are_checked(tiny):
    with pytest.raises(S4AQAError, match="no task 'ribbon'; choose one of Ball, Hoop"):
        rg.read(tiny, task="ribbon")
    with pytest.raises(S4AQAError, match="choose one of total, difficulty, execution"):
        rg.read(tiny, target="penalty")


def _label_file(names):
    number = st.sampled_from(["9.1", "7", "0.00", "x"])
    rows = st.lists(st.tuples(st.sampled_from(names), number, number, number, number, st.just("90")),
                    min_size=1, max_size=3, unique_by=lambda row: row[0])
    return rows.map(lambda rows: HEADER + "".join("\t".join(row) + "\n" for row in rows))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_label_files_give_a_featureset_or_a_clean_error(tmp_path, save_npy, text_variants, data):
    for name in ("Ball_001", "Hoop_001", "Clubs_001"):
        save_npy(tmp_path / f"{name}.npy", np.ones((3, 2), dtype=np.float32))
    (tmp_path / "train.txt").write_bytes(data.draw(text_variants(_label_file(["Ball_001", "Hoop_001"]))))
    (tmp_path / "test.txt").write_bytes(data.draw(text_variants(_label_file(["Clubs_001", "Ribbon_001"]))))
    try:
        result = rg.read(tmp_path, segments=2)
    except S4AQAError as error:
        assert str(error)
    else:
        assert isinstance(result, FeatureSet)
