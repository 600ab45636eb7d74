"""The shared core of the deep methods: an ensemble of networks blended with a closed-form
partner, and the one lifecycle every deep method trains through.

``begin(labeled, unlabeled, validation)`` fits the partner and builds the networks (the
members); ``train(trainer, ...)`` trains them with a ``training.loop.Trainer`` (a method with
phases, such as pseudo-labelling, overrides it); ``end(labeled, unlabeled)`` measures what the
blend needs. ``fit`` is those three with a Trainer holding a run's hooks; runs that differ
only by seed share one stacked Trainer (``runs.run.run_group``).

The core (option ``core``): with "blend", the method is ``members`` networks (the method
itself is member 0; the others are copies initialised from other seeds) whose mean
prediction is blended, with weight ``blend``, with a closed-form linear model of the pooled
features (``partner``: ridge regression, or LapRLS with a graph over the unlabeled videos
where the method uses the graph, ``uses_graph``). On Fis-V's training split both parts added
to one network, and their sum most (see the README's results). With "plain" it is the
paper's one network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.io import strip_prefix
from s4aqa.methods._linear import GRAPH_GRID, GraphRidge
from s4aqa.methods._pooling import as_array
from s4aqa.methods.base import MethodOptions, Residuals
from s4aqa.methods.network import Network
from s4aqa.options import choice, require
from s4aqa.training.compiled import compile_encoder
from s4aqa.training.loop import Trainer, own_random_state


@dataclass
class DeepOptions(MethodOptions):
    """Encoder, heads and training schedule shared by the deep methods."""

    steps: int = 200
    lr: float = 3e-4
    weight_decay: float = 1e-2
    schedule: str = choice("constant", "cosine")
    batch_labeled: int = 16
    batch_unlabeled: int = 16
    eval_every: int = 20
    # the last step of the fixed schedule (the validation slice then trains: on Fis-V's training
    # split its labels were worth more than selection), or the best validation Spearman
    select: str = choice("last", "best")
    hidden: int = 128
    heads: int = 4
    layers: int = 1
    feedforward: int = 256
    dropout: float = 0.1
    input_dropout: float = 0.2
    head_width: int = 64
    head_dropout: float = 0.2
    mask_value: str = choice("zero", "token")
    # torch.compile the encoder: auto = on CUDA only (on CPU the step is bound by arithmetic)
    compile: str = choice("auto", "off", "on")
    compile_mode: str = choice("default", "reduce-overhead", "max-autotune")
    # the core: "blend" averages `members` networks (other initialisations) and blends them
    # with a closed-form linear model of the pooled features (`blend` its weight; ridge, or
    # LapRLS over the unlabeled videos in a method that uses the graph); "plain" is the paper's
    # one network alone
    core: str = choice("blend", "plain")
    members: int = 2
    blend: float = 0.5
    # how the two are averaged: in score units, or each standardised by the spread of its own
    # predictions over the training videos; auto: standardised where the partner uses the
    # graph (its smoothing shrinks its predictions' spread, and in score units it would weigh
    # less than `blend` says), raw with ridge (measured on validation slices: README)
    blend_scale: str = choice("auto", "raw", "standardised")

    def __post_init__(self) -> None:
        for key in ("steps", "batch_labeled", "batch_unlabeled", "eval_every", "hidden", "heads",
                    "layers", "feedforward", "head_width"):
            require(getattr(self, key) >= 1, key, getattr(self, key), "must be at least 1")
        require(self.lr > 0, "lr", self.lr, "must be positive")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "must be 0 or more")
        for key in ("dropout", "input_dropout", "head_dropout"):
            require(0 <= getattr(self, key) < 1, key, getattr(self, key), "must be in [0, 1)")
        require(self.hidden % self.heads == 0, "heads", self.heads,
                f"must divide hidden={self.hidden}")
        require(self.members >= 1, "members", self.members, "must be at least 1")
        require(0 <= self.blend <= 1, "blend", self.blend, "must be in [0, 1]")


class DeepMethod(Network):
    """A deep method: ``members`` networks and a closed-form partner (module docstring)."""

    Options = DeepOptions
    groupable = True  # several seeds can train as one stacked model (training.stacked)

    @property
    def uses_validation(self) -> bool:
        return self.options.select == "best"

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.members: list[Network] = [self]  # the networks averaged; self is member 0
        self.partner: GraphRidge | None = None  # the closed-form model blended in
        # blend_scale standardised: the partner's (offset, scale) onto the members' scale
        self.blend_stats: dict[str, list[float]] = {}

    @property
    def member_count(self) -> int:
        return self.options.members if self.options.core == "blend" else 1

    def clone(self, index: int) -> "DeepMethod":
        member = super().clone(index)
        member.members = []
        return member

    @property
    def blend_scale(self) -> str:
        """The option ``blend_scale`` with auto resolved (see :class:`DeepOptions`)."""
        if self.options.blend_scale != "auto":
            return self.options.blend_scale
        return "standardised" if self.uses_graph else "raw"

    @property
    def uses_graph(self) -> bool:
        """Whether the closed-form partner is LapRLS over the unlabeled videos (a method that
        says so) rather than ridge regression."""
        return False

    def make_partner(self) -> GraphRidge:
        """The closed-form model: LapRLS with a neighbourhood graph over the unlabeled videos
        where the method uses the graph, else ridge regression (its graph grid 0)."""
        return GraphRidge(graphs=GRAPH_GRID if self.uses_graph else (0.0,), average_best=5)

    # ---- the lifecycle ----------------------------------------------------------------------
    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None, hooks=()) -> "DeepMethod":
        """``begin``, ``train`` with a Trainer holding ``hooks``, and ``end``; the caller's
        torch random state is as it was after."""
        unlabeled = self.unlabeled_for(unlabeled)
        with own_random_state(self.device):
            self.begin(labeled, unlabeled, validation)
            self.train(Trainer(hooks), labeled, unlabeled, validation)
            self.end(labeled, unlabeled)
        return self

    def begin(self, labeled: FeatureSet, unlabeled: FeatureSet | None,
              validation: FeatureSet | None, compile: bool = True) -> list[Network]:
        """Fit the closed-form partner first (a method may teach its networks with it), then
        build every member's modules and normalisation, compiling the encoders if asked.
        ``unlabeled``: what ``unlabeled_for`` gave. Returns the members."""
        self.partner = None
        if self.options.core == "blend" and self.options.blend > 0:
            self.partner = self.make_partner().fit(labeled, unlabeled)
        self.members = [self] + [self.clone(k) for k in range(1, self.member_count)]
        self.reset_networks(labeled, unlabeled, validation, compile)
        return self.members

    def reset_networks(self, labeled: FeatureSet, unlabeled: FeatureSet | None,
                       validation: FeatureSet | None, compile: bool = True) -> None:
        """Every member's modules built afresh from its seed (``setup``), compiled if asked."""
        pool = [fs for fs in (unlabeled, validation) if fs is not None and len(fs)]
        for member in self.members:
            member.setup(labeled, pool)
            if compile and (self.options.compile == "on" or (self.options.compile == "auto"
                                                             and self.device.type == "cuda")):
                compile_encoder(member.modules["encoder"], self.options.compile_mode,
                                fallback=self.notes.append)

    def train(self, trainer: Trainer, labeled: FeatureSet, unlabeled: FeatureSet | None,
              validation: FeatureSet | None) -> None:
        """Train the members once (a method with phases overrides this, and is not
        ``groupable``: grouped runs train their members in one Trainer call instead)."""
        self.train_members(trainer, labeled, unlabeled, validation)

    def train_members(self, trainer: Trainer, labeled: FeatureSet,
                      unlabeled: FeatureSet | None, validation: FeatureSet | None,
                      phase: str = "") -> None:
        count = len(self.members)
        trainer.train(self.members, [labeled] * count, [unlabeled] * count,
                      [validation] * count, phase=phase)

    def end(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> None:
        """After training, for ``blend_scale`` standardised: the partner's predictions mapped
        onto the members' scale, so the blend weighs each part by ``blend`` whatever their
        spreads. Spreads are measured over every training video (the graph's smoothing shows
        there), the centre on the labeled videos: a centre taken over the unlabeled videos
        too would shift every score by however their mean differs from the labeled videos'
        (an intercept belongs to the labels)."""
        self.blend_stats = {}
        if self.partner is None or self.blend_scale != "standardised":
            return
        videos = [labeled] + ([unlabeled] if unlabeled is not None and len(unlabeled) else [])
        members, partner = self.predict_members(videos), self.partner.predict_normalised(videos)
        n = len(labeled)
        m_centre, m_spread = float(members[:n].mean()), float(members.std()) or 1.0
        p_centre, p_spread = float(partner[:n].mean()), float(partner.std()) or 1.0
        # predict_blend maps the partner p to (p - offset) / scale, which is
        # m_centre + (p - p_centre) * m_spread / p_spread; the members stay as they are
        ratio = p_spread / m_spread
        self.blend_stats = {"partner": [p_centre - m_centre * ratio, ratio]}

    def out_of_sample_residuals(self) -> Residuals | None:
        """The partner's leave-one-out residuals, where the blend adds the partner as it is
        (ridge, raw scale): the blend of networks and partner is more accurate than the
        partner alone, so they err wide. A standardised blend rescales the partner by the
        spread of the members' predictions, and residuals on that scale swung with it on
        validation slices (too wide in one seed in three, too narrow in another): none."""
        if self.partner is None or self.blend_stats:
            return None
        own = self.partner.out_of_sample_residuals()
        return Residuals(own.values, "partner_loo") if own is not None else None

    # ---- prediction -------------------------------------------------------------------------
    def predict_members(self, features: np.ndarray | FeatureSet | list[FeatureSet]) -> np.ndarray:
        """The members' mean normalised prediction (several FeatureSets: of their
        concatenation, without making it)."""
        features = features if isinstance(features, list) else as_array(features)
        return np.mean([m.batched(features, m.forward_normalised).astype(np.float64)
                        for m in self.members], axis=0)

    def predict_blend(self, features: np.ndarray | FeatureSet | list[FeatureSet]) -> np.ndarray:
        """The method's normalised prediction: the members' mean, blended with the partner."""
        z = self.predict_members(features)
        if self.partner is not None:
            w = self.options.blend
            partner = self.partner.predict_normalised(features)
            if self.blend_stats:  # the partner on the members' scale (``end``)
                offset, scale = self.blend_stats["partner"]
                partner = (partner - offset) / scale
            z = (1 - w) * z + w * partner
        return z

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        return self.predict_blend(features) * self.score_std + self.score_mean

    # ---- checkpoint -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.modules is None:
            raise self.not_trained()
        tensors = {}
        for member in self.members:  # member 0 unprefixed: a one-network checkpoint as before
            prefix = f"member{member.member_index}/" if member.member_index else ""
            tensors.update({prefix + k: v.detach().cpu().contiguous()
                            for k, v in member.modules.state_dict().items()})
        if self.partner is not None:
            tensors.update({f"partner/{k}": v for k, v in self.partner.state_dict().items()})
        return tensors

    def extra_state(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "score_mean": self.score_mean,
                "score_std": self.score_std, "members": len(self.members),
                "partner": self.partner.extra_state() if self.partner is not None else None,
                "blend_stats": self.blend_stats}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        segments, dim = extra["shape"]
        self.shape = (int(segments), int(dim))
        self.score_mean = float(extra["score_mean"])
        self.score_std = float(extra["score_std"])
        self.members = [self] + [self.clone(k) for k in range(1, int(extra.get("members", 1)))]
        for member in self.members:
            prefix = f"member{member.member_index}/" if member.member_index else ""
            member.load_network(strip_prefix(tensors, prefix, nested=False))
        # (checkpoints before this held "members": [0, 1] too, which changed nothing)
        stats = extra.get("blend_stats") or {}
        self.blend_stats = {"partner": list(stats["partner"])} if "partner" in stats else {}
        self.partner = None
        if extra.get("partner"):
            self.partner = GraphRidge()
            self.partner.load_state(strip_prefix(tensors, "partner/"), extra["partner"])
