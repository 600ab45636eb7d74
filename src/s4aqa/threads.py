"""How many CPU threads a run computes with: torch's and numpy's BLAS, set together.

One thread is the default everywhere (``RunConfig.threads``): the models here are small, so
a second thread saves little on an idle machine, while on a machine running another job
torch's default (a thread per core) was ten times slower; reproduction workers run one thread
each, so a single run with one thread gives their numbers.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch
from threadpoolctl import threadpool_limits

from s4aqa.errors import S4AQAError


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def check_threads(threads: int) -> int:
    """``threads`` if it is between 1 and the cores of this machine, else the project's error."""
    threads, cores = int(threads), available_cores()
    if not 1 <= threads <= cores:
        raise S4AQAError(f"--threads {threads}: use 1 to {cores} (this machine's cores)")
    return threads


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` torch and BLAS threads; the previous counts come back."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(limits=int(threads)):
            yield
    finally:
        torch.set_num_threads(before)
