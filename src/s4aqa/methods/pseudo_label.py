"""Pseudo-labels (Lee, 2013): train on the labeled videos, label the unlabeled ones with the
model's predictions, retrain on both.

The model is the shared encoder and regressor of ``aa`` (S4AQA with MSFR and RDA off), so this
row differs from ``aa`` only by the pseudo-labels. Training runs ``1 + rounds`` phases of
``steps`` steps each through the shared loop (each with model selection on the validation slice):
a teacher on the labeled videos, then ``rounds`` students, each trained on batches of labeled
videos (MSE on their scores) and pseudo-labeled videos (MSE on the previous model's
predictions, weighted by ``pseudo_weight`` - Lee's α, constant here - and per video by the
confidence weight); each student labels the unlabeled set for the next.

Choices, with their defaults:
- ``rounds`` 1; each student starts from a fresh initialisation (``reinit`` true; the same seeded
  initialisation as the teacher) or fine-tunes the previous model (``reinit`` false);
- pseudo-labels are the deterministic (eval-mode) predictions, in normalised score units;
- ``confidence`` none (every pseudo-label weight 1), or mc_dropout: ``mc_samples`` stochastic
  forward passes with dropout on; a video's weight is exp(-v / mean(v)) for the variance v of its
  predictions, so uncertain pseudo-labels count less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods.base import DeepMethod, DeepOptions
from s4aqa.methods.options import choice
from s4aqa.methods.registry import register


@dataclass
class PseudoLabelOptions(DeepOptions):
    rounds: int = 1
    pseudo_weight: float = 1.0
    confidence: str = choice("none", "mc_dropout")
    mc_samples: int = 8
    reinit: bool = True


@register("pseudo_label")
class PseudoLabel(DeepMethod):
    Options = PseudoLabelOptions
    uses_unlabeled = True
    # several training phases with pseudo-labels in between: one run at a time, not grouped
    groupable = False

    def __init__(self, options, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        if self.options.rounds < 1:
            raise S4AQAError(f"option rounds={self.options.rounds} for method 'pseudo_label' "
                             "must be at least 1")
        if self.options.confidence == "mc_dropout" and self.options.mc_samples < 2:
            raise S4AQAError("option mc_samples for method 'pseudo_label' must be at least 2")
        self.pseudo: dict[str, torch.Tensor] | None = None

    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None) -> "PseudoLabel":
        from s4aqa.engine.trainer import train_deep

        unlabeled = self.check_unlabeled(unlabeled)
        pool = [fs for fs in (unlabeled, validation) if fs is not None and len(fs)]
        self.setup(labeled, pool)
        history = []
        self.pseudo = None
        key = dict(self.resume_key)
        try:
            for phase in range(self.options.rounds + 1):
                # resumable state (engine.trainer) belongs to one phase: never resume a student
                # from its teacher's state
                self.resume_key = {**key, "phase": str(phase)}
                if phase:
                    self.pseudo = self.label_unlabeled(unlabeled)
                    if self.options.reinit:
                        self.setup(labeled, pool)
                # the teacher (phase 0) trains on the labeled videos only
                train_deep(self, labeled, unlabeled if phase else None, validation)
                history += [{"phase": phase, **r} for r in self.history]
        finally:
            self.resume_key = key
            self.pseudo = None
        self.history = history
        return self

    @torch.no_grad()
    def label_unlabeled(self, unlabeled: FeatureSet) -> dict[str, torch.Tensor]:
        """Pseudo-labels (normalised) and confidence weights of the unlabeled videos."""
        x = self.to_input(unlabeled.features)
        self.modules.eval()
        y = self.predict_normalised(x)
        weight = torch.ones_like(y)
        if self.options.confidence == "mc_dropout":
            self.modules.train()
            samples = torch.stack([self.predict_normalised(x)
                                   for _ in range(self.options.mc_samples)])
            self.modules.eval()
            variance = samples.var(dim=0)
            weight = torch.exp(-variance / variance.mean().clamp_min(1e-12))
        return {"y": y.detach(), "w": weight.detach()}

    def unlabeled_tensors(self, unlabeled: FeatureSet) -> dict[str, torch.Tensor]:
        return {**super().unlabeled_tensors(unlabeled), **(self.pseudo or {})}

    def loss(self, labeled, unlabeled, progress):
        reg, parts = super().loss(labeled, None, progress)
        if unlabeled is None or "y" not in unlabeled:
            return reg, parts
        prediction = self.modules["regressor"](self.modules["encoder"](unlabeled["x"]))
        w = unlabeled["w"]
        pseudo = (w * (prediction - unlabeled["y"]) ** 2).sum() / w.sum().clamp_min(1e-12)
        parts["pseudo"] = pseudo
        return reg + self.options.pseudo_weight * pseudo, parts

    def pseudo_labels(self, unlabeled: FeatureSet) -> np.ndarray:
        """The current model's pseudo-labels of ``unlabeled`` in score units (for inspection)."""
        z = self.label_unlabeled(unlabeled)["y"].float().cpu().numpy()
        return z.astype(np.float64) * self.score_std + self.score_mean
