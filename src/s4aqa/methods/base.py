"""The method interface every method implements, and the shared base of the deep ones.

``fit(labeled, unlabeled, validation)`` trains; ``predict(features)`` returns scores in the
dataset's own units; ``state_dict()`` (tensors) and ``extra_state()`` (JSON) are what a
checkpoint stores, and ``load_state`` restores them. Deep methods only say what their modules
are and what their loss is for a labeled and an unlabeled batch; the loop is
``s4aqa.training.loop``. A new method is one file here with ``@register("name")``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._linear import GRAPH_GRID, GraphRidge
from s4aqa.methods._pooling import as_array, check_shape
from s4aqa.models import Regressor, TemporalEncoder
from s4aqa.options import choice, require
from s4aqa.training.compiled import compile_encoder
from s4aqa.training.loop import train


@dataclass
class MethodOptions:
    """Options every method accepts."""


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
    semi_supervised: bool = False  # the method can learn from unlabeled videos

    @property
    def uses_unlabeled(self) -> bool:
        """Whether this instance reads the unlabeled set: a semi-supervised method does, unless
        its option ``unlabeled`` is off (the same method on the labeled videos only, which
        measures what the unlabeled videos add)."""
        return self.semi_supervised and bool(getattr(self.options, "unlabeled", True))

    @property
    def uses_validation(self) -> bool:
        """Whether the method selects on the validation slice; one that does not trains on it."""
        return False

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        self.options = options
        self.seed = int(seed)
        self.device = torch.device(device)
        self.label = self.name
        self.history: list[dict[str, float]] = []
        # training hooks the run layer attaches (saving and resuming state, progress)
        self.hooks: list = []

    def options_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.options)

    def unmet_needs(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> str | None:
        """Why this method cannot train on these videos (None: it can). Runs check it before
        training; a reproduction records such runs as skipped, with this reason."""
        if self.uses_unlabeled and (unlabeled is None or len(unlabeled) == 0):
            return self._no_unlabeled()
        return None

    def _no_unlabeled(self) -> str:
        return (f"method '{self.label}' learns from unlabeled videos but the unlabeled set is "
                "empty; use a label ratio below 1")

    def check_unlabeled(self, unlabeled: FeatureSet | None) -> FeatureSet | None:
        if self.uses_unlabeled and (unlabeled is None or len(unlabeled) == 0):
            raise S4AQAError(self._no_unlabeled())
        return unlabeled if self.uses_unlabeled else None

    # ---- the interface ------------------------------------------------------------------
    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None) -> "Method":
        raise NotImplementedError

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        raise NotImplementedError

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


MEMBER_SEED = 7919  # member k of an ensemble initialises from seed + k * MEMBER_SEED


class DeepMethod(Method):
    """A torch model trained by the shared loop (``s4aqa.training.loop``).

    Features are standardised per dimension with the training videos' statistics and scores
    z-scored with the labeled videos'; both are stored with the weights. Subclasses override
    ``build`` (the modules) and ``loss`` (labeled batch, unlabeled batch -> scalar, parts).

    The core (option ``core``): with "blend", the method is ``members`` networks (the method
    itself is member 0; the others are copies initialised from other seeds, trained together
    as one stacked model where the method allows) whose mean prediction is blended, with weight
    ``blend``, with a closed-form linear model of the pooled features (``partner``: ridge
    regression, or LapRLS with a graph over the unlabeled videos where the method uses the
    graph, ``uses_graph``).
    On Fis-V's training split both parts added to one network, and their sum most (see the
    README's results). With "plain" it is the paper's one network.
    """

    Options = DeepOptions
    groupable = True  # several seeds can train as one stacked model (training.stacked)

    @property
    def uses_validation(self) -> bool:
        return self.options.select == "best"

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.modules: nn.ModuleDict | None = None
        self.shape: tuple[int, int] | None = None  # (T, D)
        self.score_mean = 0.0
        self.score_std = 1.0
        self.member_index = 0
        self.members: list["DeepMethod"] = [self]  # the networks averaged; self is member 0
        self.partner: GraphRidge | None = None  # the closed-form model blended in
        # (mean, std) of the members' and the partner's predictions over the training videos
        self.blend_stats: dict[str, list[float]] = {}

    # ---- what subclasses say ------------------------------------------------------------
    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        o = self.options
        encoder = TemporalEncoder(dim, segments, o.hidden, o.heads, o.layers, o.feedforward,
                                  o.dropout, o.input_dropout, o.mask_value)
        return nn.ModuleDict({"encoder": encoder,
                              "regressor": Regressor(o.hidden, o.head_width, o.head_dropout)})

    def loss(self, labeled: dict[str, torch.Tensor], unlabeled: dict[str, torch.Tensor] | None,
             progress: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Default: mean squared error of the normalised score on the labeled batch."""
        prediction = self.modules["regressor"](self.modules["encoder"](labeled["x"]))
        reg = torch.nn.functional.mse_loss(prediction, labeled["y"])
        return reg, {"reg": reg}

    def moving_average(self) -> tuple[dict[str, str], float] | None:
        """A moving-average copy of some weights, kept by the training loops after each step:
        (copy's parameter name -> tracked parameter name, decay), or None when there is none."""
        return None

    def labeled_tensors(self, labeled: FeatureSet) -> dict[str, torch.Tensor]:
        """What a labeled batch holds; multi-task methods add auxiliary labels."""
        return {"x": self.to_input(labeled.features),
                "y": self.to_target(labeled.scores)}

    def unlabeled_tensors(self, unlabeled: FeatureSet) -> dict[str, torch.Tensor]:
        return {"x": self.to_input(unlabeled.features)}

    # ---- shared machinery -----------------------------------------------------------------
    def init_seed(self) -> int:
        return self.seed + MEMBER_SEED * self.member_index

    @property
    def member_count(self) -> int:
        return self.options.members if self.options.core == "blend" else 1

    def clone(self, index: int) -> "DeepMethod":
        """Member ``index`` of the ensemble: the same method and options, not yet built."""
        member = copy.copy(self)
        member.member_index, member.members, member.modules = index, [], None
        member.history, member.hooks = [], []
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

    def to_input(self, features: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(as_array(features), dtype=torch.float32, device=self.device)
        return (x - self.modules["feature_mean"].value) / self.modules["feature_std"].value

    def to_target(self, scores: np.ndarray) -> torch.Tensor:
        y = (np.asarray(scores, dtype=np.float64) - self.score_mean) / self.score_std
        return torch.as_tensor(y, dtype=torch.float32, device=self.device)

    def setup(self, labeled: FeatureSet, pool: list[FeatureSet]) -> None:
        """Build the modules and the normalisation from the training videos."""
        segments, dim = labeled.num_segments, labeled.dim
        for other in pool:
            if other.dim != dim or other.num_segments != segments:
                raise S4AQAError("labeled and unlabeled videos have different feature shapes")
        torch.manual_seed(self.init_seed())
        self.shape = (segments, dim)
        self.modules = self.build(segments, dim)
        rows = np.concatenate([fs.features.reshape(-1, dim) for fs in [labeled, *pool]])
        mean = rows.mean(axis=0)
        std = rows.std(axis=0) + 1e-6
        self.modules["feature_mean"] = Constant(mean)
        self.modules["feature_std"] = Constant(std)
        self.score_mean = float(labeled.scores.mean())
        self.score_std = float(labeled.scores.std()) or 1.0
        self.modules.to(self.device)

    def fit(self, labeled: FeatureSet, unlabeled: FeatureSet | None = None,
            validation: FeatureSet | None = None) -> "DeepMethod":
        unlabeled = self.check_unlabeled(unlabeled)
        self.prepare(labeled, unlabeled, validation)
        self.train_phases(labeled, unlabeled, validation)
        self.finish(labeled, unlabeled)
        return self

    def finish(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> None:
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
        array = np.concatenate([fs.features for fs in videos])
        members, partner = self.predict_members(array), self.partner.predict_normalised(array)
        n = len(labeled)
        m_centre, m_spread = float(members[:n].mean()), float(members.std()) or 1.0
        p_centre, p_spread = float(partner[:n].mean()), float(partner.std()) or 1.0
        # predict_blend computes (z - mean) / std for each part: members stay as they are, the
        # partner becomes m_centre + (p - p_centre) * m_spread / p_spread
        ratio = p_spread / m_spread
        self.blend_stats = {"members": [0.0, 1.0],
                            "partner": [p_centre - m_centre * ratio, ratio]}

    def prepare(self, labeled: FeatureSet, unlabeled: FeatureSet | None,
                validation: FeatureSet | None, compile: bool = True) -> None:
        """Fit the closed-form partner first (a method may teach its networks with it), then
        build every member's modules and normalisation, compiling the encoders if asked."""
        self.partner = None
        if self.options.core == "blend" and self.options.blend > 0:
            self.partner = self.make_partner().fit(labeled, unlabeled)
        self.members = [self] + [self.clone(k) for k in range(1, self.member_count)]
        self.reset_networks(labeled, unlabeled, validation, compile)

    def reset_networks(self, labeled: FeatureSet, unlabeled: FeatureSet | None,
                       validation: FeatureSet | None, compile: bool = True) -> None:
        """Every member's modules built afresh from its seed (``setup``), compiled if asked."""
        pool = [fs for fs in (unlabeled, validation) if fs is not None and len(fs)]
        for member in self.members:
            member.setup(labeled, pool)
            if compile and (self.options.compile == "on" or (self.options.compile == "auto"
                                                             and self.device.type == "cuda")):
                compile_encoder(member.modules["encoder"], self.options.compile_mode)

    def train_phases(self, labeled: FeatureSet, unlabeled: FeatureSet | None,
                     validation: FeatureSet | None) -> None:
        """Train the prepared networks (methods with phases override)."""
        self.train_members(labeled, unlabeled, validation)

    def train_members(self, labeled: FeatureSet, unlabeled: FeatureSet | None,
                      validation: FeatureSet | None, phase: str = "") -> None:
        """One run of the loop for every member: together as one stacked model on a GPU where
        the method allows it, else one after another (on a CPU thread stacking saves nothing)."""
        count = len(self.members)
        if count == 1 or not self.groupable or self.device.type != "cuda":
            for member in self.members:
                name = " ".join(p for p in (phase, f"member {member.member_index}"
                                            if count > 1 else "") if p)
                train([member], [labeled], [unlabeled], [validation], hooks=self.hooks,
                      phase=name)
        else:
            train(self.members, [labeled] * count, [unlabeled] * count, [validation] * count,
                  hooks=self.hooks, phase=phase)

    @torch.no_grad()
    def predict_normalised(self, x: torch.Tensor) -> torch.Tensor:
        return self.modules["regressor"](self.modules["encoder"](x))

    def _batched(self, features: np.ndarray | FeatureSet, fn) -> np.ndarray:
        if self.modules is None:
            raise S4AQAError("the method has not been trained or loaded")
        array = as_array(features)
        check_shape(array, self.shape, self.label)
        self.modules.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(array), 256):
                out.append(fn(self.to_input(array[start:start + 256])).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0,))

    def predict_members(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """The members' mean normalised prediction."""
        array = as_array(features)
        return np.mean([m._batched(array, m.predict_normalised).astype(np.float64)
                        for m in self.members], axis=0)

    def predict_blend(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """The method's normalised prediction: the members' mean, blended with the partner."""
        z = self.predict_members(features)
        if self.partner is not None:
            w = self.options.blend
            partner = self.partner.predict_normalised(as_array(features))
            if self.blend_stats:  # each part on the scale of its own spread
                (m_mean, m_std), (p_mean, p_std) = (self.blend_stats["members"],
                                                    self.blend_stats["partner"])
                z, partner = (z - m_mean) / m_std, (partner - p_mean) / p_std
            z = (1 - w) * z + w * partner
        return z

    def predict(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        return self.predict_blend(features) * self.score_std + self.score_mean

    def embed(self, features: np.ndarray | FeatureSet) -> np.ndarray:
        """The first member's video representations."""
        return self._batched(features, self.modules["encoder"])

    def state_dict(self) -> dict[str, torch.Tensor]:
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
            own = {k[len(prefix):]: v for k, v in tensors.items()
                   if k.startswith(prefix) and "/" not in k[len(prefix):]}
            member.modules = member.build(*self.shape)
            member.modules["feature_mean"] = Constant(np.zeros(dim))
            member.modules["feature_std"] = Constant(np.ones(dim))
            member.modules.load_state_dict(own)
            member.modules.to(self.device)
        self.blend_stats = {k: list(v) for k, v in (extra.get("blend_stats") or {}).items()}
        self.partner = None
        if extra.get("partner"):
            self.partner = GraphRidge()
            self.partner.load_state({k[8:]: v for k, v in tensors.items()
                                     if k.startswith("partner/")}, extra["partner"])


class Constant(nn.Module):
    """A fixed tensor stored with the weights (feature normalisation statistics, score bins)."""

    def __init__(self, value: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("value", torch.as_tensor(np.asarray(value), dtype=torch.float32))

