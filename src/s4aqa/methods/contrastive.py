"""Contrastive regression (CoRe: Yu, Rao, Zhao, Lu, Zhou, ICCV 2021): a video is scored
relative to labeled exemplars whose scores are known.

The shared temporal encoder gives each video a representation f. A pair head reads a video
and an exemplar, [f_video, f_exemplar, z_exemplar], and predicts the score difference
z_video - z_exemplar (z: the z-scored score). A video's score is the mean over its M exemplars
(``exemplars``) of z_exemplar + the predicted difference. n labeled videos give n(n - 1)
ordered training pairs.

Choices, with their defaults:
- exemplars (``exemplar_choice``): ``group``: the labeled videos of the video's own group
  first (MTL-AQA's dive number, RG's apparatus, a JIGSAWS task: a dataset's ``groups``), the
  nearest of them; where the dataset has no groups (Fis-V) every labeled video is of the one
  group and this is ``nearest``: the M labeled videos nearest in feature space, by cosine
  similarity of the standardised mean-pooled segment features (the space of the package's
  neighbourhood graph; fixed, so the choice does not move with training and is the same for
  training and prediction). CoRe's exemplars share the dive number: within a group the
  difference to regress is between two performances of one action, and on a dataset without
  groups the nearest videos are the closest stand-in (a smaller, more regular difference).
  ``nearest`` ignores groups; ``all`` averages over every labeled video. Features given as a
  bare array (no groups) are scored against the nearest labeled videos of any group;
- training pairs (``pairs``): ``exemplar``: each video of a labeled batch with one exemplar
  drawn at random from its own M exemplars (CoRe's form; one more encoder pass); ``batch``:
  every ordered pair of different videos of the batch (of one group where the exemplars are
  chosen by group): B(B - 1) pairs at no extra encoder pass;
- the head (``head``): ``regression``, a plain difference regressor (dropout, 2H+1 -> width ->
  1, squared error); or ``groups``, CoRe's group-aware idea flattened to one level: the
  difference is classified into ``difference_groups`` ordered intervals (quantiles of the
  labeled pairs' differences, cross-entropy) and regressed within each (a sigmoid position
  between the interval's ends, squared error on the true interval); its prediction is the
  probability-weighted mean of the intervals' regressed differences (CoRe reads the most
  probable leaf);
- after training each network stores its exemplars: their representations, z-scores, pooled
  feature directions and groups (safetensors buffers), so a checkpoint predicts without the
  training videos. While training they are computed from the labeled features as they are.

Chosen on 100 held-out training videos of Fis-V (``--holdout 100``; TES and PCS at 10% and
40% labels, 5 seeds; docs/results/fisv/anchors/README.md), paired against ``aa``: the shared
deep core (``core`` blend) and plain tie (mean difference -0.006 both; blend kept, as for the
other deep methods); ``pairs`` exemplar +0.001 against batch -0.006; the group-aware head
(``head`` groups) -0.007, no better than the plain regressor, which stays the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods._pooling import video_blocks
from s4aqa.methods.deep import DeepMethod, DeepOptions
from s4aqa.methods.registry import register
from s4aqa.models import Regressor, mlp
from s4aqa.options import choice, require

GROUP_BONUS = 3.0  # added to the cosine similarity (in [-1, 1]) of an exemplar of the same group


@dataclass
class ContrastiveOptions(DeepOptions):
    exemplars: int = 10
    exemplar_choice: str = choice("group", "nearest", "all")
    pairs: str = choice("exemplar", "batch")
    head: str = choice("regression", "groups")
    difference_groups: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.exemplars >= 1, "exemplars", self.exemplars, "must be at least 1")
        require(self.difference_groups >= 2, "difference_groups", self.difference_groups,
                "must be at least 2")


class PairHead(nn.Module):
    """[f_video, f_exemplar, z_exemplar] (..., 2H + 1) -> predicted z_video - z_exemplar (...).

    ``groups`` 0: a plain regressor; ``groups`` G >= 2: G ordered difference intervals
    (their ends ``edges``, a buffer), classified and regressed within (module docstring)."""

    def __init__(self, hidden: int, width: int, dropout: float, groups: int = 0) -> None:
        super().__init__()
        self.groups = groups
        self.net = mlp(2 * hidden + 1, width, 1 if groups < 2 else 2 * groups, dropout)
        if groups >= 2:
            self.register_buffer("edges", torch.linspace(-2.0, 2.0, groups + 1))

    @staticmethod
    def pair(video: torch.Tensor, exemplar: torch.Tensor, z_exemplar: torch.Tensor) -> torch.Tensor:
        return torch.cat([video, exemplar, z_exemplar[..., None]], dim=-1)

    def _parts(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, position = self.net(pair).split(self.groups, dim=-1)
        low, high = self.edges[:-1], self.edges[1:]
        return logits, low + (high - low) * torch.sigmoid(position)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        if self.groups < 2:
            return self.net(pair).squeeze(-1)
        logits, within = self._parts(pair)
        return (torch.softmax(logits, dim=-1) * within).sum(-1)

    def pair_loss(self, pair: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        """Loss of each pair (...) against its true difference."""
        if self.groups < 2:
            return (self.net(pair).squeeze(-1) - difference) ** 2
        logits, within = self._parts(pair)
        interval = torch.bucketize(difference, self.edges[1:-1].contiguous())
        cross_entropy = F.cross_entropy(logits.reshape(-1, self.groups), interval.reshape(-1),
                                        reduction="none").reshape(difference.shape)
        regressed = torch.gather(within, -1, interval[..., None]).squeeze(-1)
        return cross_entropy + (regressed - difference) ** 2


class ExemplarBank(nn.Module):
    """The labeled training videos as exemplars: representations (N, H), z-scores (N,),
    unit-length pooled standardised features (N, D) and group codes (N,)."""

    def __init__(self, size: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("embeddings", torch.zeros(size, hidden))
        self.register_buffer("scores", torch.zeros(size))
        self.register_buffer("pooled", torch.zeros(size, dim))
        self.register_buffer("groups", torch.zeros(size, dtype=torch.long))


def pooled_direction(x: torch.Tensor) -> torch.Tensor:
    """Standardised features (B, T, D) -> unit-length mean over segments (B, D)."""
    return F.normalize(x.mean(dim=1), dim=-1)


def group_codes(groups: np.ndarray | None, vocabulary: Sequence[str]) -> np.ndarray | None:
    """Group names -> their index in ``vocabulary`` (-1 for a group not in it)."""
    if groups is None:
        return None
    index = {g: i for i, g in enumerate(vocabulary)}
    return np.array([index.get(str(g), -1) for g in groups], dtype=np.int64)


def groups_of(features) -> np.ndarray | None:
    """The groups of a FeatureSet (or of several, concatenated); None for a bare array."""
    if isinstance(features, FeatureSet):
        return np.asarray(features.groups)
    if isinstance(features, (list, tuple)) and all(isinstance(f, FeatureSet) for f in features):
        return np.concatenate([np.asarray(f.groups) for f in features])
    return None


@register("contrastive")
class Contrastive(DeepMethod):
    description = ("scores a video as labeled exemplars' scores plus predicted differences, "
                   "averaged over exemplars of its group or nearest to it (CoRe's contrastive "
                   "regression), supervised")
    Options = ContrastiveOptions
    # the loss reads exemplars by index from the whole labeled set: one run at a time
    groupable = False

    def __init__(self, options: Any, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        self.bank_size = 0
        self.vocabulary: list[str] = [""]
        self._bank_x: torch.Tensor | None = None  # labeled features (as stored) while training
        self._candidates: torch.Tensor | None = None  # (N, M) exemplars of each labeled video

    def clone(self, index: int) -> Contrastive:
        member = super().clone(index)
        member._bank_x, member._candidates = None, None
        return member

    def unmet_needs(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> str | None:
        return self._too_few(labeled) or super().unmet_needs(labeled, unlabeled)

    def _too_few(self, labeled: FeatureSet) -> str | None:
        if len(labeled) < 2:
            return (f"method '{self.label}' scores videos against labeled exemplars and needs "
                    "at least 2 labeled videos")
        return None

    # ---- modules --------------------------------------------------------------------------
    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        o = self.options
        encoder = self.encoder(segments, dim)
        pair = PairHead(o.hidden, o.head_width, o.head_dropout,
                        o.difference_groups if o.head == "groups" else 0)
        return nn.ModuleDict({"encoder": encoder, "pair": pair,
                              "bank": ExemplarBank(self.bank_size, o.hidden, dim)})

    def direct_head(self) -> Regressor:
        """A direct score regressor on the encoder (``trs`` adds one)."""
        o = self.options
        return Regressor(o.hidden, o.head_width, o.head_dropout)

    def setup(self, labeled: FeatureSet, pool: list[FeatureSet]) -> None:
        unmet = self._too_few(labeled)
        if unmet:
            raise S4AQAError(unmet)
        self.bank_size = len(labeled)
        self.vocabulary = sorted({str(g) for g in labeled.groups})
        super().setup(labeled, pool)
        bank = self.modules["bank"]
        z = self.to_target(labeled.scores)
        bank.scores.copy_(z)
        bank.groups.copy_(torch.as_tensor(group_codes(labeled.groups, self.vocabulary)))
        bank.pooled.copy_(torch.cat([pooled_direction(self.to_input(block))
                                     for block in video_blocks(labeled, 256)]))
        if self.options.head == "groups":  # the intervals: quantiles of the pairs' differences
            difference = (z[:, None] - z[None])[~torch.eye(len(z), dtype=torch.bool,
                                                           device=z.device)]
            edges = torch.quantile(difference.double().cpu(), torch.linspace(
                0, 1, self.options.difference_groups + 1, dtype=torch.float64))
            self.modules["pair"].edges.copy_(edges.float())
        self._candidates = self.exemplar_index(bank.pooled, bank.groups,
                                               exclude=torch.arange(len(z), device=z.device))

    # ---- exemplars ------------------------------------------------------------------------
    @property
    def by_group(self) -> bool:
        return self.options.exemplar_choice == "group"

    def exemplar_index(self, pooled: torch.Tensor, codes: torch.Tensor | None,
                       exclude: torch.Tensor | None = None,
                       modules: nn.ModuleDict | None = None) -> torch.Tensor:
        """(Q, M) bank rows that are the exemplars of Q videos (their pooled directions and
        group codes; ``exclude``: each video's own bank row, or -1)."""
        bank = (modules or self.modules)["bank"]
        n = bank.scores.shape[0]
        similarity = pooled @ bank.pooled.T
        if self.by_group and codes is not None:
            similarity = similarity + GROUP_BONUS * (codes[:, None] == bank.groups[None]).float()
        available = n
        if exclude is not None:
            own = exclude[:, None] == torch.arange(n, device=pooled.device)[None]
            similarity = similarity.masked_fill(own, -torch.inf)
            available = n - 1
        count = available if self.options.exemplar_choice == "all" else min(
            self.options.exemplars, available)
        return torch.topk(similarity, count, dim=1).indices

    def bank_embeddings(self, modules: nn.ModuleDict | None = None) -> torch.Tensor:
        """The exemplars' representations by ``modules``' encoder (default: this network's):
        computed from the labeled features while training, stored after."""
        modules = modules or self.modules
        if self._bank_x is None:
            return modules["bank"].embeddings
        with torch.no_grad():
            return torch.cat([modules["encoder"](self.standardise(self._bank_x[i:i + 256]))
                              for i in range(0, len(self._bank_x), 256)])

    def relative(self, f: torch.Tensor, pooled: torch.Tensor, codes: torch.Tensor | None,
                 modules: nn.ModuleDict | None = None,
                 bank_f: torch.Tensor | None = None) -> torch.Tensor:
        """(Q, M) scores of Q videos (representations ``f``) against each of their exemplars:
        z_exemplar + predicted difference."""
        modules = modules or self.modules
        bank = modules["bank"]
        bank_f = self.bank_embeddings(modules) if bank_f is None else bank_f
        index = self.exemplar_index(pooled, codes, modules=modules)
        z_e = bank.scores[index]
        pair = PairHead.pair(f[:, None].expand(-1, index.shape[1], -1), bank_f[index], z_e)
        return z_e + modules["pair"](pair)

    def relative_score(self, x: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        """The mean over exemplars (Q,) of standardised inputs ``x``."""
        f = self.modules["encoder"](x)
        return self.relative(f, pooled_direction(x), codes).mean(dim=1)

    def video_score(self, x: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        """The network's normalised score of standardised inputs ``x`` (Q,), given their
        group codes where known."""
        return self.relative_score(x, codes)

    # ---- training -------------------------------------------------------------------------
    def labeled_tensors(self, labeled: FeatureSet) -> dict[str, torch.Tensor]:
        tensors = super().labeled_tensors(labeled)
        self._bank_x = tensors["x"]
        tensors["index"] = torch.arange(len(labeled), device=self.device)
        return tensors

    def pair_loss(self, f: torch.Tensor, labeled: dict[str, torch.Tensor]) -> torch.Tensor:
        """The contrastive loss of a labeled batch (representations ``f``)."""
        y, index = labeled["y"], labeled["index"]
        bank, head = self.modules["bank"], self.modules["pair"]
        if self.options.pairs == "exemplar":
            candidates = self._candidates[index]
            pick = torch.randint(candidates.shape[1], (len(index), 1), device=index.device)
            exemplar = torch.gather(candidates, 1, pick).squeeze(1)
            f_e = self.modules["encoder"](self.standardise(self._bank_x[exemplar]))
            z_e = bank.scores[exemplar]
            return head.pair_loss(PairHead.pair(f, f_e, z_e), y - z_e).mean()
        # every ordered pair of different videos of the batch (of one group, by group)
        size = len(index)
        valid = index[:, None] != index[None]
        if self.by_group:
            codes = bank.groups[index]
            valid = valid & (codes[:, None] == codes[None])
        pair = PairHead.pair(f[:, None].expand(-1, size, -1), f[None].expand(size, -1, -1),
                             y[None].expand(size, -1))
        losses = head.pair_loss(pair, y[:, None] - y[None])
        return (losses * valid).sum() / valid.sum().clamp_min(1)

    def loss(self, labeled, unlabeled, progress):
        pairs = self.pair_loss(self.modules["encoder"](labeled["x"]), labeled)
        return pairs, {"pairs": pairs}

    def end(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> None:
        """Store each network's exemplar representations, then what the blend needs."""
        for member in self.members:
            member.modules.eval()
            member.modules["bank"].embeddings.copy_(member.bank_embeddings())
            member._bank_x, member._candidates = None, None
        super().end(labeled, unlabeled)

    # ---- prediction -----------------------------------------------------------------------
    @torch.no_grad()
    def forward_normalised(self, x: torch.Tensor) -> torch.Tensor:
        return self.video_score(x)

    def predict_members(self, features) -> np.ndarray:
        """The members' mean normalised prediction, each video against exemplars of its own
        group where ``features`` say which (a FeatureSet)."""
        names = groups_of(features)
        codes = group_codes(names, self.vocabulary)
        predictions = []
        for member in self.members:
            start = [0]

            def score(x, member=member, start=start):
                block = None
                if codes is not None:
                    block = torch.as_tensor(codes[start[0]:start[0] + len(x)], device=x.device)
                start[0] += len(x)
                return member.video_score(x, block)

            predictions.append(member.batched(features, score).astype(np.float64))
        return np.mean(predictions, axis=0)

    # ---- checkpoint -----------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "groups": list(self.vocabulary)}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        self.bank_size = int(tensors["bank.scores"].shape[0])
        self.vocabulary = list(extra.get("groups") or [""])
        super().load_state(tensors, extra)
