"""Finished runs on disk, under a key of everything that decides their numbers.

Layout of a reproduction folder::

    DIR/runs/<key>.json        one record per finished run (ok, failed or skipped), written last
    DIR/runs/<key>.npz         extras beside it (Fig. 4: unlabeled representations, true scores)
    DIR/manifests/<protocol>-<dataset>.json   the runs a protocol expanded to (for `s4aqa report`)

The key is ``s4aqa.runs.identity.run_key``: the run's settings without the device, every
option the method runs with, the fingerprint of the data read and the method's version. So a
changed option, default, data folder or file content reruns exactly the runs it changes; the
protocol is not part of the key, so protocols share runs.
The device is left out on purpose: a reproduction started on CPU may be resumed on a GPU.

Records and arrays are written atomically (``s4aqa.io``); the .npz goes first and the JSON
last, so a JSON on disk means a complete run. A record that cannot be read counts as absent.
Arrays are stored without pickles (``allow_pickle=False`` on both sides).
"""

from __future__ import annotations

import io as _io
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from s4aqa import io

RUNS = "runs"
MANIFESTS = "manifests"

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


class RunCache:
    """The runs folder of one reproduction directory."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.runs = self.directory / RUNS

    def record_path(self, key: str) -> Path:
        return self.runs / f"{key}.json"

    def arrays_path(self, key: str) -> Path:
        return self.runs / f"{key}.npz"

    def load(self, key: str) -> dict[str, Any] | None:
        """The record of run ``key``, or None when absent or unreadable (then it reruns)."""
        try:
            record = json.loads(self.record_path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        return record

    def load_arrays(self, key: str) -> dict[str, np.ndarray] | None:
        try:
            with np.load(self.arrays_path(key), allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError):
            return None

    def is_done(self, key: str, extras: tuple[str, ...] = ()) -> bool:
        """True when run ``key`` finished (ok or skipped) with every extra asked for.

        Failed runs are not done: the next call retries them (a fix may have landed).
        """
        record = self.load(key)
        if record is None or record.get("status") not in (OK, SKIPPED):
            return False
        if record["status"] == OK and extras:
            if not set(extras) <= set(record.get("extras") or ()):
                return False
            if not self.arrays_path(key).is_file():
                return False
        return True

    def save(self, record: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> None:
        key = record["key"]
        if arrays:
            buffer = _io.BytesIO()
            np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
            io.write_bytes(self.arrays_path(key), buffer.getvalue())
        io.write_json(self.record_path(key), dict(record))

    def keys(self) -> Iterator[str]:
        if self.runs.is_dir():
            for path in sorted(self.runs.glob("*.json")):
                yield path.stem


def manifest_path(directory: str | os.PathLike, protocol: str, dataset: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{protocol}-{dataset}")
    return Path(directory) / MANIFESTS / f"{safe}.json"


def write_manifest(directory: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    path = manifest_path(directory, manifest["protocol"], manifest["dataset"])
    io.write_json(path, dict(manifest))
    return path


def read_manifests(directory: str | os.PathLike) -> list[dict[str, Any]]:
    folder = Path(directory) / MANIFESTS
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and "runs" in manifest:
            out.append(manifest)
    return out
