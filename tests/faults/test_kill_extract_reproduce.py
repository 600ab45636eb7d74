"""`s4aqa extract` and `s4aqa reproduce` killed with SIGKILL resume to identical outputs."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cli(args, **kw):
    return [sys.executable, "-m", "s4aqa.cli", *map(str, args)]


def _kill_when(process, ready, extra: float, timeout: float = 120) -> bool:
    deadline = time.time() + timeout
    while not ready() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(extra)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait()
    return killed


@pytest.mark.slow
def test_reproduce_resumes_after_sigkill(tmp_path):
    args = ["reproduce", "ablation", "--dataset", "synthetic", "--seeds", "3", "--ratios", "0.2",
            "--set", "steps=40", "--workers", "1", "--quiet"]
    reference = tmp_path / "reference"
    assert subprocess.run(_cli(args + ["--out", reference]), env=ENV).returncode == 0
    rng = random.Random(1)
    kills = 0
    for attempt in range(3):
        out = tmp_path / f"killed{attempt}"
        runs = out / "runs"
        process = subprocess.Popen(_cli(args + ["--out", out]), env=ENV,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kills += _kill_when(process, lambda: runs.is_dir() and any(runs.glob("*.json")),
                            rng.uniform(0.0, 2.0))
        assert subprocess.run(_cli(args + ["--out", out]), env=ENV).returncode == 0
        assert _results(out) == _results(reference)
    assert kills >= 2


def _results(folder: Path):
    rows = {}
    for path in sorted((folder / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        metrics = record.get("metrics", record)
        rows[path.name] = metrics.get("test_spearman")
    return rows


@pytest.mark.slow
def test_extract_resumes_after_sigkill(tmp_path, tiny_i3d_weights, make_videos):
    videos = make_videos(tmp_path / "videos", count=16)
    args = ["extract", *videos, "--segments", "uniform:2", "--weights", tiny_i3d_weights,
            "--resize", "40", "--crop", "32", "--no-progress", "--workers", "1",
            "--batch-size", "1"]
    reference = tmp_path / "reference"
    assert subprocess.run(_cli(args + ["--out", reference]), env=ENV).returncode == 0
    rng = random.Random(2)
    kills = 0
    for attempt in range(3):
        out = tmp_path / f"killed{attempt}"
        process = subprocess.Popen(_cli(args + ["--out", out]), env=ENV,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kills += _kill_when(process, lambda: out.is_dir() and any(out.glob("*.npy")),
                            rng.uniform(0.0, 0.5))
        # every feature file present is complete
        for path in out.glob("*.npy"):
            assert np.load(path).shape == (2, 1024)
        assert subprocess.run(_cli(args + ["--out", out]), env=ENV).returncode == 0
        for path in reference.glob("*.npy"):
            np.testing.assert_array_equal(np.load(out / path.name), np.load(path))
    assert kills >= 1
