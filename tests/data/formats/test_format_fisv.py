"""The Fis-V reader (GDLT layout)."""

from __future__ import annotations

import format_examples as examples
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.formats import fisv, load_dataset
from s4aqa.errors import S4AQAError


@pytest.fixture(scope="module")
def real_fisv(shared_data):
    return load_dataset("fisv", shared_data / "fisv")


@pytest.mark.shared_data
def test_real_fisv_has_the_official_split_and_32_pooled_segments(real_fisv, shared_data):
    assert len(real_fisv) == 500
    assert (real_fisv.split == "train").sum() == 400 and (real_fisv.split == "test").sum() == 100
    assert real_fisv.features.shape == (500, 32, 1024) and real_fisv.features.dtype == np.float32
    assert 124 <= real_fisv.meta["length"].min() and real_fisv.meta["length"].max() <= 302
    assert 6 < real_fisv.scores.min() and real_fisv.scores.max() < 43  # TES 6.3..42.8
    first = (shared_data / "fisv" / "train.txt").read_text().split()
    assert real_fisv.ids[0] == first[0] and real_fisv.scores[0] == float(first[1])
    np.testing.assert_allclose(real_fisv.meta["pcs"][0], float(first[2]))
    assert not real_fisv.has_groups


@pytest.mark.shared_data
def test_real_fisv_total_is_tes_plus_pcs(real_fisv, shared_data):
    total = fisv.read(shared_data / "fisv", target="TOTAL", segments=4)
    np.testing.assert_allclose(total.scores, real_fisv.meta["tes"] + real_fisv.meta["pcs"])
    assert total.num_segments == 4


@pytest.fixture
def tiny(tmp_path):
    """Fis-V layout with ids 1..6 (4 train, 2 test) and 40..60 clips of dimension 8."""
    return examples.fisv(tmp_path)


def test_tiny_fisv(tiny):
    features = fisv.read(tiny)
    assert features.ids == ["1", "3", "5", "6", "2", "4"]
    assert list(features.split) == ["train"] * 4 + ["test"] * 2
    assert features.features.shape == (6, 32, 8)
    np.testing.assert_array_equal(features.scores, [20.5, 30, 12, 15.5, 22, 31])
    assert np.isnan(features.meta["deductions"][-1])  # the fourth column is optional
    pcs = fisv.read(tiny, target="pcs", segments=50)
    np.testing.assert_array_equal(pcs.scores, [25.1, 28, 19, 20, 26, 30])
    assert pcs.num_segments == 50  # shorter videos are interpolated


def test_features_argument_points_elsewhere(tiny):
    (tiny / fisv.FEATURE_FOLDER).rename(tiny / "other")
    with pytest.raises(S4AQAError, match="swintx_avg_fps25_clip32: features folder not found"):
        fisv.read(tiny)
    assert len(fisv.read(tiny, features=tiny / "other")) == 6


@pytest.mark.parametrize("line, message", [
    ("7 20", r"train.txt line 6: 2 columns"),
    ("7 20 21 0 9", r"train.txt line 6: 5 columns"),
    ("7 twenty 21", r"train.txt line 6: TES is 'twenty', not a number"),
    ("7 20 inf", r"train.txt line 6: PCS is 'inf'"),
    ("2 20 21", r"video id '2' appears twice \(train.txt line 6 and test.txt line 1\)"),
    ("3 20 21", r"video id '3' appears twice \(train.txt line 2 and train.txt line 6\)"),
    ("7 20 21", r"1 of 7 videos in train.txt/test.txt have no feature file .*'7'"),
])
def test_bad_label_lines(tiny, line, message):
    with open(tiny / "train.txt", "a") as handle:
        handle.write(line + "\n")
    with pytest.raises(S4AQAError, match=message):
        fisv.read(tiny)


def test_missing_or_empty_label_files(tiny):
    (tiny / "test.txt").write_text("")
    with pytest.raises(S4AQAError, match="test.txt: the label file is empty"):
        fisv.read(tiny)
    (tiny / "test.txt").unlink()
    with pytest.raises(S4AQAError, match="test.txt: label file not found"):
        fisv.read(tiny)


def test_broken_feature_file_is_named(tiny, bad_npy, bad_npy_kind):
    bad_npy(tiny / fisv.FEATURE_FOLDER / "5.npy", bad_npy_kind)
    with pytest.raises(S4AQAError, match=r"5\.npy"):
        fisv.read(tiny)


def test_arguments_are_checked(tiny):
    with pytest.raises(S4AQAError, match="unknown target 'goe'; choose one of tes, pcs, total"):
        fisv.read(tiny, target="goe")
    with pytest.raises(S4AQAError, match="drop --task"):
        fisv.read(tiny, task="men")
    with pytest.raises(S4AQAError, match="segments must be"):
        fisv.read(tiny, segments=0)


def _label_file(ids):
    """Valid label lines for some of ``ids``."""
    number = st.sampled_from(["20.5", "7", "-1", "1e3", "nan"])
    return st.lists(st.tuples(st.sampled_from(ids), number, number, st.sampled_from(["", " 0", " 2"])),
                    min_size=1, max_size=3, unique_by=lambda row: row[0]).map(
        lambda rows: "".join(f"{i} {tes} {pcs}{ded}\n" for i, tes, pcs, ded in rows))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_label_files_give_a_featureset_or_a_clean_error(tmp_path, save_npy, text_variants, data):
    for video_id in (1, 2, 3, 4):
        save_npy(tmp_path / fisv.FEATURE_FOLDER / f"{video_id}.npy", np.ones((5, 2), dtype=np.float16))
    (tmp_path / "train.txt").write_bytes(data.draw(text_variants(_label_file(["1", "2"]))))
    (tmp_path / "test.txt").write_bytes(data.draw(text_variants(_label_file(["3", "4", "9"]))))
    try:
        result = fisv.read(tmp_path, segments=2)
    except S4AQAError as error:
        assert str(error)
    else:
        assert isinstance(result, FeatureSet)
