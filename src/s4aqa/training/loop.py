"""The one training loop of every deep method.

A group of models of one method trains in lock step; a single run is a group of one. Features
and scores live on the device for the whole run and batches are drawn by index with a seeded
generator: no DataLoader, no per-step host-to-device copies, and no synchronisation inside the
loop except at evaluation points. What is done around the steps is a hook (``hooks``): the
moving-average teacher, evaluation on the validation slice with model selection and the log,
saving and resuming training state, progress. The loop adds the first two itself; the run layer
adds the others.

A group of one steps its model directly (``Single``); a larger group stacks its models' weights
and steps them as one vectorised model (``stacked.Stacked``).

What the loop needs of a deep method (``methods.base.DeepMethod``): ``modules`` (built),
``options`` (steps, lr, weight_decay, schedule, batch_labeled, batch_unlabeled, eval_every,
select), ``device``, ``init_seed()``, ``labeled_tensors`` / ``unlabeled_tensors`` /
``to_input``, ``loss(labeled, unlabeled, progress)``, ``predict_normalised`` and
``moving_average()``; it sets ``history``.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.training.hooks import Evaluation, Hook, MovingAverage
from s4aqa.training.stacked import Stacked


def draw(tensors: dict[str, torch.Tensor], size: int, generator: torch.Generator) -> dict:
    """A batch of ``size`` rows (with replacement) of every tensor, by one seeded index."""
    n = next(iter(tensors.values())).shape[0]
    index = torch.randint(n, (min(size, n),), generator=generator, device=generator.device)
    return {k: v[index] for k, v in tensors.items()}


def make_optimizer(parameters, options):
    """AdamW with the options' learning rate and weight decay, and the optional cosine schedule."""
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
    scheduler = None
    if options.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(int(options.steps), 1))
    return optimizer, scheduler


def optimizer_step(optimizer, scheduler, loss) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


class Single:
    """A group of one: the method's own modules, stepped directly."""

    def __init__(self, method, labeled: FeatureSet, unlabeled: FeatureSet | None,
                 validation: FeatureSet | None) -> None:
        self.methods = [method]
        self.method = method
        self.labeled = method.labeled_tensors(labeled)
        self.unlabeled = method.unlabeled_tensors(unlabeled) if unlabeled is not None else None
        self.validation = ([validation] if validation is not None and len(validation)
                           else None)
        self.val_x = method.to_input(validation.features) if self.validation else None

    def parameters(self) -> list[torch.Tensor]:
        return [p for p in self.method.modules.parameters() if p.requires_grad]

    def named_parameters(self) -> dict[str, torch.Tensor]:
        return dict(self.method.modules.named_parameters())

    def train(self) -> None:
        self.method.modules.train()

    def loss(self, generator: torch.Generator, progress: float):
        """(loss to minimise, {part: (1,) values}) on a fresh batch."""
        options = self.method.options
        batch_l = draw(self.labeled, options.batch_labeled, generator)
        batch_u = (draw(self.unlabeled, options.batch_unlabeled, generator)
                   if self.unlabeled is not None else None)
        loss, parts = self.method.loss(batch_l, batch_u, progress)
        return loss, {k: v.detach().reshape(1) for k, v in parts.items()}

    def predict_validation(self) -> list[np.ndarray]:
        self.method.modules.eval()
        with torch.no_grad():
            return [self.method.predict_normalised(self.val_x).float().cpu().numpy()]

    def snapshot(self, member: int) -> Any:
        return copy.deepcopy(self.method.modules.state_dict())

    def state(self) -> dict[str, torch.Tensor]:
        return self.method.modules.state_dict()

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.method.modules.load_state_dict(tensors)

    def finish(self, snapshots: list[Any]) -> None:
        if snapshots[0] is not None:
            self.method.modules.load_state_dict(snapshots[0])
        self.method.modules.eval()


class Loop:
    """The state of one training: its group, optimiser, generator, step and hooks."""

    def __init__(self, group, hooks: Sequence[Hook], phase: str = "") -> None:
        first = group.methods[0]
        self.group = group
        self.options = first.options
        self.steps = int(self.options.steps)
        self.device = first.device
        self.phase = phase
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(first.init_seed() + 1)
        self.optimizer, self.scheduler = make_optimizer(group.parameters(), self.options)
        self.start = 0
        self.hooks = list(hooks)

    def run(self) -> None:
        try:
            for hook in self.hooks:
                hook.start(self)
            for step in range(self.start, self.steps):
                self.group.train()
                loss, parts = self.group.loss(self.generator, step / max(self.steps, 1))
                optimizer_step(self.optimizer, self.scheduler, loss)
                self.loss = loss.detach()
                for hook in self.hooks:
                    hook.after_step(self, step, parts)
            for hook in self.hooks:
                hook.end(self)
        finally:
            for hook in self.hooks:
                hook.close(self)


def train(methods: Sequence, labeled: Sequence[FeatureSet],
          unlabeled: Sequence[FeatureSet | None], validation: Sequence[FeatureSet | None], *,
          hooks: Sequence[Hook] = (), phase: str = "") -> None:
    """Train ``methods`` (built by their ``setup``) for ``options.steps`` steps, one per
    labeled / unlabeled / validation set; each ends as if trained alone. ``phase`` names a
    phase of a method that trains several times (resumable state belongs to one phase)."""
    if len({int(m.options.steps) for m in methods}) != 1:
        raise S4AQAError("grouped runs must share the number of steps")
    if len(methods) == 1:
        group = Single(methods[0], labeled[0], unlabeled[0], validation[0])
    else:
        group = Stacked(methods, labeled, unlabeled, validation)
    Loop(group, [MovingAverage(), Evaluation(), *hooks], phase).run()
