"""Raw videos to scores: extract → train → score with the CLI, on videos the test writes."""

import csv

import numpy as np
from features_testkit import CROP, RESIZE, trained_video_run, write_video
from safetensors.torch import save_file

from s4aqa.cli import main


def test_extract_train_score(tmp_path, tiny_i3d, capsys):
    weights, videos, run, broken = trained_video_run(tmp_path, tiny_i3d, "uniform:2")
    out = tmp_path / "scores.csv"
    code = main(["score", str(videos[5]), str(broken), "--run", str(run),
                 "--weights", str(weights), "--out", str(out)])
    assert code == 1  # the broken video is reported, the other one scored
    assert "skipped broken" in capsys.readouterr().err
    with open(out) as handle:
        scored = {row["id"]: float(row["predicted"]) for row in csv.DictReader(handle)}
    with open(run / "predictions.csv") as handle:
        trained = {row["id"]: float(row["predicted"]) for row in csv.DictReader(handle)}
    # the same video, extracted with the options recorded for the run, scores the same
    assert scored.keys() == {"v5"}
    np.testing.assert_allclose(scored["v5"], trained["v5"], rtol=1e-4, atol=1e-4)


def test_score_takes_folders_and_checks_segments_once(tmp_path, tiny_i3d, capsys):
    import pytest
    
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_i3d.state_dict().items()}, str(weights))
    folder = tmp_path / "videos"
    folder.mkdir()
    videos = [write_video(folder / f"v{i}.mp4", 20, 48, 40, seed=i) for i in range(4)]
    feats = tmp_path / "feats"
    assert main(["extract", str(folder), "--out", str(feats), "--segments", "uniform:2",
                 "--weights", str(weights), "--resize", str(RESIZE), "--crop", str(CROP),
                 "--no-progress"]) == 0
    rows = ["id,score,split"] + [f"v{i},{i},{'test' if i == 3 else 'train'}" for i in range(4)]
    (feats / "scores.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--root", str(feats), "--method", "aa", "--label-ratio", "1",
                 "--set", "steps=3", "--out", str(run)]) == 0
    out = tmp_path / "scored.csv"
    assert main(["score", str(folder), "--run", str(run), "--weights", str(weights),
                 "--out", str(out)]) == 0
    with open(out) as handle:
        assert sorted(row["id"] for row in csv.DictReader(handle)) == [v.stem for v in videos]
    with pytest.raises(SystemExit) as stop:  # a usage error, before any video is read
        main(["score", str(folder), "--run", str(run), "--segments", "uniform:zero"])
    assert stop.value.code == 2 and "uniform" in capsys.readouterr().err
