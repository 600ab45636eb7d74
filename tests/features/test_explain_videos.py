"""`s4aqa explain` on raw videos: extracted as `score` does, each segment with its time span."""

import csv

import numpy as np
from features_testkit import trained_video_run

from s4aqa.cli import main


def test_explain_raw_videos_gives_time_spans(tmp_path, tiny_i3d, capsys):
    weights, videos, run, broken = trained_video_run(tmp_path, tiny_i3d, "uniform:3")
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
