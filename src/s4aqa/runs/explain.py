"""Where the points were won and lost: each segment's contribution to a trained run's score.

A segment's contribution is how much the predicted score drops when that segment alone is
replaced by a reference segment: ``predict(video) - predict(video with segment t replaced)``,
in score units (occlusion). It goes through ``method.predict`` only, so it explains every
method alike, closed-form and deep (a deep method's prediction blends its networks with a
closed-form partner: the blend is what is explained). The N x T perturbed copies are predicted
in chunks.

The reference (``reference``):

- ``mean`` (the default): the labeled videos' mean segment at the same position, i.e. "what
  an average labeled performance shows at this moment". It needs the run's training data.
- ``recovery``: the method's own recovery of the segment from the rest of the video, for a
  method that has one (``method.recovered_segments``: the MSFR decoder of ``s4aqa`` and its
  ``msfr`` variants, given the video with that segment masked). On the synthetic data, whose
  true contributions are known, it agreed no better with the truth than ``mean`` and worse
  across videos (docs/explain.md):
  a recovery predicted from the other segments carries the same skill and so hides the part
  of a segment's quality that the rest of the video predicts.

The deletion test (``deletion_test``) measures how faithful the contributions are: replacing
the K segments with the largest contributions should move the prediction more than replacing
K random ones.

This module computes; the timeline pictures and the written files (segments.csv and a PNG per
video) are :mod:`s4aqa.runs.timeline`'s.
"""

from __future__ import annotations

import csv
import io as _io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s4aqa.data.splits import Split
from s4aqa.errors import S4AQAError
from s4aqa.runs.checkpoint import load_checkpoint
from s4aqa.runs.score import run_video_features
from s4aqa.runs.trained import feature_files, run_data

REFERENCES = ("mean", "recovery")
CHUNK = 512  # perturbed videos per predict call


@dataclass
class Explanation:
    """Contributions of each segment of N videos to their predicted scores."""

    ids: list[str]
    predicted: np.ndarray  # (N,) the predicted scores
    contributions: np.ndarray  # (N, T) in score units
    reference: str  # which reference the contributions are against
    spans: list[np.ndarray | None]  # per video, (T, 2) start and end in seconds, or None
    truth: np.ndarray | None = None  # (N, T) true contributions where the data knows them

    def top(self, index: int, k: int) -> list[tuple[int, float]]:
        """The ``k`` segments of video ``index`` that moved its score most (either way)."""
        row = self.contributions[index]
        order = np.argsort(-np.abs(row), kind="stable")[:k]
        return [(int(t), float(row[t])) for t in order]

    def csv_text(self) -> str:
        buffer = _io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        timed = any(span is not None for span in self.spans)
        writer.writerow(["id", "segment", "contribution"]
                        + (["start_s", "end_s"] if timed else []))
        for i, vid in enumerate(self.ids):
            for t, value in enumerate(self.contributions[i]):
                row = [vid, t, f"{value:.6f}"]
                if timed:
                    span = self.spans[i]
                    row += ([f"{span[t, 0]:.3f}", f"{span[t, 1]:.3f}"] if span is not None
                            else ["", ""])
                writer.writerow(row)
        return buffer.getvalue()


# ---- the computation ---------------------------------------------------------------------------
def mean_reference(features: np.ndarray) -> np.ndarray:
    """The mean segment at each position, (T, D), of the (N, T, D) ``features``."""
    return np.asarray(features, dtype=np.float32).mean(axis=0)


def replaced(features: np.ndarray, reference: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Copies of ``features`` (N, T, D) with the segments where ``masks`` (N, M, T) is true
    replaced by ``reference`` ((T, D) or (N, T, D)): (N * M, T, D)."""
    n, t, d = features.shape
    ref = np.broadcast_to(reference, (n, t, d))
    out = np.where(masks[..., None], ref[:, None], features[:, None])
    return out.reshape(n * masks.shape[1], t, d).astype(np.float32, copy=False)


def predict_chunked(method, arrays_of, count: int) -> np.ndarray:
    """``method.predict`` over ``count`` videos of one per-video array builder, in chunks."""
    out = []
    for start in range(0, count, CHUNK):
        out.append(np.asarray(method.predict(arrays_of(start, min(start + CHUNK, count))),
                              dtype=np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def occlusion(method, features: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted (N,), contributions (N, T)): each segment replaced by ``reference`` alone."""
    features = np.asarray(features, dtype=np.float32)
    n, t, _ = features.shape
    predicted = np.asarray(method.predict(features), dtype=np.float64)
    eye = np.eye(t, dtype=bool)[None]
    per = max(1, CHUNK // t)  # videos per chunk
    moved = []
    for start in range(0, n, per):
        stop = min(start + per, n)
        ref = reference if reference.ndim == 2 else reference[start:stop]
        batch = replaced(features[start:stop], ref, np.broadcast_to(eye, (stop - start, t, t)))
        moved.append(np.asarray(method.predict(batch), dtype=np.float64).reshape(stop - start, t))
    contributions = predicted[:, None] - np.concatenate(moved) if moved else np.zeros((0, t))
    return predicted, contributions


def reference_for(method, features: np.ndarray, mean: np.ndarray | None,
                  reference: str) -> np.ndarray:
    """The (T, D) or (N, T, D) reference segments ``reference`` names."""
    if reference not in REFERENCES:
        raise S4AQAError(f"unknown reference '{reference}'; choose one of {', '.join(REFERENCES)}")
    if reference == "recovery":
        recovered = method.recovered_segments(features)
        if recovered is None:
            raise S4AQAError(f"method '{method.label}' recovers no segments; use --reference mean")
        return recovered
    if mean is None:
        raise S4AQAError("the mean reference needs the run's labeled videos; pass --root where "
                         "the run's dataset is now")
    return mean


def explain(method, ids: list[str], features: np.ndarray, mean: np.ndarray | None,
            reference: str = "mean", spans: list | None = None,
            truth: np.ndarray | None = None) -> Explanation:
    """The contributions of every segment of ``features`` (N, T, D) to ``method``'s scores."""
    features = np.asarray(features, dtype=np.float32)
    ref = reference_for(method, features, mean, reference)
    predicted, contributions = occlusion(method, features, ref)
    return Explanation(list(ids), predicted, contributions, reference,
                       list(spans) if spans is not None else [None] * len(ids), truth)


def deletion_test(method, features: np.ndarray, contributions: np.ndarray,
                  reference: np.ndarray, fraction: float = 0.1, draws: int = 5,
                  seed: int = 0) -> dict[str, float]:
    """How far the prediction moves (mean absolute change, score units) when the
    ``fraction`` of segments with the largest |contribution| are replaced by ``reference``,
    against as many random segments (``draws`` random sets per video)."""
    features = np.asarray(features, dtype=np.float32)
    n, t, _ = features.shape
    k = max(1, int(round(fraction * t)))
    predicted = np.asarray(method.predict(features), dtype=np.float64)
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]
    top = np.zeros((n, 1, t), dtype=bool)
    np.put_along_axis(top[:, 0], order, True, axis=1)
    rng = np.random.default_rng(seed)
    random = np.zeros((n, draws, t), dtype=bool)
    for i in range(n):
        for j in range(draws):
            random[i, j, rng.choice(t, size=k, replace=False)] = True

    def moved(masks: np.ndarray) -> np.ndarray:
        m = masks.shape[1]
        out = predict_chunked(method, lambda a, b: _rows(features, reference, masks, a, b), n * m)
        return np.abs(out.reshape(n, m) - predicted[:, None]).mean(axis=1)

    top_move, random_move = moved(top), moved(random)
    return {"k": k, "top": float(top_move.mean()), "random": float(random_move.mean()),
            "ratio": float(top_move.mean() / max(random_move.mean(), 1e-12))}


def _rows(features, reference, masks, start, stop):
    """Perturbed copies number start..stop of the flattened (video, mask) pairs."""
    m = masks.shape[1]
    index = np.arange(start, stop)
    video, which = index // m, index % m
    ref = reference if reference.ndim == 2 else reference[video]
    ref = np.broadcast_to(ref, features[video].shape)
    return np.where(masks[video, which][..., None], ref, features[video]).astype(np.float32)


# ---- a trained run -------------------------------------------------------------------------------
def labeled_mean(run: Path, data) -> np.ndarray:
    """The mean segment at each position over the run's labeled videos (those it trained on,
    its validation slice included)."""
    split = Split.load(run / "split.json")
    return mean_reference(data.select_ids(list(split.labeled) + list(split.validation)).features)


def explain_run(run: str | os.PathLike, *, files: list[Path] | None = None,
                videos: list[Path] | None = None, ids: list[str] | None = None,
                reference: str = "mean", root: str | os.PathLike | None = None,
                device: str = "cpu", notify=None, **video_options) -> Explanation:
    """Explain a trained run's scores: of its test videos (default), of the videos ``ids`` of
    its dataset, of feature ``files``, or of raw ``videos`` (extracted as ``score`` does)."""
    run = Path(run)
    method, meta = load_checkpoint(run, device=device)
    shape = meta["extra"].get("shape")
    if shape is None:
        raise S4AQAError(f"{run}: the run's method does not record its feature shape")
    data = None
    try:
        data = run_data(meta, root)
    except S4AQAError:
        if files is None and videos is None:
            raise
    mean = labeled_mean(run, data) if data is not None else None
    spans: list | None = None
    truth = None
    if videos is not None:
        names, arrays, spans = [], [], []
        for vid, features, error, span in run_video_features(videos, run, device=device,
                                                             root=root, method=method,
                                                             meta=meta, **video_options):
            if error:
                if notify:
                    notify(f"skipped {vid}: {error}")
                continue
            names.append(vid)
            arrays.append(features)
            spans.append(span)
        if not arrays:
            raise S4AQAError("no video could be read")
        chosen = (names, np.stack(arrays))
    elif files is not None:
        chosen = feature_files(files, shape)
    else:
        if ids is None:
            ids = list(Split.load(run / "split.json").test)
        picked = data.select_ids(ids)
        chosen = (picked.ids, picked.features)
        if "true_contribution" in picked.meta:
            truth = np.asarray(picked.meta["true_contribution"], dtype=np.float64)
    names, features = chosen
    if ids is not None and (files is not None or videos is not None):
        keep = [i for i, vid in enumerate(names) if vid in set(ids)]
        missing = sorted(set(ids) - set(names))
        if missing:
            raise S4AQAError(f"--ids: {', '.join(missing[:5])} not among the given videos")
        names, features = [names[i] for i in keep], features[keep]
        spans = [spans[i] for i in keep] if spans is not None else None
    return explain(method, names, features, mean, reference, spans, truth)
