"""What the training loop does around its steps, one hook each.

A hook may act when training starts, after every step and when it ends, and may carry state
that a saved training state must hold (``state`` / ``load``). ``MovingAverage`` and
``Evaluation`` are part of every training; the run layer adds ``Checkpoint`` (save and resume)
and ``Progress`` (a progress bar on a terminal).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from tqdm import tqdm

from s4aqa import io
from s4aqa.io import strip_prefix
from s4aqa.training.metrics import rank_agreement, spearman

STATE_FILE = "train_state.safetensors"
# 2: hooks' states filed by their name (1: by their position in the loop's list)
STATE_FORMAT = "2"


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
                record["val_spearman"] = spearman(predictions[i], validation.scores)
                score = rank_agreement(predictions[i], validation.scores)  # undefined: 0
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


# what each part of a resume key covers, for the line that says why a state was not used
_KEY_PARTS = {"data": "the data changed since it was saved (ids, scores, splits, groups or "
                      "features differ)",
              "settings": "it was saved by a run with other settings"}


class Checkpoint(Hook):
    """Saves the full training state (weights, optimiser, scheduler, random generators, the
    other hooks' state) into ``directory`` every ``every`` steps, and resumes from it when it
    was saved under the same ``key`` (the run's settings and data) and phase: a resumed run
    ends with exactly the numbers of an uninterrupted one. ``notify`` is told in one line why
    a saved state was not used."""

    def __init__(self, directory: str | Path, key: dict[str, str], every: int = 20,
                 notify: Callable[[str], None] | None = None) -> None:
        self.path = Path(directory) / STATE_FILE
        self.key = dict(key)
        self.every = max(int(every), 1)
        self.notify = notify or (lambda text: None)
        self.interrupted, self._previous = False, None

    def _key(self, loop) -> dict[str, str]:
        return {**self.key, **({"phase": loop.phase} if loop.phase else {})}

    def _others(self, loop) -> dict[str, Hook]:
        """The loop's other hooks by name (the class name; a second of a kind gets #2 ...)."""
        named: dict[str, Hook] = {}
        for hook in loop.hooks:
            if hook is not self:
                name = type(hook).__name__
                named[name if name not in named else f"{name}#{len(named)}"] = hook
        return named

    def start(self, loop) -> None:
        self._catch_interrupt()
        if not self.path.is_file():
            return
        try:
            with safe_open(str(self.path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(self.path))
        except (SafetensorError, OSError, ValueError):
            self.notify(f"not resuming from {self.path}: the file is damaged; training from "
                        "the start")
            return
        if metadata.get("format") != STATE_FORMAT:
            self.notify(f"not resuming from {self.path}: it was saved by an older s4aqa "
                        f"(state format {metadata.get('format', '1')}); training from the start")
            return
        saved = strip_prefix(metadata, "key/")
        reason = _stale(saved, self._key(loop))
        if reason is not None:
            if reason:
                self.notify(f"not resuming from {self.path}: {reason}; training from the start")
            return
        self._restore(loop, tensors, metadata)

    def after_step(self, loop, step, parts) -> None:
        if self.interrupted:  # Ctrl-C during the step: save it, then stop
            self.save(loop, step + 1)
            self.notify(f"interrupted at step {step + 1} of {loop.steps}{_phase(loop)}; the "
                        f"training state is saved in {self.path.parent}")
            self._release()
            raise KeyboardInterrupt
        if (step + 1) % self.every == 0 and step != loop.steps - 1:
            self.save(loop, step + 1)

    def close(self, loop) -> None:
        self._release()

    def _catch_interrupt(self) -> None:
        """The first Ctrl-C stops training after the step in progress, saved; a second one
        stops at once. Only where Ctrl-C would stop the process (the main thread, Python's
        own handler in force: a process started to ignore it, as under nohup, still does)."""
        self.interrupted, self._previous = False, None
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            return

        def handler(signum, frame):
            if self.interrupted:
                self._release()
                raise KeyboardInterrupt
            self.interrupted = True

        self._previous = signal.signal(signal.SIGINT, handler)

    def _release(self) -> None:
        if getattr(self, "_previous", None) is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def save(self, loop, step: int) -> None:
        tensors = {f"model/{k}": v for k, v in loop.group.state().items()}
        for index, values in loop.optimizer.state_dict()["state"].items():
            for name, value in values.items():
                tensors[f"optim/{index}/{name}"] = torch.as_tensor(value)
        tensors["rng/global"] = torch.get_rng_state()
        tensors["rng/generator"] = loop.generator.get_state()
        if loop.device.type == "cuda":
            tensors["rng/cuda"] = torch.cuda.get_rng_state(loop.device)
        values = {}
        for name, hook in self._others(loop).items():
            hook_tensors, hook_values = hook.state()
            tensors.update({f"hook/{name}/{k}": v for k, v in hook_tensors.items()})
            values[name] = hook_values
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        metadata = {
            "format": STATE_FORMAT,
            **{f"key/{name}": value for name, value in self._key(loop).items()},
            "step": str(step),
            "hooks": json.dumps(values),
            "scheduler": json.dumps(loop.scheduler.state_dict() if loop.scheduler else None),
            # a scheduler changes the groups' learning rates in place: keep them too
            "lrs": json.dumps([group["lr"] for group in loop.optimizer.param_groups]),
        }
        io.write_bytes(self.path, save(tensors, metadata))

    def _restore(self, loop, tensors, metadata) -> None:
        device = loop.device
        loop.group.load_state(strip_prefix(tensors, "model/"))
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, index, name = key.split("/", 2)
                state.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
        optim_state = loop.optimizer.state_dict()
        optim_state["state"] = state
        for group, lr in zip(optim_state["param_groups"], json.loads(metadata["lrs"])):
            group["lr"] = lr
        loop.optimizer.load_state_dict(optim_state)
        if loop.scheduler is not None:
            loop.scheduler.load_state_dict(json.loads(metadata["scheduler"]))
        torch.set_rng_state(tensors["rng/global"])
        loop.generator.set_state(tensors["rng/generator"])
        if "rng/cuda" in tensors and device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng/cuda"], device)
        values = json.loads(metadata["hooks"])
        for name, hook in self._others(loop).items():
            hook.load({k: v.to(device) for k, v in strip_prefix(tensors, f"hook/{name}/").items()},
                      values.get(name, {}))
        loop.start = int(metadata["step"])
        self.notify(f"resuming from step {loop.start} of {loop.steps}{_phase(loop)} "
                    f"({self.path})")


def _phase(loop) -> str:
    return f" ({loop.phase})" if loop.phase else ""


def _stale(saved: dict[str, str], key: dict[str, str]) -> str | None:
    """Why a state saved under ``saved`` does not belong to a run of ``key`` (None: it does;
    '' when it belongs to another phase of the same run, which is not worth a word)."""
    for part in _KEY_PARTS:
        if saved.get(part) != key.get(part):
            return _KEY_PARTS[part]
    return None if saved == key else ""


class Progress(Hook):
    """A progress bar (steps, current loss, time left) on a terminal; in a log (stderr not a
    terminal, ``enabled`` None) a line when each phase starts and ends; nothing when
    ``enabled`` is False."""

    def __init__(self, desc: str = "train", enabled: bool | None = None) -> None:
        self.desc = desc
        self.enabled = enabled
        self.bar = None
        self.log = False

    def start(self, loop) -> None:
        if self.enabled is False:
            return
        desc = f"{self.desc} {loop.phase}".strip()
        self.log = self.enabled is None and not sys.stderr.isatty()
        if self.log:
            self.started = time.monotonic()
            print(f"{desc}: training steps {loop.start + 1}..{loop.steps}", file=sys.stderr,
                  flush=True)
            return
        self.bar = tqdm(total=loop.steps, initial=loop.start, desc=desc, unit="step",
                        file=sys.stderr, dynamic_ncols=True, leave=False,
                        disable=None if self.enabled is None else not self.enabled)

    def after_step(self, loop, step, parts) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if (step + 1) % 10 == 0 or step == loop.steps - 1:
            loss = float(loop.loss) / len(loop.group.methods)  # a group's loss is a sum
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=step == loop.steps - 1)

    def end(self, loop) -> None:
        if self.log:
            last = getattr(loop, "loss", None)
            loss = "" if last is None else f" (last loss {float(last) / len(loop.group.methods):.4f})"
            print(f"{f'{self.desc} {loop.phase}'.strip()}: done in "
                  f"{time.monotonic() - self.started:.1f} s{loss}", file=sys.stderr, flush=True)

    def close(self, loop) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
