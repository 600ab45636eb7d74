"""Score raw videos with a trained run: decode, extract I3D features the way the run's training
features were extracted, resample to the run's segment count, predict."""

from __future__ import annotations

import os
from pathlib import Path

from s4aqa.data.featureset import resample_segments
from s4aqa.errors import S4AQAError
from s4aqa.features.extract import read_manifest, video_features
from s4aqa.features.video import DEFAULT_CROP, DEFAULT_RESIZE
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


def score_videos(videos: list[str | os.PathLike], run: str | os.PathLike, *, device: str = "cpu",
                 batch_size: int = 8, segments: str | None = None,
                 weights: str | os.PathLike | None = None,
                 root: str | os.PathLike | None = None) -> list[tuple[str, float | None, str]]:
    """(video id, score or None, error message) for each video; a bad video does not stop the rest."""
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
    resize = int(recorded.get("resize", DEFAULT_RESIZE))
    crop = int(recorded.get("crop", DEFAULT_CROP))
    precision = recorded.get("precision", "fp32")
    model = load_i3d(weights, device)
    out: list[tuple[str, float | None, str]] = []
    for video in videos:
        video_id = Path(video).stem
        try:
            features = video_features(video, spec, model=model, device=device,
                                      batch_size=batch_size, resize=resize, crop=crop,
                                      precision=precision)
        except S4AQAError as exc:
            out.append((video_id, None, str(exc)))
            continue
        if features.shape[1] != dim:
            raise S4AQAError(f"the run was trained on {dim}-d features, I3D gives "
                             f"{features.shape[1]}; it cannot score videos")
        score = float(method.predict(resample_segments(features, segments_count)[None])[0])
        out.append((video_id, score, ""))
    return out

