"""What a new user met (issue 28): a wrong metric with unscored test videos, biased scores from
the blend, tracebacks, silent overwrites, stringly-typed records, threads. One test each."""

import json
import os
import signal

import numpy as np
import pytest
import torch

from s4aqa.cli import main
from s4aqa.config import RunConfig
from s4aqa.data.splits import Split
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.errors import S4AQAError
from s4aqa.runs.checkpoint import load_checkpoint
from s4aqa.runs.data import load_data
from s4aqa.runs.run import run_training
from s4aqa.training import resume as hooks

FAST = ["--set", "steps=20", "--set", "hidden=16", "--set", "feedforward=32", "--set", "heads=2"]


def small_dataset(root, unscored=(22, 23)):
    """The issue's dataset: 30 videos (22 train, 8 test), scores 50 +- 10, two test scores empty."""
    data = make_staged_actions(n_train=22, n_test=8, dim=16, seed=3)
    scores = (data.scores - data.scores.mean()) / data.scores.std() * 10 + 50
    root.mkdir()
    rows = ["id,score,split"]
    for i, features in enumerate(data.features):
        np.save(root / f"v{i:02d}.npy", features)
        text = "" if i in unscored else f"{scores[i]:.3f}"
        rows.append(f"v{i:02d},{text},{'test' if i >= 22 else 'train'}")
    (root / "scores.csv").write_text("\n".join(rows) + "\n")
    return root


def test_unscored_test_videos_are_left_out_of_the_metrics(tmp_path, capsys):
    root = small_dataset(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--root", str(root), "--method", "lap_rls", "--label-ratio", "0.5",
                 "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "6 scored test videos, 2 without a score left out" in out
    text = (run / "metrics.json").read_text()
    assert "NaN" not in text  # strict JSON
    metrics = json.loads(text)
    assert metrics["n_test"] == 6 and metrics["n_test_unscored"] == 2
    # the Spearman of the six scored videos, as computed by hand from predictions.csv
    rows = [line.split(",") for line in (run / "predictions.csv").read_text().splitlines()[1:]]
    scored = [(float(p), float(s)) for _, p, s, *_ in rows if s]  # then low, high
    from scipy.stats import spearmanr
    expected = spearmanr(*zip(*scored)).statistic
    assert metrics["test_spearman"] == pytest.approx(expected)
    assert metrics["test_mae"] == pytest.approx(np.mean([abs(p - s) for p, s in scored]))


def test_s4aqa_scores_are_unbiased_on_its_labeled_videos(tmp_path):
    """The blend with the graph was centred over all training videos: scores moved by the
    unlabeled videos' mean (0.28 sd on this dataset before)."""
    root = small_dataset(tmp_path / "data")
    config = RunConfig(dataset="folder", root=str(root), method="s4aqa", label_ratio=0.5,
                       options={"steps": 60})
    result = run_training(config)
    data = load_data(config)
    labeled = data.select_ids(result.split.labeled + result.split.validation)
    error = result.method.predict(labeled) - labeled.scores
    assert abs(error.mean()) < 0.1 * labeled.scores.std()


def test_tracebacks_are_one_line_errors(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["train", "--method", "aa", *FAST, "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert afile.read_text() == "x"
    for seeds in ("0", "-1"):
        assert main(["demo", "--seeds", seeds]) == 2
        assert "use 1 or more" in capsys.readouterr().err


def test_unknown_method_is_said_before_data_problems(tmp_path, capsys):
    assert main(["train", "--root", str(tmp_path / "missing"), "--dataset", "folder",
                 "--method", "nope", "--out", str(tmp_path / "run")]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_finished_run_replaced_is_said(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--method", "lap_rls", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "--method", "aa", *FAST, "--out", str(run)]) == 0
    assert "holds a finished 'lap_rls' run; it is replaced" in capsys.readouterr().err


def test_few_labels_and_few_test_videos_are_warned(tmp_path, capsys):
    root = small_dataset(tmp_path / "data", unscored=(22, 23, 24, 25, 26))
    assert main(["train", "--root", str(root), "--method", "aa", *FAST, "--label-ratio", "0.1",
                 "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "only 2 labeled video(s)" in err and "only 3 scored test video(s)" in err


def test_run_folder_records_what_was_run(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--method", "aa", *FAST, "--threads", "1", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["steps"] == 20 and config["threads"] == 1  # typed, not "20"
    environment = json.loads((run / "environment.json").read_text())
    assert environment["threads"] == 1 and environment["versions"]["torch"] == torch.__version__
    assert environment["date"].startswith("20")
    folder_run = tmp_path / "folder_run"
    root = small_dataset(tmp_path / "data")
    assert main(["train", "--root", str(root), "--method", "lap_rls", "--label-ratio", "0.5",
                 "--out", str(folder_run)]) == 0
    assert json.loads((folder_run / "config.json").read_text())["target"] == "score"


def test_threads_are_checked_and_restored(tmp_path):
    with pytest.raises(S4AQAError, match="--threads 0"):
        RunConfig(threads=0)
    data = make_staged_actions(n_train=40, n_test=10, dim=8, seed=0)
    with pytest.raises(S4AQAError, match="this machine's cores"):
        run_training(RunConfig(method="lap_rls", threads=(os.cpu_count() or 1) + 64), data)
    before = torch.get_num_threads()
    run_training(RunConfig(method="lap_rls", threads=1), data)
    assert torch.get_num_threads() == before


class _CtrlC(hooks.Hook):
    """Presses Ctrl-C during step ``at`` (a real SIGINT to this process)."""

    def __init__(self, at):
        self.at = at

    def after_step(self, loop, step, parts):
        if step + 1 == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_saves_the_step_and_the_rerun_says_it_resumes(tmp_path, monkeypatch):
    data = make_staged_actions(n_train=60, n_test=20, dim=8, seed=1)
    options = {"steps": 30, "hidden": 16, "feedforward": 32, "heads": 2, "members": 1}
    config = RunConfig(method="aa", label_ratio=0.4, options=options)
    said = []
    original = hooks.Checkpoint.start

    def start_with_ctrl_c(self, loop):
        loop.hooks.append(_CtrlC(7))  # after the checkpoint's turn: it stops after step 8
        original(self, loop)

    monkeypatch.setattr(hooks.Checkpoint, "start", start_with_ctrl_c)
    # as at a terminal, whatever started the tests (a background job ignores Ctrl-C)
    monkeypatch.setattr(signal, "getsignal", lambda number: signal.default_int_handler)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    with pytest.raises(KeyboardInterrupt):
        run_training(config, data, state_dir=tmp_path, notify=said.append)
    monkeypatch.setattr(hooks.Checkpoint, "start", original)
    monkeypatch.undo()
    restored = signal.signal(signal.SIGINT, before)
    assert any("interrupted at step 8 of 30" in s for s in said)
    assert restored is signal.default_int_handler  # the handler given back
    resumed = run_training(config, data, state_dir=tmp_path, notify=said.append)
    assert any("resuming from step 8 of 30" in s for s in said)
    np.testing.assert_array_equal(resumed.predictions, run_training(config, data).predictions)


def test_evaluate_reports_mae(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--method", "lap_rls", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run)]) == 0
    assert "MAE" in capsys.readouterr().out
    method, meta = load_checkpoint(run)
    assert Split.load(run / "split.json").test
