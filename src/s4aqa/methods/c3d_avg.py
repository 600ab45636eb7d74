"""C3D-AVG (Parmar & Morris, CVPR 2019): the average of a video's clip features, then a regressor;
single-task (``c3d_avg_stl``) or with auxiliary heads on the dataset's extra labels
(``c3d_avg_mtl``).

The encoder averages the (standardised) segment features over time and maps the average through
one fully connected layer with a ReLU (dropout ``input_dropout`` on the features first); the
shared ``Regressor`` head gives the score. ``embed`` returns that layer's output. The Transformer
options of the shared schedule (``heads``, ``layers``, ``feedforward``, ``dropout``,
``mask_value``) are not used by this encoder.

MTL: one head (the shared ``mlp`` shape) per auxiliary label of ``FeatureSet.aux``: a classifier
(cross-entropy) for an integer label, with as many classes as the largest label seen in the
labeled and validation videos plus one (negative labels are ignored), and a regressor (MSE on
the label z-scored with the labeled videos' statistics, NaN ignored) for a float label. So on
MTL-AQA: position, armstand, rotation type, somersaults and twists as classes; on FineDiving: the
action type; on JIGSAWS: the six GRS items as regression. ``L = L_score + aux_weight * mean of
the auxiliary losses``; ``aux_labels`` all (default) or a comma-separated list of names. The
captioning head of the original MTL model is left out: no dataset here has captions. On a
dataset without extra labels the MTL variant refuses to train.

Like in the paper's table, both train on the labeled videos only (the unlabeled set is not read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.methods.deep import DeepMethod, DeepOptions
from s4aqa.methods.registry import register
from s4aqa.models import Regressor, mlp


class AverageEncoder(nn.Module):
    """(B, T, D) -> (B, H): dropout, mean over segments, Linear, ReLU."""

    def __init__(self, dim: int, hidden: int, input_dropout: float = 0.2) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.project = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.input_dropout(x).mean(dim=1))


@register("c3d_avg_stl")
class C3DAvgSTL(DeepMethod):
    description = "mean of the segment features, a layer and a regressor (C3D-AVG), supervised"

    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        o = self.options
        return nn.ModuleDict({"encoder": AverageEncoder(dim, o.hidden, o.input_dropout),
                              "regressor": Regressor(o.hidden, o.head_width, o.head_dropout)})


@dataclass
class C3DAvgMTLOptions(DeepOptions):
    aux_labels: str = "all"
    aux_weight: float = 1.0


@register("c3d_avg_mtl")
class C3DAvgMTL(C3DAvgSTL):
    description = "C3D-AVG with auxiliary heads for a dataset's extra labels, supervised"
    Options = C3DAvgMTLOptions

    def __init__(self, options, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(options, seed, device)
        # name -> {"kind": "class", "classes": n} or {"kind": "value", "mean": m, "std": s}
        self.aux_spec: dict[str, dict[str, Any]] = {}

    # ---- which auxiliary labels, and their heads -----------------------------------------
    def unmet_needs(self, labeled: FeatureSet, unlabeled: FeatureSet | None) -> str | None:
        if not labeled.aux:
            return (f"method '{self.label}' trains auxiliary heads on a dataset's extra labels, "
                    f"but '{labeled.name}' has none (MTL-AQA, FineDiving and JIGSAWS have them); "
                    "use c3d_avg_stl on this dataset")
        return super().unmet_needs(labeled, unlabeled)

    def choose_aux(self, labeled: FeatureSet, others: list[FeatureSet] = ()) -> None:
        available = sorted(labeled.aux)
        unmet = self.unmet_needs(labeled, None)
        if unmet:
            raise S4AQAError(unmet)
        wanted = self.options.aux_labels.strip()
        names = available if wanted in ("", "all") else [w.strip() for w in wanted.split(",") if w.strip()]
        unknown = [n for n in names if n not in labeled.aux]
        if unknown:
            raise S4AQAError(f"option aux_labels: {', '.join(unknown)} not among the auxiliary "
                             f"labels of '{labeled.name}' ({', '.join(available)})")
        spec = {}
        for name in names:
            values = np.asarray(labeled.aux[name])
            if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
                seen = [values] + [np.asarray(fs.aux[name]) for fs in others if name in fs.aux]
                largest = int(max(int(v.max()) if v.size else -1 for v in seen))
                spec[name] = {"kind": "class", "classes": max(largest + 1, 2)}
            else:
                values = values.astype(np.float64)
                finite = values[np.isfinite(values)]
                if finite.size == 0:
                    raise S4AQAError(f"auxiliary label '{name}' is missing for every labeled video")
                spec[name] = {"kind": "value", "mean": float(finite.mean()),
                              "std": float(finite.std()) or 1.0}
        self.aux_spec = spec

    def build(self, segments: int, dim: int) -> nn.ModuleDict:
        modules = super().build(segments, dim)
        o = self.options
        for name, spec in self.aux_spec.items():
            outputs = spec["classes"] if spec["kind"] == "class" else 1
            modules[f"aux_{name}"] = mlp(o.hidden, o.head_width, outputs, o.head_dropout)
        return modules

    def setup(self, labeled: FeatureSet, pool: list[FeatureSet]) -> None:
        # the heads depend on the labels: choose them before the modules are built (here, not in
        # fit, so that every way of training - one run or a group of seeds - gets them)
        self.choose_aux(labeled, pool)
        super().setup(labeled, pool)

    def labeled_tensors(self, labeled: FeatureSet) -> dict[str, torch.Tensor]:
        out = super().labeled_tensors(labeled)
        for name, spec in self.aux_spec.items():
            values = np.asarray(labeled.aux[name])
            if spec["kind"] == "class":
                out[f"aux:{name}"] = torch.as_tensor(values.astype(np.int64), device=self.device)
            else:
                z = (values.astype(np.float64) - spec["mean"]) / spec["std"]
                out[f"aux:{name}"] = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        return out

    def loss(self, labeled, unlabeled, progress):
        f = self.modules["encoder"](labeled["x"])
        reg = F.mse_loss(self.modules["regressor"](f), labeled["y"])
        parts = {"reg": reg}
        aux_losses = []
        for name, spec in self.aux_spec.items():
            out = self.modules[f"aux_{name}"](f)
            target = labeled[f"aux:{name}"]
            # missing labels (negative classes, NaN values) are masked out, not indexed away:
            # no data-dependent shapes, so grouped (vmapped) training works too
            if spec["kind"] == "class":
                valid = target >= 0
                each = F.cross_entropy(out, target.clamp_min(0), reduction="none")
            else:
                valid = torch.isfinite(target)
                each = (out.squeeze(-1) - torch.where(valid, target, 0.0)) ** 2
            value = (each * valid).sum() / valid.sum().clamp_min(1)
            parts[f"aux_{name}"] = value
            aux_losses.append(value)
        if not aux_losses:
            return reg, parts
        return reg + self.options.aux_weight * torch.stack(aux_losses).mean(), parts

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "aux": self.aux_spec}

    def load_state(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> None:
        self.aux_spec = {k: dict(v) for k, v in extra.get("aux", {}).items()}
        super().load_state(tensors, extra)
