"""Finished runs on disk, under a key of everything that decides their numbers.

Layout of a reproduction folder::

    DIR/runs/<key>.json        one record per finished run (ok, failed or skipped), written last
    DIR/runs/<key>.npz         extras beside it (Fig. 4: unlabeled representations, true scores)
    DIR/manifests/<protocol>-<dataset>.json   the runs a protocol expanded to (for `s4aqa report`)

The key is the SHA-256 of the canonical JSON (sorted keys, no spaces) of the run's RunConfig
without ``device``: dataset name, dataset root and feature folder (as absolute paths),
segments, target, task, fold, label ratio, validation fraction, seed, init, method name and
*every* option the method runs with (preset, defaults and overrides, typed), plus the
fingerprint of the data read there (``FeatureSet.fingerprint``: ids, scores, splits, groups,
features), the method's version and the cache format number. So a changed option, default,
data folder or file content reruns exactly the runs it changes; the protocol is not part of the
key, so protocols share runs.
The device is left out on purpose: a reproduction started on CPU may be resumed on a GPU.

Records and arrays are written atomically (``s4aqa.io``); the .npz goes first and the JSON
last, so a JSON on disk means a complete run. A record that cannot be read counts as absent.
Arrays are stored without pickles (``allow_pickle=False`` on both sides).
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from s4aqa import io
from s4aqa.config import RunConfig

CACHE_FORMAT = 2  # 2: keys hold the data's fingerprint
RUNS = "runs"
MANIFESTS = "manifests"

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


def _canonical_path(path: str | os.PathLike | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def key_fields(config: RunConfig, data_fingerprint: str | None = None) -> dict[str, Any]:
    """What the key is made of: the RunConfig without ``device``, paths made absolute, and
    the fingerprint of the data read."""
    fields = config.to_dict()
    fields.pop("device", None)
    fields["root"] = _canonical_path(fields["root"])
    fields["features"] = _canonical_path(fields["features"])
    fields["label_ratio"] = float(fields["label_ratio"])
    fields["val_fraction"] = float(fields["val_fraction"])
    fields["options"] = dict(sorted((fields.get("options") or {}).items()))
    if not fields.get("holdout"):
        fields.pop("holdout", None)  # absent when off, so runs cached before it keep their keys
    if not fields.get("shift"):
        fields.pop("shift", None)
    fields["data"] = data_fingerprint
    fields["cache_format"] = CACHE_FORMAT
    # a method's code version: bumped when a change alters its numbers, so old runs rerun
    fields["method_version"] = _method_version(config.method)
    return fields


def _method_version(name: str) -> int:
    from s4aqa.errors import S4AQAError
    from s4aqa.methods.registry import resolve

    try:
        return int(getattr(resolve(name)[0], "version", 1))
    except S4AQAError:
        return 0


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=str)


def run_key(config: RunConfig, data_fingerprint: str | None = None) -> str:
    fields = key_fields(config, data_fingerprint)
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


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
