"""The baselines from the command line: `s4aqa train ... --method NAME --set key=value`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from s4aqa.cli import main


@pytest.fixture
def folder_dataset(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    root.mkdir()
    rows = ["id,score,split"]
    for i in range(48):
        score = float(rng.normal())
        np.save(root / f"v{i:03d}.npy", (rng.normal(size=(6, 8)) + score).astype(np.float32))
        rows.append(f"v{i:03d},{score},{'test' if i % 4 == 0 else 'train'}")
    (root / "scores.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("method, options", [
    ("svr", ["--set", "c_grid=1,10"]),
    ("coreg", ["--set", "rounds=5", "--set", "pool_size=10"]),
    ("usdl", ["--set", "steps=10", "--set", "hidden=16", "--set", "bins=21"]),
])
def test_train_and_evaluate_a_baseline(method, options, folder_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--root", str(folder_dataset), "--method", method,
                 "--label-ratio", "0.5", "--seed", "0", *options, "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == method and np.isfinite(metrics["test_spearman"])
    assert main(["evaluate", "--run", str(run)]) == 0
    assert "test Spearman" in capsys.readouterr().out


@pytest.mark.parametrize("method, options, message", [
    ("vat", ["--set", "epsilon=big"], "option epsilon='big' for method 'vat' is not a valid float"),
    ("coreg", ["--set", "neighbours=3"], "unknown option(s) neighbours for method 'coreg'"),
    ("c3d_avg_mtl", ["--set", "steps=2"], "has none"),
])
def test_user_errors_are_one_line(method, options, message, folder_dataset, tmp_path, capsys):
    code = main(["train", "--dataset", "folder", "--root", str(folder_dataset), "--method", method,
                 "--label-ratio", "0.5", *options, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
