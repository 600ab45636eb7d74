"""Videos → I3D segment features in memory: the model step and the decode-ahead pipeline.

Decoding runs ahead on worker threads (PyAV decodes and scales without holding the GIL) while the
calling thread batches clips, across videos, through the model (:class:`ClipRunner`).
:func:`iter_video_features` yields one :class:`VideoResult` per video as it completes (a video
that cannot be read gives its one-line error instead); :func:`video_features` gives one video's
features, for scoring new videos. ``extract`` (to a folder) and its Ray workers
(``distributed``) are built on these.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from s4aqa.device import resolve_device
from s4aqa.errors import S4AQAError
from s4aqa.features.segments import SegmentSpec
from s4aqa.features.video import DEFAULT_CROP, DEFAULT_RESIZE, RESTART, ClipReader, to_model_input
from s4aqa.features.weights import load_i3d

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
        except S4AQAError as exc:  # the file's problem (ClipReader says which): the next
            put(("error", vid, str(exc)))
        except Exception as exc:  # noqa: BLE001 - not a file's problem but ours: handed to
            put(("fatal", vid, exc))  # the consumer, which raises it (a thread cannot)
            return
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
            elif kind == "fatal":
                raise message[2]
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
