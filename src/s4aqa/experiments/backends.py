"""Where the runs of a reproduction run: the backends, selected by name (``--backend``).

``local``: this process (one worker) or a pool of spawn worker processes (``--workers N``).
Every run saves its record in the cache itself as it finishes.

``ray``: every job (a run, or a seed group with ``--group-seeds``) is a Ray task asking for one
CPU, or ``--gpus-per-run`` of a GPU, on a local Ray instance (``--workers`` caps its CPUs) or
the cluster at ``--address``. The datasets the reproduction read are put once in Ray's object
store and every worker process takes them from there, once (no node reads the dataset from
disk). A task hands its records back and this process, the driver, saves them in the cache as
each task finishes: the nodes need no shared disk, an interruption loses only the runs in
flight, and a second call is served from the same cache as the local backend's. A task whose
worker process dies (killed, out of memory, its node lost) is retried by Ray up to
``cluster.RETRIES`` times; one that still cannot finish is reported after the others finished.

Either way a run computes with the threads its config says (``RunConfig.threads``, one by
default: ``s4aqa.threads``), so the same runs give the same numbers on both.
"""

from __future__ import annotations

import copy
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Mapping, Sequence

from s4aqa.cluster import RETRIES, check_gpus, import_ray, ray_session, require_gpus
from s4aqa.errors import S4AQAError
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments import execute

BACKENDS = ("local", "ray")
Job = Sequence[Mapping[str, Any]]  # the specs of one job, as dicts: a run or a seed group
Finished = Callable[[list[dict[str, Any]]], None]  # told the summaries of each finished job


def make_backend(name: str, workers: int | None = None, address: str | None = None,
                 gpus_per_run: float = 0.0) -> "LocalBackend | RayBackend":
    """The backend called ``name``, its flags checked (before any data is read)."""
    if name == "local":
        if address or gpus_per_run:
            raise S4AQAError("--address and --gpus-per-run need --backend ray")
        return LocalBackend(1 if workers is None else workers)
    if name == "ray":
        return RayBackend(workers, address, gpus_per_run)
    raise S4AQAError(f"unknown backend '{name}'; use one of {', '.join(BACKENDS)}")


def _check_workers(workers: int) -> int:
    if int(workers) < 1:
        raise S4AQAError(f"--workers {workers}: use at least one worker")
    return int(workers)


class LocalBackend:
    """Runs in this process or in ``workers`` spawn worker processes (each run sets its own
    thread count)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        self.workers = _check_workers(workers)

    def describe(self, jobs: int) -> str:
        return f"{max(1, min(self.workers, jobs))} worker(s)"

    def run(self, jobs: Sequence[Job], directory: str, finished: Finished,
            say: Callable[[str], None] | None = None) -> None:
        workers = max(1, min(self.workers, len(jobs)))
        if workers == 1:
            for job in jobs:
                finished(execute.execute_group(job, directory))
            return
        context = multiprocessing.get_context("spawn")
        # Ctrl-C is this process's to handle (the workers ignore it, whether it reaches the
        # process group or this process alone): it stops the workers at once, so what is
        # saved is what was finished, and nothing is left running
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=ignore_interrupts)
        try:
            futures = [pool.submit(execute.execute_group, job, directory) for job in jobs]
            for future in as_completed(futures):
                finished(future.result())
        except KeyboardInterrupt:
            stop_workers(pool)
            raise
        except BrokenProcessPool:
            raise S4AQAError(
                "a worker process died (out of memory?); the finished runs are saved: run "
                "the same command again to resume, with fewer --workers if it repeats"
            ) from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def ignore_interrupts() -> None:
    """A worker process's initializer: Ctrl-C is the main process's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """End ``pool``'s worker processes now: the runs in flight are lost (they rerun on the
    next call), the ones finished are saved. The executor has no public way to end its
    workers before Python 3.14 (``terminate_workers``), hence its process table."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # gone at shutdown
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
    # the executor sees its workers gone and closes its queues (nothing left to leak)
    pool.shutdown(wait=True, cancel_futures=True)


class RayBackend:
    """Every job a Ray task; the driver saves the records (see the module docstring)."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None,
                 gpus_per_run: float = 0.0) -> None:
        import_ray("--backend ray")
        if workers is not None:
            if address:
                raise S4AQAError("--workers caps the CPUs of a local Ray instance; on the "
                                 "cluster at --address its resources decide: leave --workers out")
            workers = _check_workers(workers)
        self.workers = workers
        self.address = address
        self.gpus_per_run = check_gpus("--gpus-per-run", gpus_per_run)

    def describe(self, jobs: int) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "Ray"
        share = f"{self.gpus_per_run:g} GPU" if self.gpus_per_run else "1 CPU"
        return f"{where} ({jobs} task(s), {share} each)"

    def run(self, jobs: Sequence[Job], directory: str, finished: Finished,
            say: Callable[[str], None] | None = None) -> None:
        cache = run_cache.RunCache(directory)
        lost: list[str] = []
        with ray_session("--backend ray", self.address, self.workers, say=say) as ray:
            require_gpus(ray, self.gpus_per_run, "--gpus-per-run")
            datasets = ray.put(execute.datasets_read())
            task = ray.remote(ray_job).options(num_cpus=1, num_gpus=self.gpus_per_run,
                                               max_retries=RETRIES, retry_exceptions=False)
            # the reference goes in a list so that Ray hands it over as is: the worker fetches
            # the datasets once per process, not once per task
            pending = {task.remote(job, [datasets]): job for job in jobs}
            try:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        job = pending.pop(ref)
                        try:
                            summaries = ray.get(ref)
                        except ray.exceptions.RayError as exc:
                            lost.append(f"{len(job)} run(s): {_reason(exc)}")
                            continue
                        finished([execute.save_outcome(s, cache) for s in summaries])
            finally:
                for ref in pending:  # interrupted: free the cluster (a no-op once shut down)
                    ray.cancel(ref)
        if lost:
            raise S4AQAError(
                f"{len(lost)} Ray task(s) did not finish after {RETRIES} retries ({lost[0]}); "
                "the finished runs are saved: run the same command again to resume")


def _reason(exc: BaseException) -> str:
    """One line for a Ray error: the exception raised in the task, else Ray's own message."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def ray_job(job: Job, datasets: list) -> list[dict[str, Any]]:
    """One job as a Ray task: the datasets from the object store, and the
    records handed back to the driver (``execute.save_outcome``) instead of written here."""
    import ray

    [ref] = datasets
    # a copy: arrays read from the object store are read-only, and a run may write its tensors
    execute.use_datasets(ref.hex(), lambda: copy.deepcopy(ray.get(ref)))
    return execute.execute_group(job, None)
