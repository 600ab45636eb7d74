"""`reproduce --backend ray` on a local Ray instance of 2 CPUs: the local backend's numbers run for
run, one cache for both backends, the data through the object store, a killed worker retried,
an interrupted driver resumed, and without Ray an error that names the extra."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import ray_methods

from s4aqa import cli
from s4aqa.config import RunConfig
from s4aqa.errors import S4AQAError
from s4aqa.experiments import backends, execute, runner
from s4aqa.experiments.cache import RunCache

ray = pytest.importorskip("ray", reason="Ray is an extra: pip install -e '.[ray]'")
pytestmark = pytest.mark.slow  # a local Ray instance: minutes on 2 cores

TINY = ["--seeds", "2", "--ratios", "0.2", "--methods", "aa,s4aqa", "--set", "steps=6",
        "--set", "hidden=16", "--quiet"]


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """One local Ray instance for the module (it takes seconds to start); reproduce uses it.
    Its workers register the stand-in methods of ``ray_methods`` before their first task."""
    folder = tmp_path_factory.mktemp("ray_methods")
    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    os.environ[ray_methods.TEST_DIR] = str(folder)
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env={"env_vars": {"PYTHONPATH": path, ray_methods.TEST_DIR: str(folder)},
                          "worker_process_setup_hook": "ray_methods.register"})
    ray_methods.register()
    yield folder
    ray_methods.unregister()
    ray.shutdown()
    os.environ.pop(ray_methods.TEST_DIR, None)


def _records(folder: Path) -> dict[str, dict]:
    cache = RunCache(folder)
    return {key: cache.load(key) for key in cache.keys()}


def _numbers(folder: Path) -> dict[str, tuple]:
    """What a run computed: its status, test Spearman, test videos and predictions."""
    return {key: (r["status"], r["metrics"].get("test_spearman"), r.get("test_ids"),
                  r.get("predictions")) for key, r in _records(folder).items()}


def _fits(folder: Path) -> Counter:
    log = folder / "fits.log"
    return Counter(log.read_text().splitlines() if log.exists() else [])


def test_ray_equals_local_run_for_run_and_shares_its_cache(tmp_path, ray_instance, capsys):
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert cli.main(["reproduce", "ablation", *TINY, "--out", str(local)]) == 0
    assert cli.main(["reproduce", "ablation", *TINY, "--out", str(distributed),
                     "--backend", "ray"]) == 0
    assert "4 runs (0 cached, 4 run now; 0 failed" in capsys.readouterr().out
    numbers = _numbers(local)
    assert len(numbers) == 4 and all(n[0] == "ok" and n[3] for n in numbers.values())
    assert _numbers(distributed) == numbers  # identical Spearman and predictions, run for run
    assert (distributed / "report.md").is_file()
    # one cache: a run either backend saved is not run again by the other
    assert cli.main(["reproduce", "ablation", *TINY, "--out", str(local), "--backend", "ray"]) == 0
    assert cli.main(["reproduce", "ablation", *TINY, "--out", str(distributed)]) == 0
    assert capsys.readouterr().out.count("4 runs (4 cached, 0 run now") == 2
    key = sorted(numbers)[0]
    RunCache(local).record_path(key).unlink()
    assert cli.main(["reproduce", "ablation", *TINY, "--out", str(local), "--backend", "ray"]) == 0
    assert "4 runs (3 cached, 1 run now" in capsys.readouterr().out
    assert _numbers(local) == numbers
    # seed groups are one task each, with the local backend's numbers too
    grouped = ["--group-seeds"]
    assert cli.main(["reproduce", "ablation", *TINY, *grouped, "--out", str(tmp_path / "g1")]) == 0
    assert cli.main(["reproduce", "ablation", *TINY, *grouped, "--out", str(tmp_path / "g2"),
                     "--backend", "ray"]) == 0
    assert _numbers(tmp_path / "g2") == _numbers(tmp_path / "g1")
    assert all(r["metrics"]["grouped"] == 2 for r in _records(tmp_path / "g2").values())


def _folder_dataset(root: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    rows = ["id,score,split"]
    for i in range(n):
        np.save(root / f"v{i:03d}.npy", (rng.normal(size=(5, 6)) + i / 10).astype(np.float32))
        rows.append(f"v{i:03d},{i * 0.5},{'test' if i % 4 == 0 else 'train'}")
    (root / "scores.csv").write_text("\n".join(rows) + "\n")
    return root


def test_workers_take_the_data_from_the_object_store(tmp_path, ray_instance, monkeypatch):
    """The runs succeed with the dataset gone from disk once the driver has read it."""
    root = _folder_dataset(tmp_path / "data")
    kwargs = dict(methods=["_ray_ridge"], ratios=[0.5], seeds=3, progress=False)
    base = RunConfig(dataset="folder", root=str(root))
    reference = runner.reproduce("table1", base, out=tmp_path / "local", **kwargs)
    assert reference.ran == 3 and reference.failed == 0
    real_run = backends.RayBackend.run

    def run_without_disk(self, *args, **kw):
        shutil.rmtree(root)
        return real_run(self, *args, **kw)

    monkeypatch.setattr(backends.RayBackend, "run", run_without_disk)
    summary = runner.reproduce("table1", base, out=tmp_path / "ray", backend="ray", **kwargs)
    assert summary.ran == 3 and summary.failed == 0 and not root.exists()
    assert _numbers(tmp_path / "ray") == _numbers(tmp_path / "local")


def test_a_killed_worker_is_retried_and_nothing_runs_twice(tmp_path, ray_instance):
    (ray_instance / "fits.log").unlink(missing_ok=True)
    (ray_instance / "died").unlink(missing_ok=True)
    kwargs = dict(methods=["_ray_ridge", "_ray_dies_once"], ratios=[0.2], seeds=3,
                  progress=False)
    summary = runner.reproduce("table1", out=tmp_path / "ray", backend="ray", **kwargs)
    assert (ray_instance / "died").exists()  # one worker process was killed mid-run
    assert (summary.total, summary.ran, summary.failed) == (6, 6, 0)
    fits = _fits(ray_instance)
    assert sorted(fits.values()) == [1, 1, 1, 1, 1, 2]  # only the killed run trained again
    assert [line for line, count in fits.items() if count == 2][0].startswith("_ray_dies_once")
    local = runner.reproduce("table1", out=tmp_path / "local", **kwargs)
    assert local.ran == 6 and _numbers(tmp_path / "ray") == _numbers(tmp_path / "local")


def test_an_interrupted_driver_resumes_with_nothing_lost(tmp_path, ray_instance, monkeypatch):
    (ray_instance / "fits.log").unlink(missing_ok=True)
    kwargs = dict(methods=["_ray_ridge"], ratios=[0.2, 0.5], seeds=3, progress=False,
                  backend="ray")
    real_save = execute.save_outcome
    saved = []

    def interrupted(summary, cache):
        if len(saved) == 2:
            raise KeyboardInterrupt
        saved.append(summary["key"])
        return real_save(summary, cache)

    monkeypatch.setattr(execute, "save_outcome", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.reproduce("table1", out=tmp_path, **kwargs)
    cache = RunCache(tmp_path)
    assert sorted(cache.keys()) == sorted(saved)  # saved as each finished
    stamps = {key: cache.record_path(key).stat().st_mtime_ns for key in saved}
    monkeypatch.undo()
    summary = runner.reproduce("table1", out=tmp_path, **kwargs)
    assert (summary.total, summary.cached, summary.ran) == (6, 2, 4)
    # the saved runs did not run again
    assert {key: cache.record_path(key).stat().st_mtime_ns for key in saved} == stamps
    records = _records(tmp_path)
    assert len(records) == 6 and all(r["status"] == "ok" for r in records.values())


def test_flag_errors_are_one_line(tmp_path, ray_instance, capsys):
    out = str(tmp_path / "x")
    cases = [
        (["--gpus-per-run", "0.5"], "--address and --gpus-per-run need --backend ray"),
        (["--backend", "ray", "--device", "cuda"], "needs --gpus-per-run"),
        (["--backend", "ray", "--gpus-per-run", "0.5"], "--gpus-per-run 0.5 needs --device cuda"),
        (["--backend", "ray", "--gpus-per-run", "1.5", "--device", "cuda"],
         "a fraction of one GPU"),
        (["--backend", "ray", "--address", "auto", "--workers", "2"], "leave --workers out"),
    ]
    for flags, message in cases:
        assert cli.main(["reproduce", "ablation", *TINY, "--out", out, *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not Path(out).exists()
    with pytest.raises(S4AQAError, match="has 0 GPUs"):
        runner.reproduce("ablation", RunConfig(device="cuda"), out=tmp_path / "g",
                         backend="ray", gpus_per_run=0.25, methods=["aa"], seeds=1,
                         ratios=[0.2], progress=False)


def test_without_ray_the_flag_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as when not installed
    out = tmp_path / "x"
    assert cli.main(["reproduce", "ablation", *TINY, "--out", str(out), "--backend", "ray"]) == 2
    assert capsys.readouterr().err == ("s4aqa: error: --backend ray needs Ray: "
                                       "pip install -e '.[ray]'\n")
    assert not out.exists()
