"""COREG (Zhou & Li, IJCAI 2005): co-training of two k-nearest-neighbour regressors.

Both regressors start from the labeled videos and differ by the order of their Minkowski
distance (``p1`` 2, ``p2`` 5, as in the paper). In each round, each regressor h_j looks at a pool
U' of ``pool_size`` unlabeled videos drawn at random and, for every x_u in U', measures how much
adding (x_u, h_j(x_u)) to its own training set would reduce its squared error on x_u's k labeled
neighbours:  δ_u = Σ_{x_i ∈ Ω(x_u)} (y_i - h_j(x_i))² - (y_i - h'_j(x_i))².  The x_u with the
largest positive δ, labeled by h_j, is removed from the pool and added to the *other* regressor's
training set. The pool is refilled from U, and training stops after ``rounds`` rounds or when
neither regressor finds an example with δ > 0. The prediction is the mean of the two regressors.

Choices, with their defaults:
- videos are the mean of their segment features (``pool``), standardised with the statistics of
  the labeled and unlabeled training videos; ``k`` 3, ``pool_size`` 100, ``rounds`` 100 (the
  paper's values);
- h_j(x_i) for a training example uses its k nearest training examples including itself (as the
  paper's error on the labeled neighbours), ties broken by position (stable sort);
- the pool is drawn without replacement from one seeded permutation of U, so a run needs
  distances between the labeled videos and at most ``pool_size + 2 * rounds`` unlabeled ones;
  they are computed once per distance order.

Checkpoint: no pickles. The two final training sets (standardised pooled features and their
labels, true or pseudo) and the standardisation are stored; kNN needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from scipy.spatial.distance import cdist

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._pooling import as_array, check_shape, pool_segments, pooling_option
from s4aqa.methods.base import Method, MethodOptions, unlabeled_option
from s4aqa.methods.registry import register
from s4aqa.options import require


@dataclass
class COREGOptions(MethodOptions):
    unlabeled: bool = unlabeled_option()
    k: int = 3
    p1: float = 2.0
    p2: float = 5.0
    pool_size: int = 100
    rounds: int = 100
    pool: str = pooling_option()

    def __post_init__(self) -> None:
        for key in ("k", "pool_size"):
            require(getattr(self, key) >= 1, key, getattr(self, key), "must be at least 1")
        require(self.rounds >= 0, "rounds", self.rounds, "must be 0 or more")
        for key in ("p1", "p2"):
            require(getattr(self, key) >= 1, key, getattr(self, key),
                    "must be a Minkowski order of at least 1")


def knn_predict(distances: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean label of the k nearest columns of ``distances`` (rows: queries)."""
    k = min(k, distances.shape[1])
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return labels[nearest].mean(axis=1)


@register("coreg")
class COREG(Method):
    description = "co-training of two kNN regressors on pooled features (Zhou & Li 2005)"
    Options = COREGOptions
    version = 2  # 2: trains on the validation slice too (it selects nothing on it)

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.shape: tuple[int, int] | None = None
        self.mean = self.std = None
        self.sets: list[tuple[np.ndarray, np.ndarray]] = []  # (features, labels) per regressor

    def _inputs(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        array = as_array(features)
        check_shape(array, self.shape, self.label)
        return (pool_segments(array, self.options.pool) - self.mean) / self.std

    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None, hooks=()) -> "COREG":
        unlabeled = self.unlabeled_for(unlabeled)
        o = self.options
        if unlabeled is not None and (unlabeled.dim != labeled.dim
                                      or unlabeled.num_segments != labeled.num_segments):
            raise S4AQAError("labeled and unlabeled videos have different feature shapes")
        self.shape = (labeled.num_segments, labeled.dim)
        x_l = pool_segments(labeled, o.pool)
        # option unlabeled off: no video to label, the two regressors stay on the labeled ones
        x_u = pool_segments(unlabeled, o.pool) if unlabeled is not None else x_l[:0]
        both = np.concatenate([x_l, x_u])
        self.mean, self.std = both.mean(axis=0), both.std(axis=0) + 1e-6
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xC0]))
        queue = rng.permutation(len(x_u))[: o.pool_size + 2 * o.rounds]
        # every example COREG can touch: labeled first, then the queue of unlabeled ones
        points = (np.concatenate([x_l, x_u[queue]]) - self.mean) / self.std
        n_l = len(x_l)
        distances = [cdist(points, points, "minkowski", p=p) for p in (o.p1, o.p2)]
        y = labeled.scores.astype(np.float64)
        members = [list(range(n_l)), list(range(n_l))]
        labels = [dict(enumerate(y)), dict(enumerate(y))]
        pool = list(range(n_l, n_l + min(o.pool_size, len(queue))))
        next_in_queue = n_l + len(pool)
        self.history = []
        for round_ in range(o.rounds):
            chosen: list[tuple[int, float] | None] = [None, None]
            for j in (0, 1):
                if not pool:
                    break
                pick = self._most_helpful(distances[j], members[j], labels[j], pool)
                if pick is not None:
                    chosen[j] = pick
                    pool.remove(pick[0])
            if chosen[0] is None and chosen[1] is None:
                break
            for j, other in ((0, 1), (1, 0)):
                if chosen[other] is not None:
                    index, value = chosen[other]
                    members[j].append(index)
                    labels[j][index] = value
            added = sum(c is not None for c in chosen)
            take = min(added, n_l + len(queue) - next_in_queue)
            pool.extend(range(next_in_queue, next_in_queue + take))
            next_in_queue += take
            self.history.append({"round": round_ + 1, "added": added,
                                 "size_1": len(members[0]), "size_2": len(members[1])})
        self.sets = [(points[m], np.array([labels[j][i] for i in m]))
                     for j, m in enumerate(members)]
        return self

    def _most_helpful(self, distance: np.ndarray, members: list[int], labels: dict,
                      pool: list[int]) -> tuple[int, float] | None:
        """(index, pseudo-label) of the pool example whose addition most reduces the error on
        its neighbours, or None when no addition reduces it."""
        k = min(self.options.k, len(members))
        m = np.asarray(members)
        y = np.array([labels[i] for i in members])
        # h_j on its own training examples: k nearest among the members (itself included)
        d_ll = distance[np.ix_(m, m)]
        order = np.argsort(d_ll, axis=1, kind="stable")[:, :k]
        fitted = y[order].mean(axis=1)
        kth_distance = np.take_along_axis(d_ll, order[:, -1:], axis=1)[:, 0]
        kth_label = y[order[:, -1]]
        # each candidate: its k neighbours among the members and its pseudo-label
        p = np.asarray(pool)
        d_ul = distance[np.ix_(p, m)]
        omega = np.argsort(d_ul, axis=1, kind="stable")[:, :k]  # (P, k) positions in m
        pseudo = y[omega].mean(axis=1)
        # adding x_u changes h_j(x_i) only where x_u is closer than x_i's k-th neighbour
        closer = np.take_along_axis(d_ul, omega, axis=1) < kth_distance[omega]
        updated = fitted[omega] + (pseudo[:, None] - kth_label[omega]) / k
        new_fit = np.where(closer, updated, fitted[omega])
        truth = y[omega]
        delta = ((truth - fitted[omega]) ** 2 - (truth - new_fit) ** 2).sum(axis=1)
        best = int(np.argmax(delta))
        if delta[best] <= 0:
            return None
        return int(p[best]), float(pseudo[best])

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        if not self.sets:
            raise self.not_trained()
        x = self._inputs(features)
        o = self.options
        out = [knn_predict(cdist(x, xs, "minkowski", p=p), ys, o.k)
               for (xs, ys), p in zip(self.sets, (o.p1, o.p2))]
        return (out[0] + out[1]) / 2.0

    def embed(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """The standardised pooled features the two regressors measure distances on."""
        return self._inputs(features)

    def state_dict(self) -> dict[str, torch.Tensor]:
        if not self.sets:
            raise self.not_trained()
        out = {"feature_mean": self.mean, "feature_std": self.std}
        for j, (xs, ys) in enumerate(self.sets, start=1):
            out[f"set{j}_x"], out[f"set{j}_y"] = xs, ys
        return {k: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.float64)
                for k, v in out.items()}

    def extra_state(self) -> dict[str, Any]:
        return {"shape": list(self.shape),
                "training_sizes": [int(len(ys)) for _, ys in self.sets]}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        self.shape = tuple(int(v) for v in extra["shape"])
        self.mean = tensors["feature_mean"].numpy()
        self.std = tensors["feature_std"].numpy()
        self.sets = [(tensors[f"set{j}_x"].numpy(), tensors[f"set{j}_y"].numpy()) for j in (1, 2)]
