"""The built-in staged-action generator: the default dataset of `s4aqa demo` and the tests.

An athlete of skill ``s`` performs K stages. Stage k's execution quality depends on the skill
and on the previous stage: ``q_1 = a s + e_1``, ``q_k = a s + b q_{k-1} + e_k``. Each stage
covers consecutive segments; a segment's feature writes its stage's quality along a
stage-specific direction of a high-dimensional space, buried under strong quality-irrelevant
nuisance (a per-video appearance that every segment shares, and per-segment jitter). The score is
a weighted sum of the stage qualities plus judging noise.

Why masked recovery can help here: a hidden segment's quality is predictable only from the
qualities of the other stages (they share the skill), so learning to recover it teaches the
encoder to read qualities out of the nuisance, with no label needed.

With ``group_shifts`` the videos fall into groups (video i into group i mod G, in train and
test alike) that differ in one of two ways: ``look`` moves the group's shared appearance (a
covariate shift: same skills, other-looking features; aligning the groups' representations can
undo it), ``skill`` raises its athletes' skill (a real difference in scores; aligning the groups
would erase it). The ``synthetic_shift`` dataset is such a set; see ``--shift``.
"""

from __future__ import annotations

import numpy as np

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError


def make_staged_actions(
    n_train: int = 400,
    n_test: int = 200,
    stages: int = 4,
    segments_per_stage: int = 4,
    dim: int = 64,
    skill_weight: float = 0.8,
    carry_over: float = 0.5,
    appearance: float = 2.0,
    nuisance: float = 2.0,
    nuisance_rank: int = 8,
    jitter: float = 0.5,
    judge_noise: float = 0.3,
    nonlinear: bool = True,
    seed: int = 0,
    group_shifts: dict[str, dict[str, float]] | None = None,
) -> FeatureSet:
    """Generate ``n_train + n_test`` videos of ``stages * segments_per_stage`` segments.

    ``group_shifts`` maps group names to their shifts, e.g. ``{"source": {}, "look":
    {"look": 1.5}, "skill": {"skill": 1.0}}``: ``look`` in units of the appearance's
    standard deviation, ``skill`` in units of the skill's.
    """
    if min(n_train, stages, segments_per_stage, dim) < 1 or n_test < 0:
        raise S4AQAError("synthetic data needs positive sizes")
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    skill = rng.standard_normal(n)
    names = list(group_shifts or {})
    group_index = np.arange(n) % max(len(names), 1)
    shift_of = {kind: np.array([float((group_shifts or {})[g].get(kind, 0.0)) for g in names]
                               or [0.0])[group_index] for kind in ("look", "skill")}
    skill = skill + shift_of["skill"]
    quality = np.zeros((n, stages))
    for k in range(stages):
        previous = quality[:, k - 1] if k else 0.0
        quality[:, k] = skill_weight * skill + carry_over * previous + rng.standard_normal(n) * 0.6
    quality /= quality.std(axis=0, keepdims=True)

    directions = _orthonormal(rng, dim, stages + 2 * nuisance_rank)
    quality_dirs = directions[:stages]
    appearance_dirs = directions[stages:stages + nuisance_rank]
    nuisance_dirs = directions[stages + nuisance_rank:]
    segments = stages * segments_per_stage
    # each segment weighs its stage's quality by a fixed temporal profile (rise and fall)
    profile = 0.5 + np.sin(np.linspace(0.2, np.pi - 0.2, segments_per_stage))
    features = np.empty((n, segments, dim), dtype=np.float32)
    # a video's look (athlete, venue, camera) that all its segments share
    video_look = (rng.standard_normal((n, nuisance_rank)) * appearance) @ appearance_dirs
    # a group's look: a shift along one fixed direction of the appearance subspace
    look_direction = appearance_dirs.sum(axis=0) / np.linalg.norm(appearance_dirs.sum(axis=0))
    video_look = video_look + (shift_of["look"] * appearance)[:, None] * look_direction[None]
    for k in range(stages):
        for j in range(segments_per_stage):
            t = k * segments_per_stage + j
            signal = (quality[:, k] * profile[j])[:, None] * quality_dirs[k][None]
            # strong segment-level nuisance (camera motion, pose changes) unrelated to quality
            motion = (rng.standard_normal((n, nuisance_rank)) * nuisance) @ nuisance_dirs
            features[:, t] = signal + video_look + motion + rng.standard_normal((n, dim)) * jitter
    if nonlinear:
        # a fixed random two-layer mixing: quality is no longer a direction a linear model on
        # pooled features can read off, as in real deep features
        mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim) * 2.0
        features = np.tanh(features @ mixing).astype(np.float32)
        features = features @ (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)
    stage_weights = np.linspace(1.0, 2.0, stages)
    scores = 50.0 + 5.0 * (quality @ stage_weights) / stage_weights.sum() * 2
    scores += rng.standard_normal(n) * judge_noise
    split = np.array(["train"] * n_train + ["test"] * n_test, dtype=object)
    ids = [f"synthetic_{i:05d}" for i in range(n)]
    groups = np.array(names, dtype=object)[group_index] if names else None
    meta = {"length": np.full(n, segments), "skill": skill,
            **_truth(quality, stage_weights, profile, segments_per_stage)}
    return FeatureSet(ids=ids, features=features, scores=scores, split=split, groups=groups,
                      meta=meta, name="synthetic")


def _truth(quality: np.ndarray, stage_weights: np.ndarray, profile: np.ndarray,
           segments_per_stage: int) -> dict[str, np.ndarray]:
    """What the generator knows of each video and no method reads (per-video rows, so that
    selecting videos keeps them): ``stage_quality`` (N, K), ``stage_weight`` (N, K) the score
    points one unit of a stage's quality is worth, ``segment_stage`` (N, T) each segment's
    stage, and ``true_contribution`` (N, T): each stage's weight x (its quality - the mean
    quality over the generated videos), shared over its segments by the temporal profile that
    writes it into their features, in score units. Its sum over a video's segments is the
    video's noise-free score minus the mean noise-free score. Computed after every random draw,
    so the features and scores are those of before."""
    n, stages = quality.shape
    points = 5.0 * 2 * stage_weights / stage_weights.sum()  # the score's formula, per stage
    share = profile / profile.sum()
    stage_part = (quality - quality.mean(axis=0, keepdims=True)) * points[None]
    contribution = (stage_part[:, :, None] * share[None, None, :]).reshape(n, -1)
    segment_stage = np.repeat(np.arange(stages), segments_per_stage)
    return {"stage_quality": quality.copy(), "stage_weight": np.tile(points, (n, 1)),
            "segment_stage": np.tile(segment_stage, (n, 1)),
            "true_contribution": contribution}


def _orthonormal(rng: np.random.Generator, dim: int, count: int) -> np.ndarray:
    basis = rng.standard_normal((dim, max(count, 1)))
    q, _ = np.linalg.qr(basis)
    if count > dim:
        extra = rng.standard_normal((count - dim, dim))
        return np.concatenate([q.T, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    return q.T[:count]
