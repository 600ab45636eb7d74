"""Ctrl-C during training: the first asks the training to stop after the step in progress
(which is then saved), a second stops at once.

Only where Ctrl-C would stop the process (the main thread, Python's own handler in force): a
process started to ignore it, as under nohup or as a reproduction's worker, still does.
"""

from __future__ import annotations

import signal
import threading


class CtrlC:
    """Catches Ctrl-C between ``catch`` and ``release``; ``pressed`` says whether it came."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous = None

    def catch(self) -> None:
        self.pressed, self._previous = False, None
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            return

        def handler(signum, frame):
            if self.pressed:  # the second: at once
                self.release()
                raise KeyboardInterrupt
            self.pressed = True

        self._previous = signal.signal(signal.SIGINT, handler)

    def release(self) -> None:
        """Python's own handler back (a Ctrl-C from now on stops at once)."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
