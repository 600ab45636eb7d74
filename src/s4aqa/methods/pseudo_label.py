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

import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.methods._pooling import video_blocks
from s4aqa.methods.base import unlabeled_option
from s4aqa.methods.deep import DeepMethod, DeepOptions
from s4aqa.methods.registry import register
from s4aqa.options import choice, require


@dataclass
class PseudoLabelOptions(DeepOptions):
    unlabeled: bool = unlabeled_option()
    rounds: int = 1
    pseudo_weight: float = 1.0
    confidence: str = choice("none", "mc_dropout")
    mc_samples: int = 8
    reinit: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.rounds >= 1, "rounds", self.rounds, "must be at least 1")
        require(self.confidence != "mc_dropout" or self.mc_samples >= 2, "mc_samples",
                self.mc_samples, "must be at least 2")


@register("pseudo_label")
class PseudoLabel(DeepMethod):
    description = "a teacher labels the unlabeled videos; a student trains on both (Lee 2013)"
    Options = PseudoLabelOptions
    # several training phases with pseudo-labels in between: one run at a time, not grouped
    groupable = False

    def __init__(self, options, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.pseudo: dict[str, torch.Tensor] | None = None

    def train(self, trainer, labeled: FeatureSet, unlabeled: FeatureSet | None,
              validation: FeatureSet | None) -> None:
        history = []
        try:
            # with the option unlabeled off there is nothing to label: the teacher alone
            for phase in range(self.options.rounds + 1 if unlabeled is not None else 1):
                if phase:
                    pseudo = self.label_unlabeled(unlabeled)
                    for member in self.members:
                        member.pseudo = pseudo
                    if self.options.reinit:
                        self.reset_networks(labeled, unlabeled, validation)
                # the teacher (phase 0) trains on the labeled videos only; resumable state
                # belongs to one phase, so a student never resumes from its teacher's state
                self.train_members(trainer, labeled, unlabeled if phase else None, validation,
                                   phase=f"student {phase}" if phase else "teacher")
                history += [{"phase": phase, **r} for r in self.history]
        finally:
            for member in self.members:
                member.pseudo = None
        self.history = history

    @torch.no_grad()
    def label_unlabeled(self, unlabeled: FeatureSet) -> dict[str, torch.Tensor]:
        """Pseudo-labels (the method's normalised prediction: its members' mean, blended with
        its closed-form partner) and confidence weights of the unlabeled videos."""
        y = torch.as_tensor(self.predict_blend(unlabeled), dtype=torch.float32,
                            device=self.device)
        weight = torch.ones_like(y)
        if self.options.confidence == "mc_dropout":
            variances = []
            for member in self.members:
                member.modules.train()
                # 256 videos at a time: a large pool is never standardised whole
                samples = torch.cat([torch.stack([member.forward_normalised(x)
                                                  for _ in range(self.options.mc_samples)])
                                     for x in map(member.to_input, video_blocks(unlabeled, 256))],
                                    dim=1)
                member.modules.eval()
                variances.append(samples.var(dim=0))
            variance = torch.stack(variances).mean(dim=0)
            weight = torch.exp(-variance / variance.mean().clamp_min(1e-12))
        return {"y": y, "w": weight}

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
