"""Dataset readers: one module per on-disk format, each registered by name.

Every reader has the signature
``read(root, *, target=None, task=None, segments=None, features=None) -> FeatureSet``:
``target`` picks the score (e.g. Fis-V 'tes' / 'pcs' / 'total'), ``task`` restricts to one
task or group, ``segments`` is the fixed number of segments every video is resampled to, and
``features`` overrides where the per-video feature arrays are found.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError

Reader = Callable[..., FeatureSet]

# name -> module that defines ``read``; imported on first use so a reader's optional
# dependencies do not load for the others.
FORMATS: dict[str, str] = {
    "synthetic": "s4aqa.data.synthetic",
    "synthetic_shift": "s4aqa.data.formats.synthetic_shift",
    "folder": "s4aqa.data.formats.folder",
    "fisv": "s4aqa.data.formats.fisv",
    "mtl_aqa": "s4aqa.data.formats.mtl_aqa",
    "rg": "s4aqa.data.formats.rg",
    "finediving": "s4aqa.data.formats.finediving",
    "jigsaws": "s4aqa.data.formats.jigsaws",
}

# generated in memory: no --root
GENERATED = frozenset({"synthetic", "synthetic_shift"})

SHARED_DATA_ENV = "S4AQA_SHARED_DATA"


def shared_data_root() -> Path:
    """Where the development datasets are: $S4AQA_SHARED_DATA, else ../shared/data beside the repo."""
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4].parent / "shared" / "data"


def get_reader(name: str) -> Reader:
    if name not in FORMATS:
        raise S4AQAError(f"unknown dataset '{name}'; choose one of {', '.join(sorted(FORMATS))}")
    return importlib.import_module(FORMATS[name]).read


def detect_format(root: str | os.PathLike) -> str:
    """The format of the dataset folder ``root``, recognised by its files (for ``--root``
    without ``--dataset``); an error when no format or several match."""
    root = Path(root)
    if not root.is_dir():
        raise S4AQAError(f"{root}: dataset folder not found; check --root")
    found = [name for name in FORMATS if name not in GENERATED
             and importlib.import_module(FORMATS[name]).detect(root)]
    if len(found) != 1:
        what = "is none of the formats s4aqa recognises" if not found else \
            f"matches several formats ({', '.join(found)})"
        raise S4AQAError(f"--root {root} {what}; pass --dataset NAME (one of "
                         f"{', '.join(sorted(FORMATS))})")
    return found[0]


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    target: str | None = None,
    task: str | None = None,
    segments: int | None = None,
    features: str | os.PathLike | None = None,
) -> FeatureSet:
    """Read dataset ``name`` from ``root`` into a FeatureSet."""
    reader = get_reader(name)
    if name in GENERATED and root is not None:
        raise S4AQAError(f"dataset '{name}' is generated in memory and reads no files; drop "
                         "--root, or name the format of the folder with --dataset")
    if name not in GENERATED:
        if root is None:
            raise S4AQAError(f"dataset '{name}' needs --root PATH (the folder holding its files)")
        root = Path(root)
        if not root.is_dir():
            raise S4AQAError(f"{root}: dataset folder not found; check --root")
    return reader(root, target=target, task=task, segments=segments, features=features)
