"""Videos → per-video I3D segment features: ``<out>/<id>.npy`` of shape ``(T, 1024)`` float32.

The features come from the decode-ahead pipeline of :mod:`s4aqa.features.pipeline`: in this
process (``backend="local"``), or on Ray workers that each hold one model and decode their own
share of the videos (``backend="ray"``, :mod:`s4aqa.features.distributed`). Either way this
process alone writes the results, as each video's features arrive: every file atomically, and
``manifest.json`` beside the features records, per video, its source (path, size, modification
time), frame count, frame rate and the extraction options, so a second run over the same videos
skips those already done and redoes those whose source or options changed.

A video that cannot be read, or is too short for one clip, is reported in one line and skipped;
the rest go on. :func:`extract` returns an :class:`ExtractSummary` (``exit_code`` is 1 if any failed).

For scoring new videos, :func:`video_features` / :func:`iter_video_features` give the same
features in memory, with the options a trained run recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from s4aqa.cluster import check_device, check_gpus, import_ray
from s4aqa.errors import S4AQAError
from s4aqa.features.distributed import ray_video_features
from s4aqa.features.i3d import FEATURE_DIM
from s4aqa.features.pipeline import (
    PRECISIONS,
    ClipRunner,
    VideoResult,
    iter_video_features,
    video_features,
)
from s4aqa.features.segments import SegmentSpec
from s4aqa.features.video import DEFAULT_CROP, DEFAULT_RESIZE, find_videos
from s4aqa.features.weights import default_weights_path, load_i3d, weights_fingerprint
from s4aqa.io import write_json, write_npy

# the in-memory pipeline, where callers have always found it
__all__ = ["ClipRunner", "ExtractSummary", "MANIFEST", "VideoResult", "extract",
           "iter_video_features", "read_manifest", "video_features"]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "s4aqa-i3d-features"
BACKENDS = ("local", "ray")


# ---------------------------------------------------------------------------------------------
# extract to a folder, resumable
# ---------------------------------------------------------------------------------------------

@dataclass
class ExtractSummary:
    out_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    clips: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def line(self) -> str:
        rate = f", {self.clips / self.seconds:.1f} clips/s" if self.seconds > 0 and self.clips else ""
        return (f"{len(self.done)} extracted, {len(self.skipped)} already done, {len(self.failed)} failed "
                f"-> {self.out_dir}{rate}")


def read_manifest(out_dir: str | os.PathLike) -> dict:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "version": 1, "feature_dim": FEATURE_DIM, "videos": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise S4AQAError(f"{path}: unreadable manifest ({exc}); delete it to extract everything again") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("videos"), dict):
        raise S4AQAError(f"{path}: not an s4aqa features manifest; use another --out folder or delete it")
    return manifest


def _model_fingerprint(model: torch.nn.Module) -> str:
    tag = getattr(model, "weights_fingerprint", None)
    if tag:
        return str(tag)
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return "state:" + digest.hexdigest()[:16]


def _weights_fingerprint(weights: str | os.PathLike | None) -> str:
    path = Path(weights).expanduser() if weights is not None else default_weights_path()
    if not path.is_file():
        if weights is None:
            raise S4AQAError(f"I3D weights not found at {path}; run `s4aqa weights` once to fetch and convert "
                             "them (or pass --weights PATH)")
        raise S4AQAError(f"weights file {path} not found")
    return weights_fingerprint(path)


def _source_stat(path: Path) -> dict | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def extract(videos: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
            segments: SegmentSpec | str = "mtl", device: str | torch.device = "cpu",
            batch_size: int = 8, weights: str | os.PathLike | None = None, *,
            model: torch.nn.Module | None = None, workers: int = 2, resize: int = DEFAULT_RESIZE,
            crop: int = DEFAULT_CROP, precision: str = "fp32", force: bool = False,
            progress: bool = True, log: Callable[[str], None] | None = None,
            backend: str = "local", address: str | None = None,
            gpus_per_worker: float = 0.0) -> ExtractSummary:
    """Extract ``(T, 1024)`` I3D features of every video into ``out_dir/<stem>.npy``; resumable.

    ``videos``: files, or folders (their video files, not recursive). ``segments``: see
    :mod:`s4aqa.features.segments`. ``weights``: None for the cached Kinetics-400 weights, or a
    path; ``model`` overrides both (tests, benchmarks). Videos whose ``.npy`` exists and whose
    source size, modification time and options match the manifest are skipped (``force`` redoes them).
    ``backend``: ``local`` (this process, ``workers`` decoding threads) or ``ray`` (Ray workers
    on a local Ray instance or the cluster at ``address``, ``workers`` decoding threads and as
    many CPUs each, ``gpus_per_worker`` of a GPU each; see :mod:`s4aqa.features.distributed`).
    """
    started = time.perf_counter()
    if backend not in BACKENDS:
        raise S4AQAError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if backend == "ray":
        import_ray("--backend ray")
        gpus_per_worker = check_gpus("--gpus-per-worker", gpus_per_worker)
        check_device(str(device), gpus_per_worker, "--gpus-per-worker")
    elif address or gpus_per_worker:
        raise S4AQAError("--address and --gpus-per-worker need --backend ray")
    spec = SegmentSpec.parse(segments)
    if precision not in PRECISIONS:
        raise S4AQAError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if crop > resize or crop < 1:
        raise S4AQAError(f"crop {crop} must be between 1 and resize {resize}")
    say = log or (lambda text: _tqdm_write(text))
    paths = find_videos(list(videos))
    if not paths:
        raise S4AQAError("no videos given (or none found in the given folders); pass video files or folders")
    by_id: dict[str, Path] = {}
    for path in paths:
        vid = path.stem
        if vid in by_id and by_id[vid].resolve() != path.resolve():
            raise S4AQAError(f"two videos share the id '{vid}' ({by_id[vid]} and {path}); "
                             "rename one, the id is the file name without extension")
        by_id[vid] = path
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise S4AQAError(f"--out {out} is a file; give a folder")
    manifest = read_manifest(out)

    fingerprint = _model_fingerprint(model) if model is not None else _weights_fingerprint(weights)
    options = {"model": "i3d_rgb_mixed5c_mean", "weights": fingerprint, "segments": str(spec),
               "resize": resize, "crop": crop, "precision": precision}
    summary = ExtractSummary(out_dir=out)
    todo: list[tuple[str, Path]] = []
    for vid, path in by_id.items():
        stat = _source_stat(path)
        entry = manifest["videos"].get(vid)
        if (not force and stat is not None and isinstance(entry, dict) and (out / f"{vid}.npy").is_file()
                and entry.get("size") == stat["size"] and entry.get("mtime_ns") == stat["mtime_ns"]
                and entry.get("options") == options):
            summary.skipped.append(vid)
        else:
            todo.append((vid, path))
    if not todo:
        summary.seconds = time.perf_counter() - started
        return summary

    if model is None:
        model = load_i3d(weights, "cpu")
    if backend == "ray":  # the model goes to the Ray workers: they need no weights file
        results = ray_video_features(todo, spec, model, device=str(device), precision=precision,
                                     batch_size=batch_size, workers=workers, resize=resize,
                                     crop=crop, address=address, gpus=gpus_per_worker, say=say)
    else:
        runner = ClipRunner(model, device, precision)
        results = iter_video_features(todo, spec, runner, batch_size=batch_size, workers=workers,
                                      resize=resize, crop=crop)
    bar = _progress(len(todo), progress)
    try:
        for result in results:
            if result.ok:
                feats = result.features
                write_npy(out / f"{result.id}.npy", feats)
                stretched = spec.stretched(int(result.info["frames"]))
                if stretched:
                    say(f"note: {result.id}: {stretched}")
                stat = _source_stat(result.path) or {}
                manifest["videos"][result.id] = {
                    "source": str(result.path.resolve()), **stat,
                    "frames": result.info["frames"], "fps": result.info["fps"],
                    "width": result.info["width"], "height": result.info["height"],
                    "clips": int(feats.shape[0]), "options": options,
                    **({"stretched": True} if stretched else {}),
                    "extracted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
                write_json(out / MANIFEST, manifest)
                summary.done.append(result.id)
                summary.clips += int(feats.shape[0])
            else:
                summary.failed[result.id] = result.error or "failed"
                say(f"failed: {result.error}")
            if bar is not None:
                bar.update(1)
                elapsed = time.perf_counter() - started
                bar.set_postfix(clips=summary.clips, clips_s=f"{summary.clips / max(elapsed, 1e-9):.1f}")
    finally:
        results.close()  # stops the decoding threads, or the Ray workers and a local Ray
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    return tqdm(total=total, unit="video", desc="extract", file=sys.stderr, dynamic_ncols=True)


def _tqdm_write(text: str) -> None:
    tqdm.write(text, file=sys.stderr)
