"""Ray, the optional engine behind ``--backend ray`` of `reproduce` and `extract`.

Ray is an extra (``pip install -e '.[ray]'``), imported only here and only when asked for, so
the core install stays lean. :func:`ray_session` gives a Ray to submit to: the session already
running in this process (a test, a notebook: left running), the cluster at ``address``, or a
local instance started here and stopped on leaving.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Iterator

from s4aqa.errors import S4AQAError

EXTRA = "pip install -e '.[ray]'"
# Ray retries a task whose worker process died (killed, out of memory, its node lost) this many times
RETRIES = 3


def import_ray(flag: str):
    """The ``ray`` module, or a one-line S4AQAError naming the extra that ``flag`` needs."""
    try:
        import ray
    except ImportError:
        raise S4AQAError(f"{flag} needs Ray: {EXTRA}") from None
    return ray


def check_gpus(flag: str, gpus: float) -> float:
    """A GPU share per task or actor as Ray takes it: a fraction up to 1 (several share one
    GPU), or a whole number of GPUs."""
    gpus = float(gpus)
    if gpus < 0 or (gpus > 1 and not gpus.is_integer()):
        raise S4AQAError(f"{flag} {gpus:g}: use a fraction of one GPU (e.g. 0.25) or a whole "
                         "number of GPUs")
    return gpus


def check_device(device: str, gpus: float, flag: str) -> None:
    """Runs on Ray see only the GPUs Ray gives them: a CUDA device needs a GPU share."""
    cuda = str(device).startswith("cuda")
    if cuda and not gpus:
        raise S4AQAError(f"--device {device} with --backend ray needs {flag} (a GPU share for "
                         "each, e.g. 1 or 0.25)")
    if gpus and not cuda:
        raise S4AQAError(f"{flag} {gpus:g} needs --device cuda")


@contextlib.contextmanager
def ray_session(flag: str, address: str | None = None, num_cpus: int | None = None,
                say=None) -> Iterator:
    """Ray, connected for the body of the ``with``.

    ``address``: a running cluster (``ray start --head`` printed it; ``auto`` finds one on this
    machine). None: a local instance with ``num_cpus`` CPUs (None: every core of this machine),
    started here and shut down on leaving. ``say``: told in one line what was connected to.
    """
    ray = import_ray(flag)
    if ray.is_initialized():  # the caller's own session: use it, leave it running
        yield ray
        return
    started = time.perf_counter()
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            # worker_niceness 0: Ray runs its workers at nice 15, and on a machine shared with
            # other work they then get a fraction of the CPU the local backend's workers get
            ray.init(num_cpus=int(num_cpus or os.cpu_count() or 1), include_dashboard=False,
                     logging_level=logging.WARNING, _system_config={"worker_niceness": 0})
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        where = f"--address {address}" if address else "a local Ray instance"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise S4AQAError(f"{where}: Ray did not start or connect ({reason})") from None
    try:
        if say is not None:
            resources = ray.cluster_resources()
            say(f"Ray {'cluster at ' + address if address else 'local instance'}: "
                f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs "
                f"(ready in {time.perf_counter() - started:.1f} s)")
        yield ray
    finally:
        ray.shutdown()


def require_gpus(ray, gpus: float, flag: str) -> None:
    """Refuse a GPU share the cluster cannot give, instead of waiting forever for it."""
    total = float(ray.cluster_resources().get("GPU", 0))
    if gpus and total < gpus:
        raise S4AQAError(f"{flag} {gpus:g}: the Ray cluster has {total:g} GPUs")
