"""`extract --backend ray` on a local Ray instance of 2 CPUs: the features and manifest of a local
extraction, array for array; bad videos reported; resumable across backends; a lost worker
replaced; and without Ray, an error that names the extra."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
from features_testkit import CROP, RESIZE, write_video

from s4aqa import cli
from s4aqa.errors import S4AQAError
from s4aqa.features import extract as E

ray = pytest.importorskip("ray", reason="Ray is an extra: pip install -e '.[ray]'")
pytestmark = pytest.mark.slow  # a local Ray instance: minutes on 2 cores

SMALL = {"resize": RESIZE, "crop": CROP}


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module (it takes seconds to start); extract uses it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def _features(folder):
    return {p.stem: np.load(p) for p in sorted(folder.glob("*.npy"))}


def _manifest(folder):
    manifest = json.loads((folder / E.MANIFEST).read_text())
    for entry in manifest["videos"].values():
        entry.pop("extracted")
    return manifest


def test_ray_extraction_equals_local_array_for_array(tmp_path, videos, tiny_i3d, ray_instance):
    paths = list(videos.values())
    kwargs = dict(segments="uniform:3", model=tiny_i3d, batch_size=2, workers=1,
                  progress=False, **SMALL)
    local_lines, ray_lines = [], []
    local = E.extract(paths, tmp_path / "local", log=local_lines.append, **kwargs)
    distributed = E.extract(paths, tmp_path / "ray", log=ray_lines.append, backend="ray",
                            **kwargs)
    assert sorted(distributed.done) == sorted(local.done) == ["a", "b", "ntsc", "odd"]
    assert distributed.failed == local.failed and list(distributed.failed) == ["short"]
    assert ray_lines == local_lines and "too short" in ray_lines[0]
    got, expected = _features(tmp_path / "ray"), _features(tmp_path / "local")
    assert got.keys() == expected.keys()
    for vid in expected:
        # batches of 2 mix clips of different videos, and which ones depends on how the videos
        # are shared out: the convolutions round differently by batch (bit for bit below, where
        # the batches hold the same clips)
        np.testing.assert_allclose(got[vid], expected[vid], rtol=1e-5, atol=1e-6)
    assert _manifest(tmp_path / "ray") == _manifest(tmp_path / "local")
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".")]
    # resumable across backends: what one extracted the other does not redo
    again = E.extract(paths, tmp_path / "local", backend="ray", **kwargs)
    assert again.done == [] and sorted(again.skipped) == ["a", "b", "ntsc", "odd"]
    again = E.extract(paths, tmp_path / "ray", **kwargs)
    assert again.done == [] and len(again.skipped) == 4


def test_cli_weights_file_same_manifest_on_both_backends(tmp_path, videos, tiny_i3d,
                                                        ray_instance, capsys):
    from safetensors.torch import save_file

    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_i3d.state_dict().items()}, str(weights))
    argv = ["extract", str(videos["a"]), str(videos["b"]), "--segments", "uniform:2",
            "--weights", str(weights), "--resize", str(RESIZE), "--crop", str(CROP),
            "--workers", "1", "--batch-size", "1", "--no-progress"]
    assert cli.main(argv + ["--out", str(tmp_path / "local")]) == 0
    assert cli.main(argv + ["--out", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    assert "2 extracted, 0 already done, 0 failed" in capsys.readouterr().out
    assert _manifest(tmp_path / "ray") == _manifest(tmp_path / "local")  # same weights fingerprint
    got, expected = _features(tmp_path / "ray"), _features(tmp_path / "local")
    assert all(np.array_equal(got[v], expected[v]) for v in expected)


def _ray_processes(title: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if handle.read().split(b"\0")[0].decode(errors="replace") == title:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray workers in /proc")
def test_a_lost_worker_is_replaced_and_nothing_is_lost(tmp_path, tiny_i3d, ray_instance):
    folder = tmp_path / "videos"
    folder.mkdir()
    paths = [write_video(folder / f"v{i:02d}.mp4", 40, seed=i) for i in range(16)]
    kwargs = dict(segments="uniform:4", model=tiny_i3d, batch_size=1, workers=1,
                  progress=False, **SMALL)
    reference = E.extract(paths, tmp_path / "local", **kwargs)
    out = tmp_path / "ray"
    killed: list[int] = []

    def kill_one_worker_mid_share() -> None:
        # kill the worker as soon as it runs its share (waiting for a first .npy as well raced
        # the end of the share on a loaded machine): the whole share is then left to a new one
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            running = _ray_processes("ray::VideoFeatureWorker.features")
            if running:
                os.kill(running[0], signal.SIGKILL)
                killed.append(running[0])
            time.sleep(0.005)

    killer = threading.Thread(target=kill_one_worker_mid_share, daemon=True)
    killer.start()
    lines = []
    summary = E.extract(paths, out, backend="ray", log=lines.append, **kwargs)
    killer.join()
    assert killed and any("Ray worker was lost" in line for line in lines)
    assert summary.failed == {} and sorted(summary.done) == sorted(reference.done)
    got, expected = _features(out), _features(tmp_path / "local")
    assert got.keys() == expected.keys()
    assert all(np.array_equal(got[v], expected[v]) for v in expected)


def test_user_errors_are_one_line(tmp_path, videos, tiny_i3d, ray_instance, capsys):
    with pytest.raises(S4AQAError, match="needs --gpus-per-worker"):
        E.extract([videos["a"]], tmp_path / "o", device="cuda", model=tiny_i3d,
                  backend="ray", **SMALL)
    with pytest.raises(S4AQAError, match="needs --device cuda"):
        E.extract([videos["a"]], tmp_path / "o", gpus_per_worker=0.5, model=tiny_i3d,
                  backend="ray", **SMALL)
    with pytest.raises(S4AQAError, match="has 0 GPUs"):
        E.extract([videos["a"]], tmp_path / "o", device="cuda", gpus_per_worker=0.5,
                  model=tiny_i3d, backend="ray", progress=False, **SMALL)
    with pytest.raises(S4AQAError, match="need --backend ray"):
        E.extract([videos["a"]], tmp_path / "o", address="auto", model=tiny_i3d, **SMALL)
    with pytest.raises(S4AQAError, match="asks for 3 CPUs"):
        E.extract([videos["a"]], tmp_path / "o", workers=3, model=tiny_i3d, backend="ray",
                  progress=False, **SMALL)
    assert not (tmp_path / "o" / E.MANIFEST).exists()


def test_without_ray_the_flag_names_the_extra(tmp_path, videos, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as when not installed
    argv = ["extract", str(videos["a"]), "--out", str(tmp_path / "o"), "--backend", "ray"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == "s4aqa: error: --backend ray needs Ray: pip install -e '.[ray]'\n"
    assert not (tmp_path / "o").exists()
