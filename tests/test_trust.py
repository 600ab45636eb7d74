"""Numbers a user can trust: runs keyed on the data they read, checked before they train, and
run folders usable from anywhere (issue: a stale resume reported a wrong number)."""

import csv
import json
import os

import numpy as np
import pytest

from s4aqa.cli import main
from s4aqa.training import resume as hooks
from s4aqa.training.resume import Checkpoint
from s4aqa.training.loop import Loop

FAST = ["--set", "steps=40", "--set", "hidden=16", "--set", "feedforward=32", "--set", "heads=2"]


def _write_dataset(root, n=40, split=True, scores=None, t=5, d=6):
    """A folder dataset: scores.csv (with or without a split column) beside <id>.npy files."""
    rng = np.random.default_rng(0)
    root.mkdir(exist_ok=True)
    scores = np.arange(n, dtype=float) if scores is None else scores
    rows = ["id,score,split" if split else "id,score"]
    for i in range(n):
        np.save(root / f"v{i:03d}.npy", (rng.normal(size=(t, d)) + i / 10).astype(np.float32))
        rows.append(f"v{i:03d},{scores[i]}" + (f",{'test' if i % 4 == 0 else 'train'}"
                                               if split else ""))
    (root / "scores.csv").write_text("\n".join(rows) + "\n")
    return root


def _predictions(run):
    with open(run / "predictions.csv") as handle:
        return {row["id"]: float(row["predicted"]) for row in csv.DictReader(handle)}


class _Killed(Exception):
    pass


def _interrupt_after_first_save(monkeypatch):
    saved = Checkpoint.save

    def save_then_die(*args, **kwargs):
        saved(*args, **kwargs)
        raise _Killed

    monkeypatch.setattr(Checkpoint, "save", save_then_die)
    return saved


def test_state_left_by_a_run_on_other_data_is_not_resumed(tmp_path, monkeypatch, capsys):
    """The issue's scenario: state left in --out, the data changes, the same flags run again."""
    data = _write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    argv = ["train", "--dataset", "folder", "--root", str(data), "--method", "aa",
            "--label-ratio", "0.5", *FAST, "--out", str(run)]
    saved = _interrupt_after_first_save(monkeypatch)
    with pytest.raises(_Killed):
        main(argv)
    assert (run / hooks.STATE_FILE).exists()
    monkeypatch.setattr(Checkpoint, "save", saved)
    _write_dataset(data, scores=np.arange(40.0)[::-1] ** 1.5)  # corrected scores, same paths
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "not resuming" in err and "data changed" in err
    fresh = tmp_path / "fresh"
    assert main(argv[:-1] + [str(fresh)]) == 0
    assert _predictions(run) == _predictions(fresh)
    assert json.loads((run / "metrics.json").read_text())["test_spearman"] == \
        json.loads((fresh / "metrics.json").read_text())["test_spearman"]


def test_state_of_the_same_data_resumes_and_fresh_ignores_it(tmp_path, monkeypatch, capsys):
    data = _write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    argv = ["train", "--dataset", "folder", "--root", str(data), "--method", "aa",
            "--label-ratio", "0.5", *FAST, "--out", str(run)]
    saved = _interrupt_after_first_save(monkeypatch)
    with pytest.raises(_Killed):
        main(argv)
    monkeypatch.setattr(Checkpoint, "save", saved)
    found = []
    real_start = Checkpoint.start

    def spy(self, loop):
        found.append(self.path.is_file())
        return real_start(self, loop)

    monkeypatch.setattr(Checkpoint, "start", spy)
    assert main(argv + ["--fresh"]) == 0
    # --fresh removed the state before training; a later member of the ensemble sees the first
    # member's state on disk, saved under another phase, and does not resume it
    assert found[0] is False and len(found) == 2
    assert "not resuming" not in capsys.readouterr().err


def test_no_test_videos_fails_before_training(tmp_path, monkeypatch, capsys):
    data = _write_dataset(tmp_path / "data", split=False)
    called = []
    monkeypatch.setattr(Loop, "run", lambda *a, **k: called.append(1))
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--root", str(data), "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no test videos" in err and "split column" in err and "--holdout" in err
    assert "\n" not in err and not called and not run.exists()
    # reproduce stops before any run as well
    out = tmp_path / "repro"
    assert main(["reproduce", "ablation", "--dataset", "folder", "--root", str(data),
                 "--seeds", "1", "--quiet", "--out", str(out)]) == 2
    assert "no test videos" in capsys.readouterr().err and not out.exists()
    # with --holdout the same folder trains and evaluates on held-out training videos
    assert main(["train", "--dataset", "folder", "--root", str(data), "--holdout", "8",
                 "--method", "aa", *FAST, "--out", str(run)]) == 0


def test_root_without_dataset_is_recognised_and_said(tmp_path, capsys):
    data = _write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--root", str(data), "--method", "aa", *FAST, "--out", str(run)]) == 0
    assert "reading it as --dataset folder" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["dataset"] == "folder"
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    assert main(["train", "--root", str(unknown), "--out", str(tmp_path / "x")]) == 2
    assert "pass --dataset" in capsys.readouterr().err
    assert main(["train", "--dataset", "synthetic", "--root", str(data),
                 "--out", str(tmp_path / "x")]) == 2
    assert "drop --root" in capsys.readouterr().err


def test_run_folders_work_from_anywhere_and_follow_moved_data(tmp_path, monkeypatch, capsys):
    data = _write_dataset(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "folder", "--root", "data", "--method", "aa",
                 "--label-ratio", "0.5", *FAST, "--out", "run"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["root"] == str(data.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tmp_path / "run")]) == 0
    first = capsys.readouterr().out
    moved = tmp_path / "moved"
    os.rename(data, moved)
    assert main(["evaluate", "--run", str(tmp_path / "run")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--root", str(moved)]) == 0
    assert capsys.readouterr().out == first
    # predict without --features scores every video of the run's dataset
    out = tmp_path / "all.csv"
    assert main(["predict", "--run", str(tmp_path / "run"), "--root", str(moved),
                 "--out", str(out)]) == 0
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40 and {r["split"] for r in rows} == {"train", "test"}
    trained = _predictions(tmp_path / "run")
    for row in rows:
        if row["id"] in trained:
            assert float(row["predicted"]) == pytest.approx(trained[row["id"]], abs=1e-5)


def test_metrics_report_what_happened(tmp_path):
    data = _write_dataset(tmp_path / "data")
    last, best = tmp_path / "last", tmp_path / "best"
    common = ["train", "--dataset", "folder", "--root", str(data), "--method", "aa",
              "--label-ratio", "0.5", *FAST]
    assert main(common + ["--out", str(last)]) == 0
    assert main(common + ["--set", "select=best", "--out", str(best)]) == 0
    split = json.loads((last / "split.json").read_text())
    metrics = json.loads((last / "metrics.json").read_text())
    # select=last trains on the validation slice: no val_spearman on videos it trained on
    assert "val_spearman" not in metrics and metrics["n_validation"] == 0
    assert metrics["n_labeled"] == len(split["labeled"]) + len(split["validation"])
    metrics = json.loads((best / "metrics.json").read_text())
    assert "val_spearman" in metrics and metrics["n_labeled"] == len(split["labeled"])
    assert metrics["n_validation"] == len(split["validation"]) > 0


def test_reproduce_cache_is_keyed_on_the_data(tmp_path, capsys):
    data = _write_dataset(tmp_path / "data")
    out = tmp_path / "repro"
    argv = ["reproduce", "table1", "--root", str(data), "--methods", "svr", "--seeds", "2",
            "--ratios", "0.5", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    assert "2 runs (0 cached, 2 run now" in capsys.readouterr().out
    assert main(argv) == 0
    assert "2 runs (2 cached, 0 run now" in capsys.readouterr().out
    assert main(argv + ["--fresh"]) == 0
    assert "2 runs (0 cached, 2 run now" in capsys.readouterr().out
    _write_dataset(data, scores=np.arange(40.0)[::-1])  # the same path, other scores
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "2 runs (0 cached, 2 run now" in captured.out
    assert "data differs" in captured.err and "not used" in captured.err
