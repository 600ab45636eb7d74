"""A group of several models of one method, stepped as one batched model.

Runs that differ only by seed (or by a loss weight) share everything but their weights and
their data draw. Their parameters are stacked along a leading model axis and one vectorised
step (``torch.func.vmap``) trains all of them, so a protocol's runs share kernel launches. AdamW
acts element by element, so one optimiser over stacked weights is K independent optimisers.

The numbers are those of K independent trainings, statistically, but not bit-identical to
running each alone: the random draws (batches, masks, dropout) are taken in another order.
The interface is that of ``loop.Single``, for ``loop.Loop``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError


class _LossOf(nn.Module):
    """A module whose forward is a method's loss, so functional_call can swap its weights."""

    def __init__(self, method) -> None:
        super().__init__()
        self.inner = method.modules
        self.method = [method]  # a list, so the method is not registered as a submodule

    def forward(self, labeled, unlabeled, progress):
        return self.method[0].loss(labeled, unlabeled, progress)


class _PredictOf(_LossOf):
    def forward(self, x):
        return self.method[0].forward_normalised(x)


@contextlib.contextmanager
def _no_fastpath():
    """The fused inference path of torch's attention layers has no vmap rule: switch it off."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _stack(dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([d[k] for d in dicts]) for k in dicts[0]}


def can_group(methods) -> bool:
    """Methods train together when they are the same groupable class."""
    first = methods[0]
    return all(type(m) is type(first) and getattr(m, "groupable", False) for m in methods)


class Stacked:
    """K models of one method with stacked weights; see the module docstring."""

    def __init__(self, methods, labeled: list[FeatureSet], unlabeled: list[FeatureSet | None],
                 validation: list[FeatureSet | None]) -> None:
        if not can_group(methods):
            raise S4AQAError("only deep methods of one kind can be trained as a group")
        self.methods = list(methods)
        first = methods[0]
        self.device, self.count = first.device, len(methods)
        lab_data = [m.labeled_tensors(fs) for m, fs in zip(methods, labeled)]
        unl_data = ([m.unlabeled_tensors(fs) for m, fs in zip(methods, unlabeled)]
                    if first.uses_unlabeled else None)
        if len({next(iter(d.values())).shape[0] for d in lab_data}) != 1 or (
                unl_data and len({d["x"].shape[0] for d in unl_data}) != 1):
            raise S4AQAError("grouped runs need labeled (and unlabeled) sets of equal size")
        self.labeled = _stack(lab_data)
        self.unlabeled = _stack(unl_data) if unl_data else None
        has_val = all(v is not None and len(v) for v in validation)
        self.validation = (list(validation) if has_val and len({len(v) for v in validation}) == 1
                           else None)
        self.val_x = (_stack([{"x": m.to_input(v.features)} for m, v in zip(methods, validation)])["x"]
                      if self.validation else None)
        losses = [_LossOf(m) for m in methods]
        self.params, self.buffers = stack_module_state(losses)
        # the shared module objects run each model's weights through functional_call
        self.template = losses[0]
        predictor = _PredictOf(first)

        def one_loss(p, b, lab, unl, progress):
            return functional_call(self.template, (p, b), (lab, unl, progress))

        def one_prediction(p, b, x):
            return functional_call(predictor, (p, b), (x,))

        self.batched_loss = vmap(one_loss, in_dims=(0, 0, 0, 0 if self.unlabeled else None, None),
                                 randomness="different")
        self.batched_prediction = vmap(one_prediction, randomness="different")
        self.rows = torch.arange(self.count, device=self.device)[:, None]
        # each model's feature statistics, (K, 1, 1, D): batches are standardised per model
        self.feature_mean, self.feature_std = (
            torch.stack([m.modules[name].value for m in methods])[:, None, None]
            for name in ("feature_mean", "feature_std"))

    def parameters(self) -> list[torch.Tensor]:
        return [p for p in self.params.values() if p.requires_grad]

    def named_parameters(self) -> dict[str, torch.Tensor]:
        return {name[len("inner."):]: value for name, value in self.params.items()}

    def train(self) -> None:
        self.template.train()

    def _draw(self, stack: dict[str, torch.Tensor], size: int, generator: torch.Generator):
        n = next(iter(stack.values())).shape[1]
        index = torch.randint(n, (self.count, min(size, n)), generator=generator,
                              device=self.device)
        batch = {k: v[self.rows, index] for k, v in stack.items()}
        # as ``Network.standardise`` does for one model
        batch["x"] = (batch["x"].to(torch.float32) - self.feature_mean) / self.feature_std
        return batch

    def loss(self, schedule, generator: torch.Generator, progress: float):
        batch_l = self._draw(self.labeled, schedule.batch_labeled, generator)
        batch_u = (self._draw(self.unlabeled, schedule.batch_unlabeled, generator)
                   if self.unlabeled else None)
        with _no_fastpath():  # eval-mode parts of a loss (a teacher) must not take it under vmap
            loss, parts = self.batched_loss(self.params, self.buffers, batch_l, batch_u, progress)
        # the models' losses are independent: the sum's gradient is each model's own
        return loss.sum(), {k: v.detach() for k, v in parts.items()}

    def predict_validation(self) -> list[np.ndarray]:
        self.template.eval()
        with _no_fastpath(), torch.no_grad():
            scores = self.batched_prediction(self.params, self.buffers, self.val_x)
        return list(scores.float().cpu().numpy())

    def snapshot(self, member: int) -> dict[str, torch.Tensor]:
        return {name: value[member].detach().clone() for name, value in self.params.items()}

    def state(self) -> dict[str, torch.Tensor]:
        return {**self.params, **self.buffers}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, value in self.state().items():
                value.copy_(tensors[name])

    def finish(self, snapshots: list[Any]) -> None:
        for k, method in enumerate(self.methods):
            chosen = snapshots[k] or {name: value[k] for name, value in self.params.items()}
            state = {name[len("inner."):]: value.detach().clone() for name, value in chosen.items()}
            state.update({name[len("inner."):]: value[k].clone()
                          for name, value in self.buffers.items()})
            method.modules.load_state_dict(state)
            method.modules.eval()
