"""`extract --backend ray`: the videos sharded over Ray workers (actors), each holding one I3D
model on its device and decoding its own share of the videos with the pipeline of a local
extraction (``pipeline.iter_video_features``: decode-ahead threads, clips batched across videos).

Each worker streams its results back video by video (a Ray generator) and the caller, the
driver, writes them as they arrive, so the features and the one manifest are written by one
process exactly as in a local extraction. The model goes to the workers once through Ray's
object store: the nodes need no weights file. The workers read the videos at their paths, so
every node must see them there (a shared filesystem, or the same files at the same paths).

A worker asks for ``workers`` CPUs (its decoding threads; it runs the model on as many torch
threads) and ``gpus`` of a GPU; as many workers start as the cluster has room for, up to one per
video, and the videos are dealt out by size so that the shares take about as long. A worker
that dies (killed, out of memory, its node lost) is replaced by a new one for the videos it had
not finished, up to ``cluster.RETRIES`` times; after that its videos are reported as failed and
a later call extracts them (extraction resumes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from s4aqa.cluster import RETRIES, ray_session, require_gpus
from s4aqa.errors import S4AQAError
from s4aqa.features.pipeline import ClipRunner, VideoResult, iter_video_features
from s4aqa.features.segments import SegmentSpec


class VideoFeatureWorker:
    """One Ray worker (actor): one model on its device; features of the videos it is given."""

    def __init__(self, model: torch.nn.Module, device: str, precision: str, threads: int) -> None:
        torch.set_num_threads(threads)
        self.model, self.device, self.precision = model, device, precision

    def features(self, videos: Sequence[tuple[str, str]], segments: str,
                 options: dict[str, Any]) -> Iterator[VideoResult]:
        runner = ClipRunner(self.model, self.device, self.precision)  # checks the device here
        # a plain loop, not `yield from`: Ray may send() into this generator, which the inner
        # pipeline's own `yield from <list>` cannot take
        for result in iter_video_features([(vid, Path(path)) for vid, path in videos], segments,
                                          runner, **options):
            yield result


@dataclass
class _Share:
    """The videos one worker has yet to finish, and how many workers it has lost."""

    videos: dict[str, Path]
    lost: int = 0
    actor: Any = None
    stream: Any = field(default=None, repr=False)


def deal(videos: Sequence[tuple[str, Path]], shares: int) -> list[dict[str, Path]]:
    """``videos`` dealt into ``shares`` parts of about equal total file size, largest first."""
    parts: list[dict[str, Path]] = [{} for _ in range(max(1, shares))]
    sizes = [0] * len(parts)

    def size(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:
            return 0

    for vid, path in sorted(videos, key=lambda item: -size(item[1])):
        smallest = sizes.index(min(sizes))
        parts[smallest][vid] = path
        sizes[smallest] += size(path)
    return [part for part in parts if part]


def worker_count(resources: dict, videos: int, cpus: int, gpus: float) -> int:
    """How many workers of ``cpus`` CPUs and ``gpus`` GPUs the cluster's ``resources`` hold."""
    fit = int(resources.get("CPU", 0) // cpus)
    if gpus:
        fit = min(fit, int(math.floor(resources.get("GPU", 0) / gpus + 1e-9)))
    if fit < 1:
        raise S4AQAError(f"--workers {cpus}: each Ray worker asks for {cpus} CPUs and the "
                         f"cluster has {resources.get('CPU', 0):g}; use fewer --workers")
    return max(1, min(fit, videos))


def ray_video_features(videos: Sequence[tuple[str, Path]], segments: SegmentSpec | str,
                       model: torch.nn.Module, *, device: str = "cpu", precision: str = "fp32",
                       batch_size: int = 8, workers: int = 2, resize: int, crop: int,
                       address: str | None = None, gpus: float = 0.0,
                       say: Callable[[str], None] | None = None) -> Iterator[VideoResult]:
    """Features of ``videos`` (``(id, path)`` pairs) computed on Ray workers; yields a
    :class:`VideoResult` per video as it arrives (see the module docstring). Close the
    generator to stop the workers (and a local Ray instance started here)."""
    if not videos:
        return
    cpus = max(1, int(workers))
    options = {"batch_size": batch_size, "workers": cpus, "resize": resize, "crop": crop}
    with ray_session("--backend ray", address, None, say=say) as ray:
        require_gpus(ray, gpus, "--gpus-per-worker")
        count = worker_count(ray.cluster_resources(), len(videos), cpus, gpus)
        remote = ray.remote(VideoFeatureWorker).options(num_cpus=cpus, num_gpus=gpus)
        shipped = ray.put(model)
        streams: dict[Any, _Share] = {}

        def start(share: _Share) -> None:
            share.actor = remote.remote(shipped, device, precision, cpus)
            share.stream = share.actor.features.remote(
                [(vid, str(path)) for vid, path in share.videos.items()], str(segments), options)
            streams[share.stream] = share

        for part in deal(videos, count):
            start(_Share(part))
        try:
            while streams:
                ready, _ = ray.wait(list(streams), num_returns=1)
                share = streams[ready[0]]
                try:
                    result = ray.get(next(share.stream))
                except StopIteration:
                    del streams[share.stream]
                    ray.kill(share.actor)
                    continue
                except ray.exceptions.RayTaskError as exc:  # raised by this package's code
                    if isinstance(exc.cause, S4AQAError):
                        raise S4AQAError(str(exc.cause)) from None
                    raise
                except ray.exceptions.RayError as exc:  # the worker died: a new one goes on
                    del streams[share.stream]
                    share.lost += 1
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    if share.lost <= RETRIES:
                        if say is not None:
                            say(f"a Ray worker was lost ({type(exc).__name__}); its "
                                f"{len(share.videos)} unfinished videos go to a new one")
                        start(share)
                        continue
                    for vid, path in share.videos.items():
                        yield VideoResult(vid, path, error=f"{path}: its Ray worker was lost "
                                          f"{share.lost} times ({reason}); run again to extract it")
                    continue
                if share.videos.pop(result.id, None) is not None:
                    yield result
        finally:
            for share in streams.values():  # stopped early: free the cluster
                ray.kill(share.actor)
