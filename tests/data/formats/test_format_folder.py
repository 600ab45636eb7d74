"""The 'folder' reader: scores.csv beside <id>.npy files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import folder, load_dataset
from s4aqa.errors import S4AQAError


@pytest.fixture
def dataset(tmp_path, save_npy, random_features):
    """Five videos a..e of (6, 4) features; scores.csv written by each test."""
    for video_id, array in zip("abcde", random_features(5, dim=4, lengths=(6, 6))):
        save_npy(tmp_path / f"{video_id}.npy", array)

    def write(text: str):
        (tmp_path / "scores.csv").write_text(text)
        return tmp_path

    return write


FULL = "id,score,split,group\na,1.5,train,ball\nb,2,train,hoop\nc,3,TEST,ball\nd,,test,hoop\n"


def test_reads_ids_scores_splits_groups_and_keeps_native_segments(dataset):
    features = folder.read(dataset(FULL), unlisted="ignore")
    assert features.ids == ["a", "b", "c", "d"]  # e.npy has no line: kept out
    assert features.features.shape == (4, 6, 4)
    assert list(features.split) == ["train", "train", "test", "test"]
    assert list(features.groups) == ["ball", "hoop", "ball", "hoop"]
    np.testing.assert_array_equal(features.scores[:3], [1.5, 2, 3])
    assert np.isnan(features.scores[3])  # a test video to be scored
    np.testing.assert_array_equal(features.meta["length"], [6, 6, 6, 6])


def test_a_feature_file_with_no_line_is_an_unlabeled_training_video(dataset):
    features = folder.read(dataset(FULL))
    assert features.ids == ["a", "b", "c", "d", "e"]
    assert features.split[4] == "train" and np.isnan(features.scores[4])
    assert features.groups[4] == ""
    np.testing.assert_array_equal(features.meta["unlisted"], [0, 0, 0, 0, 1])
    # with --task the unlisted files belong to no group: left out
    assert load_dataset("folder", dataset(FULL), task="ball").ids == ["a", "c"]


def test_an_empty_training_score_is_an_unlabeled_video(dataset):
    features = folder.read(dataset("id,score,split\na,1,train\nb,,train\nc,2,test\n"),
                           unlisted="ignore")
    assert list(features.split) == ["train", "train", "test"]
    assert np.isnan(features.scores[1]) and not features.scored[1]
    np.testing.assert_array_equal(features.meta["unlisted"], [0, 0, 0])


def test_unlisted_choice_is_checked(dataset):
    with pytest.raises(S4AQAError, match="--unlisted keep: use one of unlabeled, ignore"):
        folder.read(dataset(FULL), unlisted="keep")
    with pytest.raises(S4AQAError, match="--unlisted ignore: dataset 'synthetic'"):
        load_dataset("synthetic", unlisted="ignore")


def test_through_the_registry_with_task_and_segments(dataset):
    features = load_dataset("folder", dataset(FULL), task="Ball", segments=3)
    assert features.ids == ["a", "c"] and features.features.shape == (2, 3, 4)


def test_without_split_column_every_video_is_train(dataset):
    features = folder.read(dataset("ID , Score\na,1\nb,2\n"), unlisted="ignore")
    assert list(features.split) == ["train", "train"]
    assert not features.has_groups


def test_tab_separated_with_bom_and_blank_lines(dataset):
    root = dataset("\ufeffscore\tid\n\n1\ta\n\n2\tb\n")
    assert folder.read(root, unlisted="ignore").ids == ["a", "b"]


def test_excel_csv_with_bom_crlf_and_semicolons(dataset):
    """What Excel writes for 'CSV UTF-8' in a comma-decimal locale: a BOM, CRLF line ends and
    semicolons (issue 36: accepted, and kept tested)."""
    root = dataset("\ufeffid;score;split\r\na;1.5;train\r\nb;;train\r\nc;3;test\r\n")
    features = folder.read(root, unlisted="ignore")
    assert features.ids == ["a", "b", "c"] and list(features.split) == ["train", "train", "test"]
    np.testing.assert_array_equal(features.scores[[0, 2]], [1.5, 3.0])
    assert np.isnan(features.scores[1])


def test_features_folder_elsewhere(tmp_path, save_npy):
    save_npy(tmp_path / "feats" / "x.npy", np.ones((2, 3)))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "scores.csv").write_text("id,score\nx,4\n")
    assert folder.read(tmp_path / "labels", features=str(tmp_path / "feats")).dim == 3


def test_different_lengths_need_segments(tmp_path, save_npy):
    save_npy(tmp_path / "a.npy", np.ones((3, 2)))
    save_npy(tmp_path / "b.npy", np.ones((5, 2)))
    (tmp_path / "scores.csv").write_text("id,score\na,1\nb,2\n")
    with pytest.raises(S4AQAError, match="3..5 segments; pass a fixed number of segments"):
        folder.read(tmp_path)
    assert folder.read(tmp_path, segments=4).features.shape == (2, 4, 2)


def test_different_dimensions_are_refused(tmp_path, save_npy):
    save_npy(tmp_path / "a.npy", np.ones((3, 2)))
    save_npy(tmp_path / "b.npy", np.ones((3, 5)))
    (tmp_path / "scores.csv").write_text("id,score\na,1\nb,2\n")
    with pytest.raises(S4AQAError, match="video 'b' has features of dimension 5"):
        folder.read(tmp_path)


@pytest.mark.parametrize("text, message", [
    ("score\n1\n", r"line 1: the first line must be the header"),
    ("a,1\nb,2\n", r"line 1: the first line must be the header"),
    ("id,score,spilt\na,1,test\n", r"line 1: unknown column 'spilt'"),
    ("id,score,score\na,1,2\n", r"column 'score' appears twice"),
    ("id,score\n", r"has a header but no videos"),
    ("id,score\na,good\n", r"line 2: score is 'good', not a number"),
    ("id,score\na,nan\n", r"line 2: score is 'nan'"),
    ("id,score,split\na,1,val\n", r"line 2: split is 'val'; use train or test"),
    ("id,score\na,1,2\n", r"line 2: 3 values but the header has 2 columns"),
    ("id,score\na,1\nb,2\na,3\n", r"video id 'a' appears twice \(line 2 and line 4\)"),
    ("id,score\n../a,1\n", r"line 2: video id '../a' cannot be a file name"),
    ('id,score\n"a,1\n', r"line 2: not valid CSV"),
])
def test_label_file_errors_name_the_file_and_line(dataset, text, message):
    with pytest.raises(S4AQAError, match=message) as error:
        folder.read(dataset(text))
    assert "scores.csv" in str(error.value)


def test_missing_and_empty_score_table(tmp_path):
    with pytest.raises(S4AQAError, match="scores.csv: score table file not found; write scores.csv"):
        folder.read(tmp_path)
    (tmp_path / "scores.csv").write_text("\n \n")
    with pytest.raises(S4AQAError, match="scores.csv: the score table file is empty"):
        folder.read(tmp_path)


def test_missing_feature_files_are_listed_with_their_count(dataset):
    root = dataset("id,score\na,1\nq,2\nr,3\n")
    with pytest.raises(S4AQAError, match=r"2 of 3 videos in scores.csv have no feature file.*'q', 'r'"):
        folder.read(root)


def test_missing_features_folder(dataset, tmp_path):
    with pytest.raises(S4AQAError, match="nowhere: features folder not found"):
        folder.read(dataset(FULL), features=tmp_path / "nowhere")


def test_broken_feature_file_is_named(dataset, bad_npy, bad_npy_kind):
    root = dataset(FULL)
    bad_npy(root / "c.npy", bad_npy_kind, dim=4)
    with pytest.raises(S4AQAError, match=r"c\.npy"):
        folder.read(root)


def test_task_and_target_arguments(dataset):
    with pytest.raises(S4AQAError, match="no group column"):
        folder.read(dataset("id,score\na,1\n"), task="ball")
    with pytest.raises(S4AQAError, match="no task 'ribbon'; choose one of ball, hoop"):
        folder.read(dataset(FULL), task="ribbon")
    with pytest.raises(S4AQAError, match="one score column"):
        folder.read(dataset(FULL), target="tes")
    assert len(folder.read(dataset(FULL), target="score", unlisted="ignore")) == 4


# ---- property: any bytes in scores.csv give a FeatureSet or an S4AQAError, nothing else ----------
VALID_TABLE = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from(["1", "2.5", "-3", "", "x"]),
              st.sampled_from(["train", "test", "Test"]), st.sampled_from(["g", "h", ""])),
    min_size=1, max_size=4, unique_by=lambda row: row[0],
).map(lambda rows: "id,score,split,group\n" + "".join(",".join(row) + "\n" for row in rows))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_score_table_gives_a_featureset_or_a_clean_error(tmp_path, save_npy, text_variants, data):
    for video_id in "abc":
        save_npy(tmp_path / f"{video_id}.npy", np.ones((2, 3), dtype=np.float32))
    (tmp_path / "scores.csv").write_bytes(data.draw(text_variants(VALID_TABLE)))
    try:
        result = folder.read(tmp_path)
    except S4AQAError as error:
        assert str(error)
    else:
        assert isinstance(result, FeatureSet)
