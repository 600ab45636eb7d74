"""Crash-safe writes: the old file or the new one, never a partial one, with normal permissions."""

import os
import stat

import numpy as np
import pytest

from s4aqa import io


def test_write_replaces_atomically_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.json"
    io.write_json(path, {"x": 1})
    io.write_json(path, {"x": np.float32(2.5), "a": np.arange(2)})
    assert path.read_text().strip().startswith("{")
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o666 & ~io._UMASK  # as open() would create it, not mkstemp's 0600


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "b.txt"
    io.write_text(path, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.txt"]


def test_npy_round_trip(tmp_path):
    io.write_npy(tmp_path / "c.npy", np.ones((2, 3), np.float32))
    assert np.load(tmp_path / "c.npy").shape == (2, 3)


def test_write_json_writes_strict_json(tmp_path):
    import json as _json
    import math as _math

    from s4aqa import io as _io
    _io.write_json(tmp_path / "m.json", {"a": float("nan"), "b": [1.0, _math.inf], "c": 2.5})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert _json.loads(text) == {"a": None, "b": [1.0, None], "c": 2.5}
