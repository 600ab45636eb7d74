"""TRS (Yun, Qi, Peng, Ma, "Semi-Supervised Teacher-Reference-Student Architecture for Action
Quality Assessment", ECCV 2024, arXiv 2407.19675): pseudo-labels from a teacher and a
reference network, kept in a confidence memory, teach a student.

The network is the ``contrastive`` network (encoder, pair head, exemplar bank; its code, not
a copy) with a direct score regressor on the same encoder, as in TRS's release, where one
backbone feeds a direct and a relative evaluator. On the labeled videos the student learns
the direct score (squared error) and the contrastive pairs (``lambda_pairs``). The teacher is
an exponential moving average of the whole student (``ema_decay``). For an unlabeled video
it gives two pseudo-labels: its direct score, and the reference: its pair head's score
against the video's labeled exemplars (``exemplar_choice``: of the video's own group where
the dataset has groups - TRS's "additional action information" - else the nearest), averaged
over them. The pseudo-label is their mean; its confidence (``confidence``) is how well the two
agree, -|teacher - reference| (``agreement``), or minus the spread of the teacher's score and
the M exemplar-based scores together (``spread``). The confidence memory keeps, per
unlabeled video, the pseudo-label of the highest confidence seen so far (``memory`` off: the
latest), and the student learns the stored pseudo-labels of each unlabeled batch with its
direct head (squared error, ``lambda_pseudo``), under dropout, the teacher without.

Choices where the paper is silent, or differs from frozen features, with their defaults:
- pseudo-labels start after ``warmup`` (a quarter) of the steps, so that the first stored
  labels are not those of an untrained teacher (a memory that keeps the most confident label
  ever would otherwise keep the agreeing, uninformative early ones); the memory starts empty;
- the teacher re-encodes the exemplars every ``refresh`` steps (the teacher moves slowly),
  kept with the weights so that a resumed run ends as an uninterrupted one;
- the prediction (``predict_by``) is the student's direct score (TRS predicts with the
  student), or the mean of its direct and relative scores (``both``);
- with ``unlabeled`` off nothing of the unlabeled videos is read: no teacher, no memory, the
  same network on the labeled videos (direct and pair losses), so that run against this one
  measures what the pseudo-labels add;
- the memory is training state only: it is not part of a trained model's checkpoint;
- the contrastive pairs are every pair of each labeled batch (``pairs`` batch), not one
  drawn exemplar per video as ``contrastive``'s default.

Chosen on 100 held-out training videos of Fis-V (``--holdout 100``; 5 seeds;
docs/results/fisv/anchors/README.md), paired against ``aa``, mean over TES and PCS: on the
shared deep core (``core`` blend) -0.001 at 10% and 40% labels, alone (plain) -0.024 (blend
kept); at 10% labels the defaults gave -0.006, as did the same network with ``unlabeled`` off
(the pseudo-labels moved nothing there), memory off -0.013, ``lambda_pseudo`` 3 -0.009,
``predict_by`` both -0.013, ``confidence`` spread -0.013; ``pairs`` exemplar -0.001 (10% and
40%) against batch's -0.001, at 1.5 times the time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s4aqa.data.featureset import FeatureSet
from s4aqa.methods.base import unlabeled_option
from s4aqa.methods.contrastive import Contrastive, ContrastiveOptions, group_codes, pooled_direction
from s4aqa.methods.registry import register
from s4aqa.options import choice, require

TEACHER_PARTS = ("encoder", "regressor", "pair", "bank")


@dataclass
class TRSOptions(ContrastiveOptions):
    unlabeled: bool = unlabeled_option()
    # the contrastive pairs of every labeled batch (no extra encoder pass): measured level
    # with contrastive's exemplar pairs here, which cost half as much again
    pairs: str = choice("batch", "exemplar")
    ema_decay: float = 0.99
    warmup: float = 0.25
    lambda_pseudo: float = 1.0
    lambda_pairs: float = 1.0
    confidence: str = choice("agreement", "spread")
    memory: bool = True
    refresh: int = 10
    predict_by: str = choice("direct", "both")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.ema_decay < 1, "ema_decay", self.ema_decay, "must be in [0, 1)")
        require(0 <= self.warmup < 1, "warmup", self.warmup, "must be in [0, 1)")
        require(self.refresh >= 1, "refresh", self.refresh, "must be at least 1")
        for key in ("lambda_pseudo", "lambda_pairs"):
            require(getattr(self, key) >= 0, key, getattr(self, key), "must be 0 or more")


class ConfidenceMemory(nn.Module):
    """Per unlabeled video its stored pseudo-label and that label's confidence (-inf: none
    yet); ``refreshed``: the step the teacher last encoded the exemplars (-1: never)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("label", torch.zeros(size))
        self.register_buffer("confidence", torch.full((size,), -torch.inf))
        self.register_buffer("refreshed", torch.tensor(-1, dtype=torch.long))

    def keep(self, index: torch.Tensor, label: torch.Tensor, confidence: torch.Tensor,
             always: bool = False) -> torch.Tensor:
        """Store the pseudo-labels of videos ``index`` where their confidence beats the stored
        one (``always``: everywhere); returns the stored labels of ``index`` after that."""
        stored = self.confidence[index]
        better = torch.ones_like(stored, dtype=torch.bool) if always else confidence > stored
        kept = torch.where(better, label, self.label[index])
        self.label[index] = kept
        self.confidence[index] = torch.where(better, confidence, stored)
        return kept


@register("trs")
class TRS(Contrastive):
    description = ("a moving-average teacher and a reference network scoring against labeled "
                   "exemplars pseudo-label the unlabeled videos; a confidence memory keeps the "
                   "most reliable label of each for the student (TRS, ECCV 2024)")
    Options = TRSOptions

    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        modules = super().build(segments, dim)
        modules["regressor"] = self.direct_head()
        if self.uses_unlabeled:
            teacher = nn.ModuleDict({k: copy.deepcopy(modules[k]) for k in TEACHER_PARTS})
            modules["teacher"] = teacher.requires_grad_(False)
        return modules

    def setup(self, labeled: FeatureSet, pool: list[FeatureSet]) -> None:
        super().setup(labeled, pool)
        if "teacher" in self.modules:  # the teacher starts as the student, bank included
            for part in TEACHER_PARTS:
                self.modules["teacher"][part].load_state_dict(self.modules[part].state_dict())

    def moving_average(self):
        if not self.uses_unlabeled:
            return None
        pairs = {f"teacher.{name}": name for name, _ in self.modules.named_parameters()
                 if name.split(".")[0] in TEACHER_PARTS}
        return pairs, self.options.ema_decay

    def unlabeled_tensors(self, unlabeled: FeatureSet) -> dict[str, torch.Tensor]:
        tensors = super().unlabeled_tensors(unlabeled)
        tensors["index"] = torch.arange(len(unlabeled), device=self.device)
        tensors["group"] = torch.as_tensor(group_codes(unlabeled.groups, self.vocabulary),
                                           device=self.device)
        self.modules["memory"] = ConfidenceMemory(len(unlabeled)).to(self.device)
        return tensors

    # ---- training -------------------------------------------------------------------------
    def loss(self, labeled, unlabeled, progress):
        o = self.options
        x_l = labeled["x"]
        pseudo_step = (unlabeled is not None and self.uses_unlabeled and progress >= o.warmup)
        inputs = torch.cat([x_l, unlabeled["x"]]) if pseudo_step else x_l
        f = self.modules["encoder"](inputs)
        f_l = f[: len(x_l)]
        reg = F.mse_loss(self.modules["regressor"](f_l), labeled["y"])
        pairs = self.pair_loss(f_l, labeled)
        total = reg + o.lambda_pairs * pairs
        parts = {"reg": reg, "pairs": pairs}
        if pseudo_step:
            target = self.pseudo_labels(unlabeled, progress)
            pseudo = F.mse_loss(self.modules["regressor"](f[len(x_l):]), target)
            parts["pseudo"] = pseudo
            total = total + o.lambda_pseudo * pseudo
        return total, parts

    @torch.no_grad()
    def teacher_view(self, x: torch.Tensor, codes: torch.Tensor | None,
                     step: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's direct scores (B,) and its reference scores against each exemplar
        (B, M) of standardised unlabeled videos ``x``; at ``step``, the exemplars re-encoded
        when ``refresh`` steps have passed."""
        teacher = self.modules["teacher"].eval()
        if step is not None:
            memory = self.modules["memory"]
            last = int(memory.refreshed)
            if last < 0 or step - last >= self.options.refresh:
                teacher["bank"].embeddings.copy_(self.bank_embeddings(teacher))
                memory.refreshed.fill_(step)
        f = teacher["encoder"](x)
        reference = self.relative(f, pooled_direction(x), codes, modules=teacher,
                                  bank_f=teacher["bank"].embeddings)
        return teacher["regressor"](f), reference

    @torch.no_grad()
    def pseudo_labels(self, unlabeled: dict[str, torch.Tensor], progress: float) -> torch.Tensor:
        """The memory's pseudo-labels of an unlabeled batch, after it saw this step's."""
        step = round(progress * self.schedule.steps)
        direct, reference = self.teacher_view(unlabeled["x"], unlabeled["group"], step)
        label, confidence = self.fuse(direct, reference)
        return self.modules["memory"].keep(unlabeled["index"], label, confidence,
                                           always=not self.options.memory)

    def fuse(self, direct: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pseudo-label, confidence) from the teacher's direct score (B,) and its reference
        scores against the exemplars (B, M)."""
        relative = reference.mean(dim=1)
        label = (direct + relative) / 2
        if self.options.confidence == "spread":
            every = torch.cat([direct[:, None], reference], dim=1)
            confidence = -every.std(dim=1, correction=0)
        else:
            confidence = -(direct - relative).abs()
        return label, confidence

    def end(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> None:
        """The memory is training state: dropped before the model is stored."""
        for member in self.members:
            if "memory" in member.modules:
                del member.modules["memory"]
        super().end(labeled, unlabeled)

    # ---- prediction -----------------------------------------------------------------------
    def video_score(self, x: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        direct = self.modules["regressor"](self.modules["encoder"](x))
        if self.options.predict_by == "both":
            return (direct + self.relative_score(x, codes)) / 2
        return direct
