"""S4AQA (Zhang et al., TCSVT 2022): action assessment with masked segment feature recovery
(MSFR) and representation distribution alignment (RDA) through gradient reversal.

``L = L_reg + λ1 L_rcvr + λ2 L_adv``. The switches ``msfr`` and ``rda`` give the ablation rows:
``aa`` (both off, supervised only), ``aa+rda``, ``aa+msfr`` and ``s4aqa`` (both on).

Choices the paper leaves open, with their defaults:
- mask: one segment per unlabeled video (``mask_span`` 1; a value >= 1 is a count of contiguous
  segments, below 1 a fraction of T), hidden by zeroing its standardised input (``mask_value``
  zero, or a learned token);
- Φ reads the pooled representation f̈ plus the masked position's embedding (``recover_from``
  pooled, as in the paper's Φ(f̈)), or the masked position's own output token (``token``);
- the recovery target is the standardised original feature of the masked segments, L1 loss;
- recovery on unlabeled videos only (``recover_on`` unlabeled, as the paper) or on all;
- the discriminator sees f^l (class 1), f^u and f̈^u (class 0), BCE on logits, through a
  gradient reversal of strength ``grl_coefficient``, constant or ramped as in DANN
  (``grl_schedule`` dann: 2/(1+exp(-10p)) - 1 over training progress p);
- batches of 16 labeled + 16 unlabeled videos, AdamW 3e-4, 200 steps, selection on validation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from s4aqa.methods.base import DeepMethod, DeepOptions
from s4aqa.methods.options import choice
from s4aqa.methods.registry import register
from s4aqa.models import Discriminator, RecoveryDecoder, reverse_gradient


@dataclass
class S4AQAOptions(DeepOptions):
    msfr: bool = True
    rda: bool = True
    lambda_rcvr: float = 1.0
    lambda_adv: float = 0.01
    mask_span: float = 1.0
    recover_from: str = choice("pooled", "token")
    recover_on: str = choice("unlabeled", "all")
    grl_coefficient: float = 1.0
    grl_schedule: str = choice("constant", "dann")


class Recovery(NamedTuple):
    recovered: torch.Tensor  # (B, M, D) decoder output for the masked segments
    target: torch.Tensor  # (B, M, D) their original features
    positions: torch.Tensor  # (B, M) which segments were masked
    pooled: torch.Tensor  # (B, H) the masked video's representation f̈


def span_mask(batch: int, segments: int, span: int, generator: torch.Generator | None,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One contiguous span of ``span`` segments per video at a random start.

    Returns the (B, T) bool mask and the (B, span) masked positions.
    """
    start = torch.randint(segments - span + 1, (batch, 1), generator=generator, device=device)
    positions = start + torch.arange(span, device=device)[None]
    time = torch.arange(segments, device=device)[None]
    mask = (time >= start) & (time < start + span)  # out of place, so it runs under vmap too
    return mask, positions


def masked_count(mask_span: float, segments: int) -> int:
    count = int(mask_span) if mask_span >= 1 else int(round(mask_span * segments))
    return max(1, min(count, segments - 1 if segments > 1 else 1))


@register("s4aqa", **{"aa": {"msfr": False, "rda": False},
                      "aa+rda": {"msfr": False, "rda": True},
                      "aa+msfr": {"msfr": True, "rda": False}})
class S4AQA(DeepMethod):
    Options = S4AQAOptions

    @property
    def uses_unlabeled(self) -> bool:  # aa ignores the unlabeled set
        return self.options.msfr or self.options.rda

    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        modules = super().build(segments, dim)
        o = self.options
        if o.msfr:
            modules["decoder"] = RecoveryDecoder(o.hidden, dim, segments)
        if o.rda:
            modules["discriminator"] = Discriminator(o.hidden, o.head_width)
        return modules

    def reversal_strength(self, progress: float) -> float:
        o = self.options
        if o.grl_schedule == "dann":
            return o.grl_coefficient * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)
        return o.grl_coefficient

    def recover(self, x: torch.Tensor) -> Recovery:
        """Mask a span of each video, encode the rest, and recover the hidden features."""
        mask, positions = self.draw_mask(x)
        tokens = self.modules["encoder"].tokens(x, mask)
        return self.recovered(tokens, x, positions)

    def draw_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, segments, _ = x.shape
        return span_mask(batch, segments, masked_count(self.options.mask_span, segments),
                         None, x.device)

    def recovered(self, tokens: torch.Tensor, x: torch.Tensor, positions: torch.Tensor) -> Recovery:
        """Φ's output for the masked positions of encoded masked videos, and its target."""
        decoder = self.modules["decoder"]
        pooled = tokens.mean(dim=1)
        if self.options.recover_from == "token":
            recovered = decoder(torch.gather(
                tokens, 1, positions[..., None].expand(-1, -1, tokens.shape[-1])))
        else:
            recovered = decoder.from_pooled(pooled, positions)
        # the target is the original (standardised) feature of each masked segment
        target = torch.gather(x, 1, positions[..., None].expand(-1, -1, x.shape[-1]))
        return Recovery(recovered, target, positions, pooled)

    def loss(self, labeled, unlabeled, progress):
        o = self.options
        x_l = labeled["x"]
        if not (o.msfr or o.rda):
            f_l = self.modules["encoder"](x_l)
            reg = F.mse_loss(self.modules["regressor"](f_l), labeled["y"])
            return reg, {"reg": reg}
        x_u = unlabeled["x"]
        # one fused encoder pass over [labeled, unlabeled (for RDA), masked (for MSFR)]: the
        # encoder treats videos independently, so this equals separate passes, with fewer launches
        inputs = [x_l] + ([x_u] if o.rda else [])
        masks = [torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device) for x in inputs]
        if o.msfr:
            x_rec = torch.cat([x_u, x_l]) if o.recover_on == "all" else x_u
            mask, positions = self.draw_mask(x_rec)
            inputs.append(x_rec)
            masks.append(mask)
        tokens = self.modules["encoder"].tokens(torch.cat(inputs), torch.cat(masks))
        sizes = [x.shape[0] for x in inputs]
        chunks = list(torch.split(tokens, sizes))
        f_l = chunks[0].mean(dim=1)
        reg = F.mse_loss(self.modules["regressor"](f_l), labeled["y"])
        parts = {"reg": reg}
        total = reg
        reps = [f_l]
        if o.rda:
            reps.append(chunks[1].mean(dim=1))
        if o.msfr:
            recovery = self.recovered(chunks[-1], x_rec, positions)
            rcvr = F.l1_loss(recovery.recovered, recovery.target)
            parts["rcvr"] = rcvr
            total = total + o.lambda_rcvr * rcvr
            reps.append(recovery.pooled[: x_u.shape[0]])  # f̈^u
        if o.rda:
            domain = torch.cat([torch.ones(f_l.shape[0], device=f_l.device),
                                torch.zeros(sum(r.shape[0] for r in reps[1:]), device=f_l.device)])
            logits = self.modules["discriminator"](
                reverse_gradient(torch.cat(reps), self.reversal_strength(progress)))
            adv = F.binary_cross_entropy_with_logits(logits, domain)
            parts["adv"] = adv
            total = total + o.lambda_adv * adv
        return total, parts
