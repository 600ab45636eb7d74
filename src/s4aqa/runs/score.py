"""Score raw videos with a trained run: decode, extract I3D features the way the run's training
features were extracted, resample to the run's segment count, predict."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from s4aqa.data.featureset import resample_segments
from s4aqa.errors import S4AQAError
from s4aqa.features.extract import read_manifest, video_features
from s4aqa.features.segments import SegmentSpec
from s4aqa.features.video import DEFAULT_CROP, DEFAULT_RESIZE, probe
from s4aqa.features.weights import load_i3d
from s4aqa.runs.checkpoint import load_checkpoint


def extraction_options(meta: dict, root: str | os.PathLike | None = None) -> dict | None:
    """The extraction options recorded beside the run's training features, if s4aqa made them
    (``root``: where those features are now, if they moved)."""
    config = meta.get("config", {})
    folder = root or config.get("features") or config.get("root")
    if not folder or not Path(folder).is_dir():
        return None
    videos = read_manifest(folder).get("videos", {})
    options = [entry.get("options") for entry in videos.values() if entry.get("options")]
    if not options:
        return None
    distinct = {repr(sorted(o.items())) for o in options}
    if len(distinct) > 1:
        raise S4AQAError(f"{folder}: the training features were extracted with different options; "
                         "pass --segments to say how to cut the new videos")
    return options[0]


def run_video_features(videos: list[str | os.PathLike], run: str | os.PathLike, *,
                       device: str = "cpu", batch_size: int = 8, segments: str | None = None,
                       weights: str | os.PathLike | None = None,
                       root: str | os.PathLike | None = None, method=None, meta: dict | None = None):
    """For each video, (video id, features resampled to the run's segment count or None,
    error message, (T, 2) start and end of each segment in seconds or None): extracted the way
    the run's training features were. ``method``/``meta``: the run's checkpoint, if loaded."""
    if method is None or meta is None:
        method, meta = load_checkpoint(run, device=device)
    shape = meta["extra"].get("shape")
    if shape is None:
        raise S4AQAError(f"{run}: the run's method does not record its feature shape")
    segments_count, dim = shape
    recorded = extraction_options(meta, root) or {}
    spec = segments or recorded.get("segments")
    if spec is None:
        raise S4AQAError(f"{run}: the run's training features were not made by `s4aqa extract`; "
                         "pass --segments (e.g. mtl or uniform:32) to say how to cut the videos")
    spec = SegmentSpec.parse(spec)
    resize = int(recorded.get("resize", DEFAULT_RESIZE))
    crop = int(recorded.get("crop", DEFAULT_CROP))
    precision = recorded.get("precision", "fp32")
    model = load_i3d(weights, device)
    for video in videos:
        video_id = Path(video).stem
        try:
            features = video_features(video, spec, model=model, device=device,
                                      batch_size=batch_size, resize=resize, crop=crop,
                                      precision=precision)
            spans = segment_spans(video, spec, len(features), segments_count)
        except S4AQAError as exc:
            yield video_id, None, str(exc), None
            continue
        if features.shape[1] != dim:
            raise S4AQAError(f"the run was trained on {dim}-d features, I3D gives "
                             f"{features.shape[1]}; it cannot score videos")
        yield video_id, resample_segments(features, segments_count), "", spans


def segment_spans(video: str | os.PathLike, spec: SegmentSpec, clips: int,
                  segments: int) -> np.ndarray | None:
    """(segments, 2) start and end, in seconds, of the frames behind each of the run's segments
    (a resampled segment covers the clips it averages or lies between); None without a frame
    rate."""
    try:
        info = probe(video)
    except S4AQAError:  # the features were read: the spans are only a courtesy
        return None
    if not info.fps or info.fps <= 0:
        return None
    frames = spec.frame_indices(info.frames)[:clips]
    first = np.floor(np.arange(segments) * clips / segments).astype(int)
    last = np.maximum(first, np.ceil((np.arange(segments) + 1) * clips / segments).astype(int) - 1)
    last = np.minimum(last, clips - 1)
    return np.stack([frames[first, 0], frames[last, -1] + 1], axis=1) / float(info.fps)


def score_videos(videos: list[str | os.PathLike], run: str | os.PathLike, *, device: str = "cpu",
                 batch_size: int = 8, segments: str | None = None,
                 weights: str | os.PathLike | None = None,
                 root: str | os.PathLike | None = None) -> list[tuple[str, float | None, str]]:
    """(video id, score or None, error message) for each video; a bad video does not stop the rest."""
    method, meta = load_checkpoint(run, device=device)
    out: list[tuple[str, float | None, str]] = []
    for video_id, features, error, _ in run_video_features(
            videos, run, device=device, batch_size=batch_size, segments=segments,
            weights=weights, root=root, method=method, meta=meta):
        score = None if features is None else float(method.predict(features[None])[0])
        out.append((video_id, score, error))
    return out
