"""The `s4aqa` command end to end: train, evaluate, predict, and user errors in one line."""

import csv

import numpy as np
import pytest

from s4aqa.cli import main

FAST = ["--set", "steps=20", "--set", "hidden=16", "--set", "feedforward=32", "--set", "heads=2"]


def _folder_dataset(root, n=40, t=5, d=6):
    rng = np.random.default_rng(0)
    root.mkdir()
    rows = ["id,score,split"]
    for i in range(n):
        score = float(i)
        np.save(root / f"v{i:03d}.npy", (rng.normal(size=(t, d)) + score / 10).astype(np.float32))
        rows.append(f"v{i:03d},{score},{'test' if i % 4 == 0 else 'train'}")
    (root / "scores.csv").write_text("\n".join(rows) + "\n")
    return root


def test_train_evaluate_predict_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--dataset", "synthetic", "--method", "s4aqa", "--label-ratio", "0.2",
                 "--seed", "0", *FAST, "--out", str(run)])
    assert code == 0
    assert main(["evaluate", "--run", str(run)]) == 0
    assert "test Spearman" in capsys.readouterr().out


def test_predict_reproduces_predictions_csv(tmp_path):
    data = _folder_dataset(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--root", str(data), "--method", "aa",
                 "--label-ratio", "0.5", "--seed", "1", *FAST, "--out", str(run)]) == 0
    with open(run / "predictions.csv") as handle:
        trained = {row["id"]: float(row["predicted"]) for row in csv.DictReader(handle)}
    test_dir = tmp_path / "test_feats"
    test_dir.mkdir()
    for vid in trained:
        (test_dir / f"{vid}.npy").write_bytes((data / f"{vid}.npy").read_bytes())
    out = tmp_path / "pred.csv"
    assert main(["predict", "--run", str(run), "--features", str(test_dir), "--out", str(out)]) == 0
    with open(out) as handle:
        predicted = {row["id"]: float(row["predicted"]) for row in csv.DictReader(handle)}
    assert predicted.keys() == trained.keys()
    for vid, value in trained.items():
        assert predicted[vid] == pytest.approx(value, abs=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "nope", "--out", "{out}"], "unknown dataset"),
    (["train", "--method", "nope", "--out", "{out}"], "unknown method"),
    (["train", "--label-ratio", "1.5", "--out", "{out}"], "outside"),
    (["train", "--label-ratio", "0.01", "--set", "select=best", "--out", "{out}"], "validation"),
    (["train", "--label-ratio", "1.0", "--method", "s4aqa", "--out", "{out}"], "unlabeled set is empty"),
    (["train", "--dataset", "fisv", "--root", "{missing}", "--out", "{out}"], "not found"),
    (["train", "--set", "nonsense=1", "--out", "{out}"], "unknown option"),
    (["train", "--shift", "a:b", "--out", "{out}"], "single group"),
    (["train", "--set", "steps=abc", "--out", "{out}"], "not a valid int"),
    (["evaluate", "--run", "{missing}"], "no checkpoint"),
])
def test_user_errors_print_one_line_and_leave_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    argv = [a.format(out=out, missing=tmp_path / "missing") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("s4aqa: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_predict_rejects_bad_features(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--method", "aa", *FAST, "--out", str(run)]) == 0
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((16, 7), np.float32))
    assert main(["predict", "--run", str(run), "--features", str(bad)]) == 2
    assert "dimension 7" in capsys.readouterr().err
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((16, 64), np.nan, np.float32))
    assert main(["predict", "--run", str(run), "--features", str(nan)]) == 2
    assert "NaN" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("method: aa\nbogus: 1\n", "unknown option(s) bogus"),
    ("label_ratio: lots\n", "not a valid float"),
    ("seed: [1, 2]\n", "not a valid int"),
    ("method: [unclosed\n", "not valid YAML"),
    ("- a\n- b\n", "mapping"),
    ("options: 3\n", "options"),
])
def test_bad_config_files(tmp_path, capsys, text, message):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_config_file_with_flags_overriding(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("method: aa\nlabel_ratio: 0.3\noptions:\n  steps: 10\n  hidden: 16\n  heads: 2\n")
    out = tmp_path / "out"
    assert main(["train", "--config", str(config), "--seed", "2", "--out", str(out)]) == 0
    import json

    saved = json.loads((out / "config.json").read_text())
    assert saved["method"] == "aa" and saved["seed"] == 2 and saved["options"]["steps"] == 10


def test_what_is_done_to_the_input_is_said(tmp_path, capsys):
    """Issue 36: a held-out evaluation is not called a test split, predict says it resampled
    features of another length, and an --out folder with other files in it is named."""
    data = _folder_dataset(tmp_path / "data", t=5)
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    assert main(["train", "--root", str(data), "--method", "lap_rls", "--holdout", "6",
                 "--label-ratio", "1", "--out", str(run)]) == 0
    captured = capsys.readouterr()
    assert "(6 held-out training videos)" in captured.out
    assert "scored test videos" not in captured.out
    assert "holds files that are not a run's (notes.txt)" in captured.err
    assert (run / "notes.txt").read_text() == "mine"  # left alone
    assert "6 scored training videos held out (--holdout" in captured.err  # the counts line
    other = tmp_path / "other"
    other.mkdir()
    np.save(other / "long.npy", np.ones((9, 6), np.float32))
    np.save(other / "same.npy", np.ones((5, 6), np.float32))
    assert main(["predict", "--run", str(run), "--features", str(other)]) == 0
    captured = capsys.readouterr()
    assert ("1 of 2 feature files have 9 segments where the model reads 5: resampled to 5"
            in captured.err)
    assert captured.out.splitlines()[0] == "id,predicted,low,high"
