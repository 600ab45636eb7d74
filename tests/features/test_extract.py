"""Extraction to a features folder: shapes, batching across videos, failures, resume, the CLI commands."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from features_testkit import CROP, RESIZE, write_video

from s4aqa.errors import S4AQAError
from s4aqa.features import extract as E
from s4aqa.features.segments import SegmentSpec
from s4aqa.features.video import read_clips, to_model_input

SMALL = {"resize": RESIZE, "crop": CROP}


def _direct(model, path, segments):
    clips, _ = read_clips(path, segments, **SMALL)
    with torch.inference_mode():
        return model.features(to_model_input(clips)).numpy()


def test_extract_writes_features_and_reports_failures(tmp_path, videos, tiny_i3d):
    out = tmp_path / "feats"
    lines = []
    summary = E.extract(list(videos.values()), out, segments="uniform:3", model=tiny_i3d, batch_size=2,
                        workers=2, progress=False, log=lines.append, **SMALL)
    assert sorted(summary.done) == ["a", "b", "ntsc", "odd"]
    assert list(summary.failed) == ["short"] and summary.exit_code == 1
    assert len(lines) == 1 and "short.mp4: too short: 5 frames" in lines[0] and "\n" not in lines[0]
    assert summary.clips == 12
    for vid in summary.done:
        feats = np.load(out / f"{vid}.npy")
        assert feats.shape == (3, 1024) and feats.dtype == np.float32
    manifest = json.loads((out / E.MANIFEST).read_text())
    entry = manifest["videos"]["b"]
    assert entry["frames"] == 20 and entry["fps"] == 7.0 and entry["source"] == str(videos["b"].resolve())
    assert entry["size"] == videos["b"].stat().st_size and entry["options"]["segments"] == "uniform:3"
    assert "short" not in manifest["videos"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_batching_across_videos_keeps_clips_in_place(tmp_path, videos, tiny_i3d):
    """Batch size 3 over videos of 4 and 1..2 clips with two decoders: every row lands in its video."""
    paths = [videos["a"], videos["ntsc"], videos["odd"], videos["b"]]
    summary = E.extract(paths, tmp_path, segments="stride:8", model=tiny_i3d, batch_size=3, workers=2,
                        progress=False, **SMALL)
    assert not summary.failed
    for path in paths:
        got = np.load(tmp_path / f"{path.stem}.npy")
        expected = _direct(tiny_i3d, path, "stride:8")
        assert got.shape == expected.shape == (SegmentSpec.parse("stride:8").num_clips(
            {"a": 40, "ntsc": 33, "odd": 18, "b": 20}[path.stem]), 1024)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_second_extract_does_nothing_and_changes_redo(tmp_path, videos, tiny_i3d, monkeypatch):
    out = tmp_path / "feats"
    video = write_video(tmp_path / "clip.mp4", 24)
    paths = [video, videos["odd"]]
    first = E.extract(paths, out, segments="uniform:2", model=tiny_i3d, progress=False, **SMALL)
    assert sorted(first.done) == ["clip", "odd"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def no_model(*args, **kwargs):
        raise AssertionError("nothing should be extracted")

    monkeypatch.setattr(E.ClipRunner, "__call__", no_model)
    again = E.extract(paths, out, segments="uniform:2", model=tiny_i3d, progress=False, **SMALL)
    assert again.done == [] and sorted(again.skipped) == ["clip", "odd"] and again.exit_code == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    monkeypatch.undo()

    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))  # source changed
    changed = E.extract(paths, out, segments="uniform:2", model=tiny_i3d, progress=False, **SMALL)
    assert changed.done == ["clip"] and changed.skipped == ["odd"]
    other = E.extract(paths, out, segments="uniform:3", model=tiny_i3d, progress=False, **SMALL)
    assert sorted(other.done) == ["clip", "odd"]  # other options: redone
    assert np.load(out / "clip.npy").shape == (3, 1024)


def test_video_features_for_scoring(videos, tiny_i3d):
    feats = E.video_features(videos["a"], "mtl", tiny_i3d, "cpu", batch_size=4, **SMALL)
    assert feats.shape == (10, 1024) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, _direct(tiny_i3d, videos["a"], "mtl"), rtol=1e-4, atol=1e-5)
    with pytest.raises(S4AQAError, match="too short"):
        E.video_features(videos["short"], "mtl", tiny_i3d, "cpu", **SMALL)


def test_user_errors(tmp_path, videos, tiny_i3d, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    twin = write_video(other / "a.avi", 16)
    with pytest.raises(S4AQAError, match="share the id 'a'"):
        E.extract([videos["a"], twin], tmp_path / "o", model=tiny_i3d, progress=False, **SMALL)
    with pytest.raises(S4AQAError, match="no videos"):
        E.extract([], tmp_path / "o", model=tiny_i3d)
    with pytest.raises(S4AQAError, match="segments"):
        E.extract([videos["a"]], tmp_path / "o", segments="chunks:3", model=tiny_i3d)
    if not torch.cuda.is_available():
        with pytest.raises(S4AQAError, match="no CUDA"):
            E.extract([videos["a"]], tmp_path / "o", device="cuda", model=tiny_i3d, progress=False, **SMALL)
    monkeypatch.setenv("S4AQA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(S4AQAError, match="s4aqa weights"):
        E.extract([videos["a"]], tmp_path / "o", progress=False, **SMALL)


def _parser():
    from s4aqa.cli import build_parser

    return build_parser()


def test_cli_extract_with_weights_file(tmp_path, videos, tiny_i3d, capsys):
    from safetensors.torch import save_file

    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_i3d.state_dict().items()}, str(weights))
    argv = ["extract", str(videos["a"]), str(videos["short"]), "--out", str(tmp_path / "f"),
            "--segments", "uniform:2", "--weights", str(weights), "--resize", str(RESIZE),
            "--crop", str(CROP), "--batch-size", "2", "--no-progress"]
    args = _parser().parse_args(argv)
    assert args.func(args) == 1  # one video too short
    assert "1 extracted, 0 already done, 1 failed" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(tmp_path / "f" / "a.npy"), _direct(tiny_i3d, videos["a"], "uniform:2"),
                               rtol=1e-4, atol=1e-5)
    args = _parser().parse_args(argv[:2] + argv[3:])
    assert args.func(args) == 0
    assert "0 extracted, 1 already done, 0 failed" in capsys.readouterr().out
    with pytest.raises(S4AQAError, match="batch-size"):
        bad = _parser().parse_args(argv[:2] + argv[3:] + ["--batch-size", "0"])
        bad.func(bad)


def test_cli_weights_from_local_file(tmp_path, monkeypatch):
    from s4aqa.features import weights as W

    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path / "cache"))
    args = _parser().parse_args(["weights", "--from", str(tmp_path / "missing.tar.gz")])
    with pytest.raises(S4AQAError, match="not found"):
        args.func(args)
