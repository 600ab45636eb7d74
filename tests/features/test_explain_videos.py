"""`s4aqa explain` on raw videos: extracted as `score` does, each segment with its time span."""

import csv

import numpy as np
from features_testkit import CROP, RESIZE, write_video
from safetensors.torch import save_file

from s4aqa.cli import main


def test_explain_raw_videos_gives_time_spans(tmp_path, tiny_i3d, capsys):
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_i3d.state_dict().items()}, str(weights))
    videos = [write_video(tmp_path / f"v{i}.mp4", 20, 48, 40, seed=i) for i in range(6)]
    feats = tmp_path / "feats"
    assert main(["extract", *map(str, videos), "--out", str(feats), "--segments", "uniform:3",
                 "--weights", str(weights), "--resize", str(RESIZE), "--crop", str(CROP),
                 "--no-progress"]) == 0
    rows = ["id,score,split"] + [f"v{i},{i * 1.5},{'test' if i == 5 else 'train'}" for i in range(6)]
    (feats / "scores.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--root", str(feats), "--method", "aa",
                 "--label-ratio", "1", "--val-fraction", "0", "--set", "steps=5",
                 "--out", str(run)]) == 0
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    out = tmp_path / "explained"
    capsys.readouterr()
    assert main(["explain", str(videos[5]), str(broken), "--run", str(run), "--weights",
                 str(weights), "--out", str(out), "--top", "1"]) == 0
    captured = capsys.readouterr()
    assert "skipped broken" in captured.err and "v5: predicted" in captured.out
    with open(out / "segments.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["segment"] for r in table] == ["0", "1", "2"]
    starts = np.array([float(r["start_s"]) for r in table])
    ends = np.array([float(r["end_s"]) for r in table])
    assert starts[0] == 0 and np.all(np.diff(starts) > 0) and np.all(ends > starts)
    assert (out / "v5.png").is_file()
