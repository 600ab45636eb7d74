"""The one training loop of every deep method, its schedule and its trainer.

A group of networks trains in lock step; a single network is a group of one. Features and
scores live on the device for the whole run and batches are drawn by index with a seeded
generator: no DataLoader, no per-step host-to-device copies, and no synchronisation inside the
loop except at evaluation points. Features stay in the precision they are held in (float16
stays float16) and each drawn batch is standardised to float32 (``network.standardise``):
the values a network reads are those of a float32 copy of the whole set, which is never made. What is done around the steps is a hook: the loop adds the
moving-average teacher and evaluation (with model selection and the log) itself; a
``Trainer`` is given the others (saving and resuming state, progress) as arguments.

``Schedule`` is how long and how fast a network trains; the loop reads it, never a method's
options. A group of one steps its network directly (``Single``); a larger group stacks the
weights and steps them as one vectorised model (``stacked.Stacked``).

What the loop needs of a network (``methods.network.Network``): ``modules`` (built),
``device``, ``init_seed()``, ``labeled_tensors`` / ``unlabeled_tensors`` / ``standardise`` /
``to_input``,
``loss(labeled, unlabeled, progress)``, ``forward_normalised`` and ``moving_average()``; it
sets ``history``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from s4aqa.data.featureset import FeatureSet
from s4aqa.errors import S4AQAError
from s4aqa.training.hooks import Evaluation, Hook, MovingAverage
from s4aqa.training.stacked import Stacked, can_group


@contextlib.contextmanager
def own_random_state(device: torch.device):
    """Training draws from torch's global generators (initialisation, dropout, masks) after
    seeding them from the run's seed; inside this block those draws leave the caller's own
    random stream as it was (its state is restored after)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        yield


def draw(tensors: dict[str, torch.Tensor], size: int, generator: torch.Generator) -> dict:
    """A batch of ``size`` rows (with replacement) of every tensor, by one seeded index."""
    n = next(iter(tensors.values())).shape[0]
    index = torch.randint(n, (min(size, n),), generator=generator, device=generator.device)
    return {k: v[index] for k, v in tensors.items()}


@dataclass(frozen=True)
class Schedule:
    """How a network trains: steps, AdamW's learning rate (constant or cosine) and weight
    decay, batch sizes, how often it is evaluated, and which step it keeps (``select``: the
    last, or the best validation Spearman)."""

    steps: int = 200
    lr: float = 3e-4
    weight_decay: float = 1e-2
    lr_schedule: str = "constant"
    batch_labeled: int = 16
    batch_unlabeled: int = 16
    eval_every: int = 20
    select: str = "last"

    @classmethod
    def of(cls, options: Any) -> "Schedule":
        """The schedule an options object holds (fields of the same names; ``schedule`` is
        the learning-rate schedule)."""
        values = {f.name: getattr(options, f.name) for f in dataclasses.fields(cls)
                  if hasattr(options, f.name)}
        if hasattr(options, "schedule"):
            values["lr_schedule"] = options.schedule
        return cls(**values)


def make_optimizer(parameters, schedule: Schedule):
    """AdamW with the schedule's learning rate and weight decay, and the optional cosine."""
    optimizer = torch.optim.AdamW(parameters, lr=schedule.lr, weight_decay=schedule.weight_decay)
    scheduler = None
    if schedule.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(int(schedule.steps), 1))
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

    def loss(self, schedule: Schedule, generator: torch.Generator, progress: float):
        """(loss to minimise, {part: (1,) values}) on a fresh batch."""
        batch_l = self.standardised(draw(self.labeled, schedule.batch_labeled, generator))
        batch_u = (self.standardised(draw(self.unlabeled, schedule.batch_unlabeled, generator))
                   if self.unlabeled is not None else None)
        loss, parts = self.method.loss(batch_l, batch_u, progress)
        return loss, {k: v.detach().reshape(1) for k, v in parts.items()}

    def standardised(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A drawn batch with its features (``x``, as stored) as the network reads them."""
        return {**batch, "x": self.method.standardise(batch["x"])}

    def predict_validation(self) -> list[np.ndarray]:
        self.method.modules.eval()
        with torch.no_grad():
            return [self.method.forward_normalised(self.val_x).float().cpu().numpy()]

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

    def __init__(self, group, schedule: Schedule, hooks: Sequence[Hook], phase: str = "") -> None:
        first = group.methods[0]
        self.group = group
        self.schedule = schedule
        self.steps = int(schedule.steps)
        self.device = first.device
        self.phase = phase
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(first.init_seed() + 1)
        self.optimizer, self.scheduler = make_optimizer(group.parameters(), schedule)
        self.start = 0
        self.hooks = list(hooks)

    def run(self) -> None:
        try:
            for hook in self.hooks:
                hook.start(self)
            for step in range(self.start, self.steps):
                self.group.train()
                loss, parts = self.group.loss(self.schedule, self.generator,
                                              step / max(self.steps, 1))
                optimizer_step(self.optimizer, self.scheduler, loss)
                self.loss = loss.detach()
                for hook in self.hooks:
                    hook.after_step(self, step, parts)
            for hook in self.hooks:
                hook.end(self)
        finally:
            for hook in self.hooks:
                hook.close(self)


class Trainer:
    """Trains networks with a ``schedule`` and ``hooks`` (besides the loop's own): each alone,
    or all as one stacked model (``stack``: always, never, or "auto": on a GPU, where stacking
    saves kernel launches; on a CPU thread it saves nothing). Every network ends as if trained
    alone. ``schedule`` None: the first network's own (``network.schedule``)."""

    def __init__(self, hooks: Sequence[Hook] = (), schedule: Schedule | None = None,
                 stack: bool | str = "auto") -> None:
        self.hooks = list(hooks)
        self.schedule = schedule
        self.stack = stack

    def train(self, networks: Sequence, labeled: Sequence[FeatureSet],
              unlabeled: Sequence[FeatureSet | None], validation: Sequence[FeatureSet | None],
              phase: str = "") -> None:
        """Train ``networks`` (built), one labeled / unlabeled / validation set each.
        ``phase`` names a phase of a method that trains several times (resumable state belongs
        to one phase); a network trained alone among several is also named by its index."""
        networks = list(networks)
        schedule = self.schedule or networks[0].schedule
        stack = (self.stack is True or (self.stack == "auto" and len(networks) > 1
                                        and networks[0].device.type == "cuda"
                                        and can_group(networks)))
        if stack and len(networks) > 1:
            if any(n.schedule != schedule for n in networks):
                raise S4AQAError("grouped runs must share their schedule (steps, lr, batches)")
            group = Stacked(networks, labeled, unlabeled, validation)
            Loop(group, schedule, [MovingAverage(), Evaluation(), *self.hooks], phase).run()
            return
        for k, network in enumerate(networks):
            name = " ".join(p for p in (phase, f"member {network.member_index}"
                                        if len(networks) > 1 else "") if p)
            group = Single(network, labeled[k], unlabeled[k], validation[k])
            Loop(group, schedule, [MovingAverage(), Evaluation(), *self.hooks], name).run()
