"""Saving and resuming a training: the ``Checkpoint`` hook and the state file's format.

The state file (``STATE_FILE``, safetensors) holds the weights, the optimiser and scheduler,
the random generators and every other hook's state (filed under the hook's class name), with
the run's key (its settings and a fingerprint of its data) and phase in the metadata: a run
resumes only from a state saved by itself, and ends with exactly the numbers of an
uninterrupted one. Ctrl-C is caught while it trains (``interrupt``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from s4aqa import io
from s4aqa.io import strip_prefix
from s4aqa.training.hooks import Hook
from s4aqa.training.interrupt import CtrlC

STATE_FILE = "train_state.safetensors"
# 2: hooks' states filed by their name (1: by their position in the loop's list)
STATE_FORMAT = "2"


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
        self.ctrl_c = CtrlC()

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
        self.ctrl_c.catch()
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
        if self.ctrl_c.pressed:  # Ctrl-C during the step: save it, then stop
            self.save(loop, step + 1)
            self.notify(f"interrupted at step {step + 1} of {loop.steps}{_phase(loop)}; the "
                        f"training state is saved in {self.path.parent}")
            self.ctrl_c.release()
            raise KeyboardInterrupt
        if (step + 1) % self.every == 0 and step != loop.steps - 1:
            self.save(loop, step + 1)

    def close(self, loop) -> None:
        self.ctrl_c.release()

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
