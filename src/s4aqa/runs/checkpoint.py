"""Checkpoints: weights in safetensors beside a JSON with everything `predict` needs.

``model.json`` holds the method name and options, the feature shape, the score normalisation
and the dataset options the features were made with; ``model.safetensors`` holds the tensors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save

from s4aqa import io
from s4aqa.errors import S4AQAError
from s4aqa.methods.registry import create

WEIGHTS = "model.safetensors"
META = "model.json"
FORMAT_VERSION = 1


def save_checkpoint(directory: str | os.PathLike, method, config: dict[str, Any],
                    intervals: dict[str, Any] | None = None) -> None:
    """``intervals``: the run's prediction intervals (``Intervals.to_json``), kept so that a
    video scored later gets the same interval."""
    directory = Path(directory)
    tensors = {k: v.detach().cpu().contiguous() for k, v in method.state_dict().items()}
    io.write_bytes(directory / WEIGHTS, save(tensors))
    io.write_json(directory / META, {
        "format_version": FORMAT_VERSION,
        "method": method.label,
        "options": method.options_dict(),
        "seed": method.seed,
        "extra": method.extra_state(),
        "config": config,
        **({"intervals": intervals} if intervals is not None else {}),
    })


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / META
    if not path.is_file():
        raise S4AQAError(f"{directory}: no checkpoint ({META}) found; is this a run folder of `s4aqa train`?")
    try:
        meta = json.loads(path.read_text())
    except ValueError as exc:
        raise S4AQAError(f"{path}: unreadable checkpoint metadata ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise S4AQAError(f"{path}: checkpoint format {meta.get('format_version')} is not supported")
    return meta


def load_checkpoint(directory: str | os.PathLike, device: str = "cpu"):
    """Rebuild the trained method saved in ``directory``."""
    meta = read_meta(directory)
    weights = Path(directory) / WEIGHTS
    if not weights.is_file():
        raise S4AQAError(f"{directory}: {WEIGHTS} is missing; retrain the run")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise S4AQAError(f"{weights}: unreadable weights ({exc}); retrain the run") from None
    method = create(meta["method"], meta["options"], seed=meta.get("seed", 0), device=device)
    try:
        method.load_state(tensors, meta["extra"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise S4AQAError(f"{directory}: weights do not match the method ({exc})") from None
    return method, meta

