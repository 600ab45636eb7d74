"""`s4aqa classify`: the Kinetics-400 top-5 of the I3D backbone, and its class names."""

from __future__ import annotations

import zipfile

import pytest
from features_testkit import write_video

from s4aqa.cli import main
from s4aqa.errors import S4AQAError
from s4aqa.features import kinetics
from s4aqa.features import weights as W


def _wheel(path, names):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(kinetics.WHEEL_MEMBER, f"_KINETICS400_CATEGORIES = {names!r}\n"
                                                "raise SystemExit('never run')\n")
    return path


@pytest.mark.shared_data
def test_class_names_come_from_a_wheel_checked_against_their_hash(shared_data, tmp_path,
                                                                  monkeypatch):
    names = kinetics.read_label_file(shared_data / "kinetics_sample" / "label_map.txt")
    assert kinetics.labels_from_wheel(_wheel(tmp_path / "tv.whl", names)) == names
    with pytest.raises(S4AQAError, match="not the 400"):
        kinetics.labels_from_wheel(_wheel(tmp_path / "bad.whl", names[:-1] + ["zumba!"]))
    monkeypatch.setenv(W.CACHE_ENV, str(tmp_path / "cache"))
    path = kinetics.fetch_labels(tmp_path / "tv.whl", log=lambda _: None)
    assert kinetics.read_label_file(path) == names


def test_classify_prints_the_top_classes(tmp_path, tiny_i3d, capsys):
    from safetensors.torch import save_file

    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_i3d.state_dict().items()}, str(weights))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class number {i}" for i in range(400)) + "\n")
    video = write_video(tmp_path / "v.mp4", 20, 64, 48)
    assert main(["classify", str(video), "--weights", str(weights), "--labels", str(labels),
                 "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("% " in line and "class number" in line for line in lines)
    assert main(["classify", str(tmp_path / "missing.mp4"), "--weights", str(weights)]) == 2


def test_a_long_video_is_classified_from_clips(tmp_path, tiny_i3d, monkeypatch):
    monkeypatch.setattr(kinetics, "WHOLE_VIDEO", 10)  # so 20 frames count as long
    monkeypatch.setattr(kinetics, "load_i3d", lambda weights, device: tiny_i3d)
    top = kinetics.classify(write_video(tmp_path / "v.mp4", 12, 64, 48), top=400)
    assert len(top) == 400 and abs(sum(p for _, p in top) - 1) < 1e-4


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_cricket_clip_is_playing_cricket(shared_data, capsys):
    if not W.default_weights_path().is_file():
        pytest.skip(f"I3D weights not cached at {W.default_weights_path()}; run `s4aqa weights`")
    sample = shared_data / "kinetics_sample"
    assert main(["classify", str(sample / "cricket_rgb.gif"), "--labels",
                 str(sample / "label_map.txt")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("playing cricket") and float(first.split("%")[0]) > 95
