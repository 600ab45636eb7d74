"""The interface every method implements.

``fit(labeled, unlabeled, validation)`` trains; ``predict(features)`` returns scores in the
dataset's own units; ``state_dict()`` (tensors) and ``extra_state()`` (JSON) are what a
checkpoint stores, and ``load_state`` restores them. Closed-form methods implement ``fit``
directly; deep ones build on ``methods.deep.DeepMethod``, which trains through one lifecycle
(``begin``, ``train`` with a ``Trainer``, ``end``). A new method is one file here with
``@register("name")``.

Whether a method reads unlabeled videos is one question with one answer, ``uses_unlabeled``
(a semi-supervised method has the option ``unlabeled``; off, it is the same method on the
labeled videos only); ``unlabeled_for`` gives the set it reads. What its prediction intervals
are made of is another: ``out_of_sample_residuals`` (``methods.intervals``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._pooling import as_array  # noqa: F401 - re-exported for method files
from s4aqa.training.hooks import Hook


@dataclass
class MethodOptions:
    """Options every method accepts."""


@dataclass(frozen=True)
class Residuals:
    """Out-of-sample residuals of the labeled videos a method trained on: each video's score
    minus a prediction by a model that did not see that video (score units), and ``source``,
    what made them (e.g. "loo": exact leave-one-out)."""

    values: np.ndarray
    source: str


def unlabeled_option() -> Any:
    """The ``unlabeled`` option of a semi-supervised method: off, every use of the unlabeled
    videos is switched off (same method, same seed, labeled videos only)."""
    return dataclasses.field(default=True, metadata={"switch": "unlabeled videos"})


class Method:
    """Base class: one instance is one trained (or to-be-trained) model for one seed."""

    name: str = "method"
    description: str = ""  # one line for `s4aqa methods -v`
    version: int = 1  # bump when a change alters the method's numbers (invalidates cached runs)
    Options: type = MethodOptions
    # a method that uses unlabeled videos cannot train without some (LapRLS can: False)
    unlabeled_required: bool = True

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        self.options = options
        self.seed = int(seed)
        self.device = torch.device(device)
        self.label = self.name
        self.history: list[dict[str, float]] = []
        self.shape: tuple[int, int] | None = None  # (T, D) of the features it was trained on
        self.notes: list[str] = []  # what a run should say of its training (a fallback taken)

    @property
    def uses_unlabeled(self) -> bool:
        """Whether this instance reads the unlabeled set: a semi-supervised method (one with
        the option ``unlabeled``) does, unless that option is off."""
        return bool(getattr(self.options, "unlabeled", False))

    @property
    def uses_validation(self) -> bool:
        """Whether the method selects on the validation slice; one that does not trains on it."""
        return False

    def options_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.options)

    def unmet_needs(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> str | None:
        """Why this method cannot train on these videos (None: it can). Runs check it before
        training; a reproduction records such runs as skipped, with this reason."""
        if self.uses_unlabeled and self.unlabeled_required and not _some(unlabeled):
            return self._empty_pool()
        return None

    def _empty_pool(self) -> str:
        return (f"method '{self.label}' learns from unlabeled videos but the unlabeled set is "
                "empty; use a label ratio below 1")

    def unlabeled_for(self, unlabeled: FeatureSet | None) -> FeatureSet | None:
        """The unlabeled videos this method reads of ``unlabeled`` (None: none), or the
        project's error where it needs some and there are none."""
        if not self.uses_unlabeled:
            return None
        if not _some(unlabeled):
            if self.unlabeled_required:
                raise S4AQAError(self._empty_pool())
            return None
        return unlabeled

    def not_trained(self) -> S4AQAError:
        """The error for using a model before it was trained or loaded."""
        return S4AQAError(f"method '{self.label}' has not been trained or loaded")

    # ---- the interface ------------------------------------------------------------------
    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None, hooks: Sequence[Hook] = ()) -> "Method":
        """Train on ``labeled`` (and ``unlabeled`` where the method reads it; ``validation``
        where it selects on it). ``hooks``: what a run does around training steps (saving
        and resuming, progress); a method without steps has nothing for them to do."""
        raise NotImplementedError

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        raise NotImplementedError

    def out_of_sample_residuals(self) -> Residuals | None:
        """The trained method's out-of-sample residuals on its labeled videos where it has
        them at little cost (a closed form's exact leave-one-out, a cross-validation it ran
        anyway); None where it has none, and the intervals take them elsewhere
        (``methods.intervals``)."""
        return None

    def embed(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """Video representations (N, H), for figures such as the t-SNE of Fig. 4."""
        raise S4AQAError(f"method '{self.label}' has no learned representation to show")

    def recovered_segments(self, features: np.ndarray | FeatureSet) -> np.ndarray | None:
        """For `s4aqa explain`'s ``recovery`` reference: (N, T, D) the method's recovery of each
        segment from the rest of its video (segment t masked), in the input's units; None
        when the method recovers nothing."""
        return None

    def state_dict(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        raise NotImplementedError


def _some(videos: FeatureSet | None) -> bool:
    return videos is not None and len(videos) > 0

