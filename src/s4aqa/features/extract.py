"""Videos → per-video I3D segment features: ``<out>/<id>.npy`` of shape ``(T, 1024)`` float32.

Decoding runs ahead on worker threads (PyAV decodes and scales without holding the GIL) while the
main thread batches clips, across videos, through the model. Every file is written atomically;
``manifest.json`` beside the features records, per video, its source (path, size, modification
time), frame count, frame rate and the extraction options, so a second run over the same videos
skips those already done and redoes those whose source or options changed.

A video that cannot be read, or is too short for one clip, is reported in one line and skipped;
the rest go on. :func:`extract` returns an :class:`ExtractSummary` (``exit_code`` is 1 if any failed).

For scoring new videos, :func:`video_features` / :func:`iter_video_features` give the same
features in memory, with the options a trained run recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from s4aqa.device import resolve_device
from s4aqa.errors import S4AQAError
from s4aqa.features.i3d import FEATURE_DIM
from s4aqa.features.segments import SegmentSpec
from s4aqa.features.video import (
    DEFAULT_CROP,
    DEFAULT_RESIZE,
    RESTART,
    ClipReader,
    find_videos,
    to_model_input,
)
from s4aqa.features.weights import default_weights_path, load_i3d, weights_fingerprint
from s4aqa.io import write_json, write_npy

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "s4aqa-i3d-features"
PRECISIONS = ("fp32", "bf16")


# ---------------------------------------------------------------------------------------------
# running clips through the model
# ---------------------------------------------------------------------------------------------

class ClipRunner:
    """Turns batches of uint8 clips ``(B, L, H, W, 3)`` into features ``(B, 1024)`` float32.

    Inference mode always; on CUDA the model and inputs use ``channels_last_3d`` and, with
    ``precision='bf16'``, bf16 autocast. ``compile=True`` wraps ``model.features`` in torch.compile.
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu",
                 precision: str = "fp32", compile: bool = False):
        if precision not in PRECISIONS:
            raise S4AQAError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
        self.device = resolve_device(device)
        self.precision = precision
        model = model.eval().to(self.device)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last_3d)
        self.model = model
        self._features = torch.compile(model.features) if compile else model.features

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        batch = np.stack(clips) if not isinstance(clips, np.ndarray) else clips
        with torch.inference_mode(), self._autocast():
            x = to_model_input(torch.from_numpy(batch), device=self.device)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last_3d)
            out = self._features(x)
        return out.float().cpu().numpy()


# ---------------------------------------------------------------------------------------------
# decode-ahead pipeline
# ---------------------------------------------------------------------------------------------

@dataclass
class VideoResult:
    """One video's outcome: ``features`` ``(T, 1024)`` and ``info``, or ``error`` (a one-line message)."""

    id: str
    path: Path
    features: np.ndarray | None = None
    info: dict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _State:
    path: Path
    generation: int = 0
    got: dict = field(default_factory=dict)
    expected: int | None = None
    info: dict | None = None


def _decode_worker(jobs: "queue.Queue[tuple[str, Path] | None]", out: "queue.Queue", stop: threading.Event,
                   spec: SegmentSpec, resize: int, crop: int) -> None:
    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    while not stop.is_set():
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        vid, path = job
        try:
            reader = ClipReader(path, spec, resize=resize, crop=crop)
            for item in reader:
                if item == RESTART:
                    ok = put(("restart", vid))
                else:
                    index, clip = item  # type: ignore[misc]
                    ok = put(("clip", vid, index, clip))
                if not ok:
                    return
            put(("end", vid, reader.info.as_dict(), reader.n_clips))
        except S4AQAError as exc:
            put(("error", vid, str(exc)))
        except Exception as exc:  # one bad file must not stop the others
            put(("error", vid, f"{path}: unexpected {type(exc).__name__}: {exc}"))
    put(("worker_done",))


def iter_video_features(videos: Iterable[tuple[str, str | os.PathLike]] | Iterable[str | os.PathLike],
                        segments: SegmentSpec | str, runner: ClipRunner, *, batch_size: int = 8,
                        workers: int = 2, resize: int = DEFAULT_RESIZE,
                        crop: int = DEFAULT_CROP) -> Iterator[VideoResult]:
    """Features of many videos, clips batched across videos; yields results as videos complete.

    ``videos``: paths (id = file stem) or ``(id, path)`` pairs. Decoding runs on ``workers`` threads.
    """
    spec = SegmentSpec.parse(segments)
    if batch_size < 1:
        raise S4AQAError(f"batch size must be at least 1, got {batch_size}")
    jobs: queue.Queue = queue.Queue()
    states: dict[str, _State] = {}
    for item in videos:
        vid, path = item if isinstance(item, tuple) else (Path(item).stem, item)
        if vid in states:
            raise S4AQAError(f"two videos share the id '{vid}' ({states[vid].path} and {path}); "
                             "rename one, or pass (id, path) pairs")
        jobs.put((vid, Path(path)))
        states[vid] = _State(Path(path))
    if not states:
        return
    workers = max(1, min(workers, len(states)))
    out: queue.Queue = queue.Queue(maxsize=max(2 * batch_size, 4))
    stop = threading.Event()
    threads = [threading.Thread(target=_decode_worker, args=(jobs, out, stop, spec, resize, crop),
                                name=f"s4aqa-decode-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()

    pending: list[tuple[str, int, int, np.ndarray]] = []

    def finished(vid: str) -> VideoResult | None:
        state = states.get(vid)
        if state is None or state.expected is None or len(state.got) < state.expected:
            return None
        del states[vid]
        feats = np.stack([state.got[i] for i in range(state.expected)]).astype(np.float32, copy=False)
        return VideoResult(vid, state.path, features=feats, info=state.info)

    def flush() -> list[VideoResult]:
        if not pending:
            return []
        feats = runner([clip for *_, clip in pending])
        touched = []
        for (vid, generation, index, _), row in zip(pending, feats):
            state = states.get(vid)
            if state is not None and state.generation == generation:
                state.got[index] = row
                touched.append(vid)
        pending.clear()
        return [r for r in (finished(v) for v in dict.fromkeys(touched)) if r is not None]

    alive = len(threads)
    try:
        while alive:
            message = out.get()
            kind = message[0]
            if kind == "worker_done":
                alive -= 1
            elif kind == "clip":
                _, vid, index, clip = message
                if vid in states:
                    pending.append((vid, states[vid].generation, index, clip))
                if len(pending) >= batch_size:
                    yield from flush()
            elif kind == "restart":
                state = states.get(message[1])
                if state is not None:
                    state.generation += 1
                    state.got.clear()
            elif kind == "end":
                _, vid, info, n_clips = message
                state = states.get(vid)
                if state is not None:
                    state.info, state.expected = info, n_clips
                    result = finished(vid)
                    if result is not None:
                        yield result
            elif kind == "error":
                _, vid, text = message
                state = states.pop(vid, None)
                if state is not None:
                    yield VideoResult(vid, state.path, error=text)
        yield from flush()
        for vid, state in list(states.items()):  # a worker died without a word: report, never hang
            yield VideoResult(vid, state.path, error=f"{state.path}: decoding stopped unexpectedly")
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                out.get_nowait()
        for thread in threads:
            thread.join(timeout=1.0)


def video_features(path: str | os.PathLike, segments: SegmentSpec | str = "mtl",
                   model: torch.nn.Module | None = None, device: str | torch.device = "cpu",
                   batch_size: int = 8, *, resize: int = DEFAULT_RESIZE, crop: int = DEFAULT_CROP,
                   precision: str = "fp32", weights: str | os.PathLike | None = None) -> np.ndarray:
    """The ``(T, 1024)`` float32 I3D features of one video (for scoring new videos).

    ``model``: an I3D (e.g. from :func:`load_i3d`, reuse it across calls); None loads ``weights``
    (None: the cached Kinetics-400 weights). Raises S4AQAError for unreadable or too-short videos.
    """
    if model is None:
        model = load_i3d(weights, device)
    runner = ClipRunner(model, device, precision)
    results = list(iter_video_features([path], segments, runner, batch_size=batch_size, workers=1,
                                       resize=resize, crop=crop))
    result = results[0]
    if not result.ok:
        raise S4AQAError(result.error)
    return result.features  # type: ignore[return-value]


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
            progress: bool = True, log: Callable[[str], None] | None = None) -> ExtractSummary:
    """Extract ``(T, 1024)`` I3D features of every video into ``out_dir/<stem>.npy``; resumable.

    ``videos``: files, or folders (their video files, not recursive). ``segments``: see
    :mod:`s4aqa.features.segments`. ``weights``: None for the cached Kinetics-400 weights, or a
    path; ``model`` overrides both (tests, benchmarks). Videos whose ``.npy`` exists and whose
    source size, modification time and options match the manifest are skipped (``force`` redoes them).
    """
    started = time.perf_counter()
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
    runner = ClipRunner(model, device, precision)
    bar = _progress(len(todo), progress)
    try:
        for result in iter_video_features(todo, spec, runner, batch_size=batch_size, workers=workers,
                                          resize=resize, crop=crop):
            if result.ok:
                feats = result.features
                write_npy(out / f"{result.id}.npy", feats)
                stat = _source_stat(result.path) or {}
                manifest["videos"][result.id] = {
                    "source": str(result.path.resolve()), **stat,
                    "frames": result.info["frames"], "fps": result.info["fps"],
                    "width": result.info["width"], "height": result.info["height"],
                    "clips": int(feats.shape[0]), "options": options,
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
