"""What the training loop does around its steps, one hook each.

A hook may act when training starts, after every step and when it ends, and may carry state
that a saved training state must hold (``state`` / ``load``). ``MovingAverage`` and
``Evaluation`` (here) are part of every training; the run layer adds ``resume.Checkpoint``
(save and resume) and ``progress.Progress`` (a progress bar on a terminal).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from s4aqa.io import strip_prefix
from s4aqa.training.metrics import spearman

class Hook:
    """Something done around the steps of the loop (every method optional)."""

    def start(self, loop) -> None:
        pass

    def after_step(self, loop, step: int, parts: dict[str, torch.Tensor]) -> None:
        pass

    def end(self, loop) -> None:
        pass

    def close(self, loop) -> None:
        """After training, whether it ended, failed or was interrupted."""

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON values) a saved training state keeps of this hook."""
        return {}, {}

    def load(self, tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
        pass


@torch.no_grad()
def update_moving_average(parameters: dict[str, torch.Tensor], average) -> None:
    """copy <- decay * copy + (1 - decay) * tracked, for ``method.moving_average()``'s pairs
    (element-wise, so it serves stacked weights of grouped models as well)."""
    if average is None:
        return
    pairs, decay = average
    torch._foreach_lerp_([parameters[c] for c in pairs], [parameters[t] for t in pairs.values()],
                         1.0 - decay)


class MovingAverage(Hook):
    """Moves the method's moving-average copy of its weights (a teacher) after every step."""

    def start(self, loop) -> None:
        self.parameters = loop.group.named_parameters()
        self.average = loop.group.methods[0].moving_average()

    def after_step(self, loop, step, parts) -> None:
        update_moving_average(self.parameters, self.average)


class Evaluation(Hook):
    """Every ``eval_every`` steps and at the last: the log (mean of each loss part since the
    last record) and, with a validation slice, its Spearman; ``select=best`` keeps the weights
    of the best one and restores them at the end, ``select=last`` the last step's."""

    def start(self, loop) -> None:
        count = len(loop.group.methods)
        self.running: dict[str, torch.Tensor] = {}
        self.since = 0
        self.histories: list[list[dict]] = [[] for _ in range(count)]
        self.best_score = [-math.inf] * count
        self.best: list[Any] = [None] * count
        self.select = loop.schedule.select == "best" and loop.group.validation is not None

    def after_step(self, loop, step, parts) -> None:
        for name, value in parts.items():
            self.running[name] = self.running.get(name, 0.0) + value
        self.since += 1
        last = step == loop.steps - 1
        if (step + 1) % max(int(loop.schedule.eval_every), 1) and not last:
            return
        group = loop.group
        records = [{"step": step + 1, **{k: float(v[i]) / self.since
                                         for k, v in self.running.items()}}
                   for i in range(len(group.methods))]
        self.running, self.since = {}, 0
        if group.validation is not None:
            predictions = group.predict_validation()
            for i, (record, validation) in enumerate(zip(records, group.validation)):
                rho = spearman(predictions[i], validation.scores)
                record["val_spearman"] = rho
                score = 0.0 if math.isnan(rho) else rho  # undefined: chance, as rank_agreement
                if self.select and score > self.best_score[i]:
                    self.best_score[i] = score
                    self.best[i] = group.snapshot(i)
        for history, record in zip(self.histories, records):
            history.append(record)

    def end(self, loop) -> None:
        loop.group.finish(self.best if self.select else [None] * len(self.best))
        for method, history in zip(loop.group.methods, self.histories):
            method.history = history

    def state(self):
        tensors = {f"running/{k}": v for k, v in self.running.items()}
        for i, snapshot in enumerate(self.best):
            if snapshot is not None:
                tensors.update({f"best/{i}/{k}": v for k, v in snapshot.items()})
        return tensors, {"since": self.since, "histories": self.histories,
                         "best_score": [repr(s) for s in self.best_score]}

    def load(self, tensors, values) -> None:
        self.running = strip_prefix(tensors, "running/")
        self.since = int(values["since"])
        self.histories = values["histories"]
        self.best_score = [float(s) for s in values["best_score"]]
        for i in range(len(self.best)):
            self.best[i] = strip_prefix(tensors, f"best/{i}/") or None
