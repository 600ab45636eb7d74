"""Fixtures for the method tests: a small generated dataset split once, tiny option sets, and a
cached ``fit`` so that several tests of one method share one training run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.data.splits import make_split
from s4aqa.methods.registry import create, resolve

torch.set_num_threads(1)

# one network per deep method (the blend with its closed-form partner stays on); the ensemble of
# several is tested in test_method_core.py
DEEP_TINY = {"steps": 60, "lr": 1e-3, "hidden": 32, "feedforward": 64, "heads": 2, "head_width": 32,
             "eval_every": 20, "members": 1}
TINY = {
    "svr": {},
    "coreg": {"rounds": 30, "pool_size": 30},
    "pseudo_label": DEEP_TINY,
    "vat": DEEP_TINY,
    "s4l": DEEP_TINY,
    "usdl": DEEP_TINY,
    "c3d_avg_stl": DEEP_TINY,
    "c3d_avg_mtl": DEEP_TINY,
    "action_net": DEEP_TINY,
    "gdlt": DEEP_TINY,
    "contrastive": DEEP_TINY,
    "trs": DEEP_TINY,
}
OTHER_TINY = {**DEEP_TINY, "steps": 20}  # methods without an entry here (s4aqa and its presets)


def make_videos(n_train: int = 120, n_test: int = 60, segments: int = 8, dim: int = 16,
                seed: int = 0) -> FeatureSet:
    """A small generated dataset, kept here so that the method tests do not move with the demo's
    generator: a video's segments write per-segment qualities (an athlete's skill plus noise)
    along four directions, under a per-video look and per-segment jitter; the score is the mean
    quality plus judging noise. Auxiliary labels, as a multi-task dataset has: the skill's
    tercile (a class) and the skill (a value)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    skill = rng.standard_normal(n)
    quality = 0.9 * skill[:, None] + 0.4 * rng.standard_normal((n, segments))
    directions = np.linalg.qr(rng.standard_normal((dim, 4)))[0].T  # (4, dim) orthonormal
    signal = quality[..., None] * directions[np.arange(segments) % 4][None]
    look = rng.standard_normal((n, 1, dim)) * 0.3
    jitter = rng.standard_normal((n, segments, dim)) * 0.4
    scores = 50.0 + 5.0 * quality.mean(axis=1) + 0.3 * rng.standard_normal(n)
    classes = np.digitize(skill, np.quantile(skill, [1 / 3, 2 / 3])).astype(np.int64)
    return FeatureSet(ids=[f"video_{i:04d}" for i in range(n)],
                      features=(signal + look + jitter).astype(np.float32), scores=scores,
                      split=np.array(["train"] * n_train + ["test"] * n_test, dtype=object),
                      aux={"skill_class": classes, "skill": skill}, name="generated")


def scrambled(data: FeatureSet, seed: int = 1) -> FeatureSet:
    """The same segment feature rows dealt at random to other videos and times: per-dimension
    statistics stay (up to rounding), every video's content is destroyed."""
    rows = data.features.reshape(-1, data.dim)
    order = np.random.default_rng(seed).permutation(len(rows))
    return FeatureSet(ids=data.ids, features=rows[order].reshape(data.features.shape),
                      scores=data.scores, split=data.split, groups=data.groups, name=data.name)


@pytest.fixture(scope="session")
def deep_tiny():
    """Tiny options of the shared deep schedule (a copy: tests add to it)."""
    return dict(DEEP_TINY)


@pytest.fixture(scope="session")
def videos():
    """The whole generated dataset: 120 training and 60 test videos (T 8, D 16)."""
    return make_videos()


@pytest.fixture(scope="session")
def staged(videos):
    """Its labeled / unlabeled / validation / test sets (40% labeled, seed 0)."""
    data = videos
    split = make_split(data, 0.4, seed=0, val_fraction=0.2)
    return {part: data.select_ids(getattr(split, part))
            for part in ("labeled", "unlabeled", "validation", "test")}


def tiny_options(name: str) -> dict:
    """The tiny options of ``name``, or for other methods those of them they have."""
    known = {f.name for f in dataclasses.fields(resolve(name)[0].Options)}
    return {k: v for k, v in TINY.get(name, OTHER_TINY).items() if k in known}


@pytest.fixture(scope="session")
def tiny():
    """tiny(name) -> the tiny options of method ``name``."""
    return tiny_options


@pytest.fixture(scope="session")
def fit(staged):
    """fit(name, options=None, seed=0, unlabeled='real'|'scrambled'|None) -> trained method;
    cached per arguments unless ``fresh``."""
    cache = {}

    def run(name, options=None, seed=0, unlabeled="real", fresh=False):
        options = dict(tiny_options(name) if options is None else options)
        key = (name, tuple(sorted(options.items())), seed, unlabeled)
        if fresh or key not in cache:
            method = create(name, options, seed=seed)
            pool = {"real": staged["unlabeled"], "scrambled": scrambled(staged["unlabeled"]),
                    None: None}[unlabeled]
            # every method is given the pool: what it reads of it is its own business
            method.fit(staged["labeled"], pool, staged["validation"])
            if fresh:
                return method
            cache[key] = method
        return cache[key]

    return run
