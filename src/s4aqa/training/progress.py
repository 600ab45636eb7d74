"""A training's progress: a bar on a terminal, a line per phase in a log."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from s4aqa.training.hooks import Hook


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
