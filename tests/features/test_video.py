"""Decoding with PyAV and cutting videos into clips."""

from __future__ import annotations

import numpy as np
import pytest
from features_testkit import CROP, RESIZE, write_video

from s4aqa.errors import S4AQAError
from s4aqa.features import video as V
from s4aqa.features.segments import MTL_STARTS, SegmentSpec

# --------------------------------------------------------------------------- segment specs


@pytest.mark.parametrize("text, canonical", [
    ("mtl", "mtl"), ("MTL", "mtl"), ("uniform:10", "uniform:10"), ("stride:8", "stride:8"),
    ("uniform:5,clip=8", "uniform:5,clip=8"), ("stride:16, clip=16", "stride:16"),
])
def test_parse_segments(text, canonical):
    spec = SegmentSpec.parse(text)
    assert str(spec) == canonical
    assert SegmentSpec.parse(str(spec)) == spec


@pytest.mark.parametrize("text", ["", "uniform", "uniform:0", "uniform:x", "stride:-2", "mtl:3",
                                  "mtl,clip=8", "sliding:4", "uniform:4,clip=0", "uniform:4,len=8"])
def test_bad_segments_are_user_errors(text):
    with pytest.raises(S4AQAError):
        SegmentSpec.parse(text)


def test_mtl_convention():
    spec = SegmentSpec.parse("mtl")
    idx = spec.frame_indices(103)
    assert idx.shape == (10, 16)
    assert idx[:, 0].tolist() == list(MTL_STARTS) == [0, 10, 20, 30, 40, 50, 60, 70, 80, 87]
    assert idx[-1].tolist() == list(range(87, 103))
    # longer videos are sampled to 103 frames first, evenly over the whole video
    long = spec.frame_indices(205)
    assert long[0, :3].tolist() == [0, 2, 4] and long[-1, -1] == 204


def test_uniform_and_stride():
    uniform = SegmentSpec.parse("uniform:3").frame_indices(100)
    assert uniform[:, 0].tolist() == [0, 42, 84] and uniform[-1, -1] == 99
    assert SegmentSpec.parse("uniform:1").starts(40) == [12]
    assert SegmentSpec.parse("uniform:4").starts(16) == [0, 0, 0, 0]  # overlap when short
    stride = SegmentSpec.parse("stride:8").frame_indices(40)
    assert stride[:, 0].tolist() == [0, 8, 16, 24]
    assert (np.diff(stride, axis=1) == 1).all()
    assert SegmentSpec.parse("stride:4,clip=8").num_clips(20) == 4


def test_too_short_names_frames_and_need():
    with pytest.raises(S4AQAError, match=r"clip\.mp4: too short: 12 frames.*at least 16"):
        SegmentSpec.parse("uniform:10").check(12, "clip.mp4")


# --------------------------------------------------------------------------- decoding


def test_probe_and_read_counts(videos):
    info = V.probe(videos["a"])
    assert (info.frames, info.width, info.height, info.fps) == (40, 64, 48, 25.0)
    assert V.probe(videos["b"]).fps == 7.0
    assert V.probe(videos["ntsc"]).fps == pytest.approx(29.97, abs=0.01)
    frames, info = V.read_frames(videos["odd"], resize=RESIZE, crop=CROP)
    assert frames.shape == (18, CROP, CROP, 3) and frames.dtype == np.uint8 and info.frames == 18


def test_read_clips_follows_the_spec(videos):
    clips, info = V.read_clips(videos["a"], "stride:8", resize=RESIZE, crop=CROP)
    assert clips.shape == (4, 16, CROP, CROP, 3) and info.frames == 40
    frames, _ = V.read_frames(videos["a"], resize=RESIZE, crop=CROP)
    np.testing.assert_array_equal(clips[1], frames[8:24])
    np.testing.assert_array_equal(clips[3], frames[24:40])
    mtl, _ = V.read_clips(videos["a"], "mtl", resize=RESIZE, crop=CROP)
    idx = SegmentSpec.parse("mtl").frame_indices(40)
    np.testing.assert_array_equal(mtl, frames[idx])


def test_resize_crop_geometry():
    assert V.resize_crop_size(97, 61, 256, 224) == (407, 256, 91, 16)
    assert V.resize_crop_size(1920, 1080, 256, 224) == (455, 256, 115, 16)
    assert V.resize_crop_size(20, 12, 40, 32) == (67, 40, 17, 4)      # smaller than the crop: upscaled
    assert V.resize_crop_size(224, 224, 224, 224) == (224, 224, 0, 0)


def test_odd_sized_frames_are_centre_cropped(tmp_path):
    path = write_video(tmp_path / "split.gif", 16, 97, 61, codec="gif", pattern="split")
    frames, info = V.read_frames(path, resize=RESIZE, crop=CROP)
    assert (info.width, info.height) == (97, 61)
    assert frames.shape == (16, CROP, CROP, 3)
    row = frames[0, CROP // 2, :, 0].astype(int)
    assert (row[: CROP // 2 - 2] < 30).all() and (row[CROP // 2 + 2:] > 225).all()  # the split stays centred
    tiny = write_video(tmp_path / "tiny.mov", 16, 20, 12, codec="png")  # smaller than the crop
    frames, _ = V.read_frames(tiny, resize=RESIZE, crop=CROP)
    assert frames.shape == (16, CROP, CROP, 3)


def test_too_short_video(videos):
    with pytest.raises(S4AQAError, match=r"short\.mp4: too short: 5 frames.*at least 16"):
        V.read_clips(videos["short"], "uniform:4", resize=RESIZE, crop=CROP)


def test_unreadable_files(tmp_path, videos):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 20)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(videos["a"].read_bytes()[:600])
    for path, pattern in [(bad, "cannot read"), (empty, "empty"), (tmp_path / "missing.mp4", "not found"),
                          (truncated, "truncated.mp4")]:
        with pytest.raises(S4AQAError, match=pattern):
            V.read_clips(path, "uniform:2", resize=RESIZE, crop=CROP)


def test_wrong_frame_count_from_container_is_corrected(videos, monkeypatch):
    """When the container's count is wrong the clips are planned again on the decoded count."""
    expected, _ = V.read_clips(videos["a"], "uniform:3", resize=RESIZE, crop=CROP)
    real_probe = V.probe

    for wrong in (30, 55, 3):
        def lying_probe(path, wrong=wrong):
            info = real_probe(path)
            info.frames = wrong
            return info

        monkeypatch.setattr(V, "probe", lying_probe)
        reader = V.ClipReader(videos["a"], "uniform:3", resize=RESIZE, crop=CROP)
        items = list(reader)
        assert V.RESTART in items and reader.info.frames == 40
        clips, info = V.read_clips(videos["a"], "uniform:3", resize=RESIZE, crop=CROP)
        np.testing.assert_array_equal(clips, expected)


def test_find_videos(tmp_path, videos):
    (tmp_path / "notes.txt").write_text("x")
    write_video(tmp_path / "z.mp4", 16)
    found = V.find_videos([tmp_path, videos["a"]])
    assert [p.name for p in found] == ["z.mp4", "a.mp4"]


def test_mtl_segments_say_when_a_short_video_is_stretched():
    from s4aqa.features.segments import SegmentSpec
    assert "40 frames, fewer than the 103" in SegmentSpec.parse("mtl").stretched(40)
    assert SegmentSpec.parse("mtl").stretched(103) is None
    assert SegmentSpec.parse("uniform:4").stretched(40) is None
