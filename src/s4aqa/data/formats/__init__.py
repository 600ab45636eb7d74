"""Dataset readers: one module per on-disk format, each registered by name.

A reader module defines ``read(root, *, target=None, task=None, segments=None, features=None)
-> FeatureSet`` and registers it with ``@register_reader(name, detect=..., generated=...)``:
``target`` picks the score (e.g. Fis-V 'tes' / 'pcs' / 'total'), ``task`` restricts to one
task or group, ``segments`` is the fixed number of segments every video is resampled to, and
``features`` overrides where the per-video feature arrays are found. ``detect(root) -> bool``
says whether a folder looks like the format (for ``--root`` without ``--dataset``);
``generated`` readers make their data in memory and take no root; ``unlisted`` readers
(``folder``) also take ``unlisted`` (``UNLISTED_CHOICES``: what feature files with no line in
the score table are). A new format is one new module here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.registry import Registry

Reader = Callable[..., FeatureSet]

READERS = Registry("dataset", "s4aqa.data.formats")

# feature files that no line of a score table names: unlabeled training videos, or left out
UNLISTED_CHOICES = ("unlabeled", "ignore")


def register_reader(name: str, *, detect: Callable[[Path], bool] | None = None,
                    generated: bool = False, unlisted: bool = False):
    """Register a format's ``read`` function under ``name``."""
    return READERS.register(name, detect=detect, generated=generated, unlisted=unlisted)


def detect_format(root: str | os.PathLike) -> str:
    """The format of the dataset folder ``root``, recognised by its files (for ``--root``
    without ``--dataset``); an error when no format or several match."""
    root = Path(root)
    if not root.is_dir():
        raise S4AQAError(f"{root}: dataset folder not found; check --root")
    found = [entry.name for entry in READERS
             if entry.info["detect"] is not None and entry.info["detect"](root)]
    if len(found) != 1:
        what = "is none of the formats s4aqa recognises" if not found else \
            f"matches several formats ({', '.join(found)})"
        raise S4AQAError(f"--root {root} {what}; pass --dataset NAME (one of "
                         f"{', '.join(READERS.names())})")
    return found[0]


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    target: str | None = None,
    task: str | None = None,
    segments: int | None = None,
    features: str | os.PathLike | None = None,
    unlisted: str = UNLISTED_CHOICES[0],
) -> FeatureSet:
    """Read dataset ``name`` from ``root`` into a FeatureSet."""
    entry = READERS.entry(name)
    reader_options = {}
    if entry.info.get("unlisted"):
        reader_options["unlisted"] = unlisted
    elif unlisted != UNLISTED_CHOICES[0]:
        raise S4AQAError(f"--unlisted {unlisted}: dataset '{name}' reads only the videos its "
                         "label files name; drop --unlisted")
    if entry.info["generated"]:
        if root is not None:
            raise S4AQAError(f"dataset '{name}' is generated in memory and reads no files; drop "
                             "--root, or name the format of the folder with --dataset")
    else:
        if root is None:
            raise S4AQAError(f"dataset '{name}' needs --root PATH (the folder holding its files)")
        root = Path(root)
        if not root.is_dir():
            raise S4AQAError(f"{root}: dataset folder not found; check --root")
    return entry.value(root, target=target, task=task, segments=segments, features=features,
                       **reader_options)
