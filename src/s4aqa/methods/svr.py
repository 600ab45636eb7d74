"""SVR: support vector regression on pooled segment features (scikit-learn).

Each video becomes one vector (the mean of its segment features, option ``pool``), standardised
with the labeled videos' statistics; the score is z-scored with the labeled scores.

Choices, with their defaults:
- kernel ``rbf`` (or ``linear``); the RBF width is searched as multiples of 1/D' (sklearn's
  ``gamma='scale'`` for standardised inputs), ``gamma_grid`` "0.1,1,10";
- ``c_grid`` "0.1,1,10,100" and ``epsilon_grid`` "0.05,0.2,0.5" (epsilon in z-scored score units);
- hyper-parameters are chosen on the labeled videos only: ``select_on`` kfold (default) runs a
  ``folds``-fold cross-validation (shuffled, seeded) on the labeled training videos, scored by
  Spearman's rho (``scoring``, or negative MSE); ``select_on`` validation picks the grid point
  with the best Spearman on the validation slice (also labeled) instead. Either way the final
  model is refit on the labeled training videos, the same videos the deep methods train on;
- the unlabeled set is not read (SVR is supervised).

Checkpoint: no pickles. The pooled training matrix, its targets, the standardisation and the
chosen hyper-parameters are stored; ``load_state`` refits the SVR on them, which libsvm does
deterministically, so the reloaded model predicts exactly what the trained one did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
from sklearn.svm import SVR as _SVR

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._pooling import as_array, check_shape, pool_segments, pooling_option, z_scores
from s4aqa.methods.base import Method, MethodOptions, Residuals
from s4aqa.methods.registry import register
from s4aqa.options import Grid, choice, grid, require, require_grid
from s4aqa.training.metrics import rank_agreement


@dataclass
class SVROptions(MethodOptions):
    kernel: str = choice("rbf", "linear")
    pool: str = pooling_option()
    c_grid: Grid = grid(0.1, 1, 10, 100)
    gamma_grid: Grid = grid(0.1, 1, 10)
    epsilon_grid: Grid = grid(0.05, 0.2, 0.5)
    select_on: str = choice("kfold", "validation")
    folds: int = 5
    scoring: str = choice("spearman", "mse")

    def __post_init__(self) -> None:
        require(self.folds >= 2, "folds", self.folds, "must be at least 2")
        for key in ("c_grid", "gamma_grid", "epsilon_grid"):
            require_grid(getattr(self, key), key)


def _spearman_score(truth: np.ndarray, predicted: np.ndarray) -> float:
    return rank_agreement(predicted, truth)


@register("svr")
class SVR(Method):
    description = "support vector regression on pooled features, tuned by cross-validation, supervised"
    Options = SVROptions
    version = 2  # 2: trains on the validation slice too unless it selects on it

    @property
    def uses_validation(self) -> bool:
        return self.options.select_on == "validation"

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.model: _SVR | None = None
        self.shape: tuple[int, int] | None = None
        self.params: dict[str, float] = {}
        self.train_x = self.train_y = None
        self.mean = self.std = None
        self.score_mean, self.score_std = 0.0, 1.0
        self.grids = self._grids()

    def _grids(self) -> dict[str, list[float]]:
        o = self.options
        return {"C": list(o.c_grid), "gamma": list(o.gamma_grid),
                "epsilon": list(o.epsilon_grid)}

    # ---- features -------------------------------------------------------------------------
    def _inputs(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        array = as_array(features)
        check_shape(array, self.shape, self.label)
        return (pool_segments(array, self.options.pool) - self.mean) / self.std

    def _svr(self, C: float, gamma: float, epsilon: float) -> _SVR:
        kernel = self.options.kernel
        return _SVR(kernel=kernel, C=C, epsilon=epsilon,
                    gamma=gamma / self.train_x.shape[1] if kernel == "rbf" else "scale")

    # ---- fit / predict ----------------------------------------------------------------------
    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None, hooks=()) -> "SVR":
        self.unlabeled_for(unlabeled)
        if len(labeled) < 2:
            raise S4AQAError("SVR needs at least 2 labeled videos")
        self.shape = (labeled.num_segments, labeled.dim)
        pooled = pool_segments(labeled, self.options.pool)
        self.mean = pooled.mean(axis=0)
        self.std = pooled.std(axis=0) + 1e-6
        self.score_mean, self.score_std = z_scores(labeled.scores)
        self.train_x = (pooled - self.mean) / self.std
        self.train_y = (labeled.scores - self.score_mean) / self.score_std
        self.params, self.history = self._select(validation)
        self.model = self._svr(**self.params).fit(self.train_x, self.train_y)
        return self

    def out_of_sample_residuals(self) -> Residuals | None:
        """The labeled videos' residuals under ``folds``-fold cross-validation with the chosen
        hyper-parameters, in score units (``folds`` more fits, a few ms each); None below 4
        videos."""
        if self.model is None:
            raise self.not_trained()
        n = len(self.train_y)
        folds = min(int(self.options.folds), n)
        if n < 4 or folds < 2:
            return None
        predicted = cross_val_predict(
            self._svr(**self.params), self.train_x, self.train_y,
            cv=KFold(folds, shuffle=True, random_state=self.seed % (2 ** 32)))
        return Residuals((self.train_y - predicted) * self.score_std, "cv")

    def _select(self, validation: FeatureSet | None) -> tuple[dict[str, float], list[dict]]:
        o = self.options
        grid = [{"C": c, "gamma": g, "epsilon": e} for c in self.grids["C"]
                for g in (self.grids["gamma"] if o.kernel == "rbf" else [1.0])
                for e in self.grids["epsilon"]]
        if len(grid) == 1:
            return grid[0], []
        if o.select_on == "validation":
            if validation is None or len(validation) < 2:
                raise S4AQAError("SVR select_on=validation needs a validation slice; set "
                                 "--val-fraction above 0 or use select_on=kfold")
            x_val = self._inputs(validation)
            scored = []
            for params in grid:
                model = self._svr(**params).fit(self.train_x, self.train_y)
                scored.append((rank_agreement(model.predict(x_val), validation.scores), params))
            best = max(range(len(scored)), key=lambda i: scored[i][0])  # first best on ties
            history = [{"val_spearman": s, **p} for s, p in scored]
            return scored[best][1], history
        n = len(self.train_y)
        folds = min(int(o.folds), n)
        if folds < 2 or n < 4:
            middle = {k: v[len(v) // 2] for k, v in self.grids.items()}
            return middle, []
        scoring = (make_scorer(_spearman_score) if o.scoring == "spearman"
                   else "neg_mean_squared_error")
        search = GridSearchCV(
            _SVR(kernel=o.kernel),
            {"C": self.grids["C"], "epsilon": self.grids["epsilon"],
             **({"gamma": [g / self.train_x.shape[1] for g in self.grids["gamma"]]}
                if o.kernel == "rbf" else {})},
            scoring=scoring, cv=KFold(folds, shuffle=True, random_state=self.seed % (2 ** 32)),
            refit=False)
        search.fit(self.train_x, self.train_y)
        best = dict(search.best_params_)
        params = {"C": float(best["C"]), "epsilon": float(best["epsilon"]),
                  "gamma": float(best.get("gamma", 1.0 / self.train_x.shape[1])) * self.train_x.shape[1]}
        history = [{"cv_score": float(s), **{k: float(v) for k, v in p.items()}}
                   for s, p in zip(search.cv_results_["mean_test_score"], search.cv_results_["params"])]
        return params, history

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        if self.model is None:
            raise self.not_trained()
        z = self.model.predict(self._inputs(features))
        return z * self.score_std + self.score_mean

    def embed(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """The standardised pooled features the SVR reads."""
        return self._inputs(features)

    # ---- checkpoint -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.model is None:
            raise self.not_trained()
        return {name: torch.as_tensor(np.ascontiguousarray(value), dtype=torch.float64)
                for name, value in (("train_x", self.train_x), ("train_y", self.train_y),
                                    ("feature_mean", self.mean), ("feature_std", self.std))}

    def extra_state(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "params": dict(self.params),
                "score_mean": self.score_mean, "score_std": self.score_std}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        self.shape = tuple(int(v) for v in extra["shape"])
        self.train_x = tensors["train_x"].numpy().astype(np.float64)
        self.train_y = tensors["train_y"].numpy().astype(np.float64)
        self.mean = tensors["feature_mean"].numpy().astype(np.float64)
        self.std = tensors["feature_std"].numpy().astype(np.float64)
        self.score_mean = float(extra["score_mean"])
        self.score_std = float(extra["score_std"])
        self.params = {k: float(v) for k, v in extra["params"].items()}
        self.model = self._svr(**self.params).fit(self.train_x, self.train_y)
