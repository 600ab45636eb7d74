"""benchmarks/gpu.py without a GPU: one line and exit 0, the plan fits its total, and a part
that fails or runs past its budget is reported with its error line while the others go on."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
gpu = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = gpu  # dataclasses look their module up
spec.loader.exec_module(gpu)


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_0():
    done = run()
    assert done.returncode == 0
    assert done.stdout.count("\n") == 1 and "no CUDA GPU" in done.stdout
    assert done.stderr == ""


def test_the_plan_runs_every_part_within_the_total():
    done = run("--dry-run", "--device", "cuda")
    assert done.returncode == 0
    lines = done.stdout.splitlines()[1:]
    assert [line.split()[0] for line in lines] == list(gpu.PARTS)
    budgets = [float(line.split("(")[1].split(" s)")[0]) for line in lines]
    assert sum(budgets) <= gpu.TOTAL - 5
    assert "--modes eager,bf16,compile" in done.stdout
    assert "train_speed.py --device cuda" in done.stdout


def test_budgets_are_scaled_down_to_fit_the_total():
    parts = [gpu.Part(name, name, ["true"], 300) for name in gpu.PARTS]
    assert sum(p.budget for p in gpu.fit_budgets(parts, 480)) == pytest.approx(470)


def test_a_failing_or_slow_part_is_reported_and_the_others_go_on(tmp_path):
    fail = gpu.Part("members", "Members", [sys.executable, "-c",
                                           "import sys; print('members: 2');"
                                           "sys.exit('RuntimeError: CUDA out of memory')"], 30)
    sleep = "import time; print('started', flush=True); time.sleep(60)"
    slow = gpu.Part("table1", "Slice", [sys.executable, "-c", sleep], 5)
    fine = gpu.Part("train_speed", "Speed", [sys.executable, "-c",
                                             "print('speedup_vs_reference: 1.50')"], 30)
    deadline = gpu.time.monotonic() + 100
    for part in (fail, slow, fine):
        gpu.run_part(part, deadline)
    assert fail.status == "failed (exit 1)" and fail.error == "RuntimeError: CUDA out of memory"
    assert slow.status.startswith("stopped at its budget") and slow.seconds < 20
    assert slow.error == "started"
    assert fine.status == "ok" and fine.values == [("speedup_vs_reference", "1.50")]
    text = gpu.report_text([fail, slow, fine], [("card", "NVIDIA Test"), ("torch", "2")], [],
                           470, 12, quick=False)
    assert text.startswith("# GPU benchmarks: NVIDIA Test")
    assert "**failed (exit 1)**: `RuntimeError: CUDA out of memory`" in text
    assert "| speedup_vs_reference | 1.50 |" in text
