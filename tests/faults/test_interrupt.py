"""Ctrl-C (SIGINT) on `reproduce --workers 2` and on `train`: the command ends at once with
exit status 130 and one line, no traceback, no process left behind, the saved runs counted
right, and the same command resumes (issue 36)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
REPRODUCE = ["reproduce", "ablation", "--dataset", "synthetic", "--methods", "aa,aa+msfr",
             "--seeds", "3", "--ratios", "0.2", "--set", "steps=150", "--workers", "2"]


def _start(args, out: Path) -> subprocess.Popen:
    # a session of its own: its process group is the command and every worker it starts
    return subprocess.Popen([sys.executable, "-m", "s4aqa.cli", *map(str, args), "--out",
                             str(out)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_for(ready, process, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "the command never got that far"
        time.sleep(0.05)


def _group_alive(pgid: int) -> list[str]:
    """The processes of group ``pgid`` still running (a zombie, finished but not yet reaped
    by an init that does not reap, is not running)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(stat.parent.name)
    return alive


def _saved(out: Path) -> int:
    return len(list((out / "runs").glob("*.json")))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["group", "group twice 2 s apart", "main process only"])
def test_ctrl_c_stops_reproduce_with_workers(tmp_path, how):
    out = tmp_path / "repro"
    process = _start(REPRODUCE + ["--quiet"], out)
    _wait_for(lambda: (out / "runs").is_dir() and _saved(out) >= 1, process)
    started = time.monotonic()
    if how.startswith("group"):
        os.killpg(process.pid, signal.SIGINT)
        if "twice" in how:
            time.sleep(2)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - started < 20, "Ctrl-C did not stop the command at once"
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    time.sleep(0.5)
    assert not _group_alive(process.pid), "a process was left running"
    said = re.fullmatch(r"s4aqa: interrupted with (\d+) of (\d+) runs saved in .*; run the "
                        r"same command again to resume\n", err)
    assert said, err  # one line, nothing else (no warning of leaked resources either)
    assert int(said.group(1)) == _saved(out)  # counted after the workers stopped
    again = subprocess.run([sys.executable, "-m", "s4aqa.cli", *REPRODUCE, "--out", str(out)],
                           env=ENV, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{said.group(1)} cached" in again.stderr + again.stdout


@pytest.mark.slow
def test_two_quick_ctrl_c_on_train_print_no_traceback(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--method", "aa", "--set", "steps=400", "--no-progress"]
    process = _start(args, out)
    _wait_for(lambda: (out / "train_state.safetensors").is_file(), process)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert "interrupted" in err
    done = subprocess.run([sys.executable, "-m", "s4aqa.cli", *args, "--out", str(out)],
                          env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming from step" in done.stderr
    assert json.loads((out / "metrics.json").read_text())["test_spearman"] is not None
