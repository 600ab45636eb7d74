"""Shared reader helpers: .npy loading, text files, arguments."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.data.formats import _common as common
from s4aqa.data.formats import load_dataset
from s4aqa.errors import S4AQAError


def test_load_npy_converts_any_numeric_dtype_to_float32_and_keeps_float16(tmp_path, save_npy):
    for dtype in (np.float16, np.float64, np.int32, np.uint8, bool):
        path = save_npy(tmp_path / f"{np.dtype(dtype).name}.npy", np.ones((3, 4), dtype=dtype))
        array = common.load_npy(path)
        expected = np.float16 if dtype is np.float16 else np.float32
        assert array.dtype == expected and array.shape == (3, 4)


def test_load_stacked_fills_one_array_or_falls_back_to_a_list(tmp_path, save_npy):
    rng = np.random.default_rng(0)
    same = [save_npy(tmp_path / f"s{i}.npy", rng.standard_normal((3, 4)).astype(np.float16))
            for i in range(4)]
    stacked = common.load_stacked(same)
    assert isinstance(stacked, np.ndarray) and stacked.shape == (4, 3, 4)
    assert stacked.dtype == np.float16
    assert all(np.array_equal(stacked[i], np.load(p)) for i, p in enumerate(same))
    odd = save_npy(tmp_path / "odd.npy", np.ones((5, 4), dtype=np.float16))
    mixed = common.load_stacked(same[:2] + [odd] + same[2:])
    assert isinstance(mixed, list) and [a.shape[0] for a in mixed] == [3, 3, 5, 3, 3]
    assert np.array_equal(mixed[3], np.load(same[2]))


def test_load_npy_reads_a_vector_as_one_segment_only_when_allowed(tmp_path, save_npy):
    path = save_npy(tmp_path / "v.npy", np.arange(5.0))
    assert common.load_npy(path, allow_vector=True).shape == (1, 5)
    with pytest.raises(S4AQAError, match=r"v\.npy.*shape \(5,\), expected \(T, D\)"):
        common.load_npy(path)


def test_load_npy_refuses_every_kind_of_broken_file(tmp_path, bad_npy, bad_npy_kind):
    path = bad_npy(tmp_path / "broken.npy", bad_npy_kind)
    with pytest.raises(S4AQAError, match=r"broken\.npy"):
        common.load_npy(path)


def test_load_npy_refuses_npz_archives_and_empty_arrays(tmp_path, save_npy):
    archive = tmp_path / "a.npy"
    with open(archive, "wb") as handle:
        np.savez(handle, x=np.ones((2, 2)))
    with pytest.raises(S4AQAError, match="npz archive"):
        common.load_npy(archive)
    with pytest.raises(S4AQAError, match="empty"):
        common.load_npy(save_npy(tmp_path / "e.npy", np.ones((0, 4))))


def test_read_text_errors_name_the_file(tmp_path):
    with pytest.raises(S4AQAError, match="missing.txt: label file not found"):
        common.read_text(tmp_path / "missing.txt", "label", "hint")
    (tmp_path / "empty.txt").write_text(" \n\n")
    with pytest.raises(S4AQAError, match="empty.txt: the label file is empty"):
        common.read_text(tmp_path / "empty.txt", "label", "hint")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(S4AQAError, match="binary.txt: the label file is not UTF-8"):
        common.read_text(tmp_path / "binary.txt", "label", "hint")
    with pytest.raises(S4AQAError, match="is a folder"):
        common.read_text(tmp_path, "label", "hint")


def test_read_text_drops_a_byte_order_mark(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeffid,score\n".encode())
    assert common.read_text(tmp_path / "bom.txt", "label", "hint").startswith("id")


@pytest.mark.parametrize("text", ["abc", "nan", "inf", "-Infinity", "1e999", ""])
def test_parse_number_refuses_non_finite_and_non_numeric_text(text):
    with pytest.raises(S4AQAError, match="f.txt line 3: score"):
        common.parse_number(text, "f.txt line 3", "score")


@pytest.mark.parametrize("segments", [0, -3, 2.5, "8", True])
def test_check_segments_refuses_non_positive_or_non_integer(segments):
    with pytest.raises(S4AQAError, match="segments"):
        common.check_segments(segments, 4)


def test_check_segments_default_and_value():
    assert common.check_segments(None, 32) == 32
    assert common.check_segments(np.int64(7), 32) == 7


def test_choose_target_is_case_insensitive_and_lists_choices():
    assert common.choose_target("PCS", ("tes", "pcs"), "tes", "fisv") == "pcs"
    with pytest.raises(S4AQAError, match="choose one of tes, pcs"):
        common.choose_target("goe", ("tes", "pcs"), "tes", "fisv")


@pytest.mark.parametrize("video_id", ["", "..", "a/b", "a\\b", "a\x00b", "x" * 300])
def test_check_file_name_refuses_ids_that_cannot_be_file_stems(video_id):
    with pytest.raises(S4AQAError, match="cannot be a file name"):
        common.check_file_name(video_id, "scores.csv line 2")


def test_locate_features_lists_a_few_missing_ids_and_the_count(tmp_path, save_npy):
    save_npy(tmp_path / "a.npy", np.ones((2, 2)))
    ids = ["a"] + [f"m{i}" for i in range(8)]
    with pytest.raises(S4AQAError, match=r"8 of 9 videos in labels.txt .*'m0', 'm1'.* and 3 more"):
        common.locate_features(ids, tmp_path, lambda i: [f"{i}.npy"], "demo", "labels.txt")


def test_load_dataset_refuses_unknown_names_and_missing_roots(tmp_path):
    with pytest.raises(S4AQAError, match="unknown dataset"):
        load_dataset("nope", tmp_path)
    with pytest.raises(S4AQAError, match="dataset folder not found"):
        load_dataset("fisv", tmp_path / "absent")
