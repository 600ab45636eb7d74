"""`s4aqa train` killed with SIGKILL at random moments resumes to the uninterrupted outputs."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

ARGS = ["train", "--dataset", "synthetic", "--method", "s4aqa", "--label-ratio", "0.2",
        "--seed", "4", "--set", "steps=300", "--set", "eval_every=25"]


def _train(out, env):
    return subprocess.run([sys.executable, "-m", "s4aqa.cli", *ARGS, "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)


def _outputs(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("train_seconds")
    return metrics, (folder / "predictions.csv").read_text(), (folder / "split.json").read_text()


@pytest.mark.slow
def test_train_resumes_after_sigkill(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    assert _train(reference, env).returncode == 0
    rng = random.Random(0)
    killed_with_state = 0
    for attempt in range(3):
        out = tmp_path / f"killed{attempt}"
        process = subprocess.Popen([sys.executable, "-m", "s4aqa.cli", *ARGS, "--out", str(out)],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # wait until training has saved state at least once, then a random extra moment
        deadline = time.time() + 120
        while not (out / "train_state.safetensors").exists() and process.poll() is None:
            if time.time() > deadline:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed_with_state += 1
        process.wait()
        assert not (out / "metrics.json").exists() or process.returncode == 0
        resumed = _train(out, env)
        assert resumed.returncode == 0, resumed.stderr
        assert _outputs(out) == _outputs(reference)
        assert not (out / "train_state.safetensors").exists()
    assert killed_with_state >= 2
