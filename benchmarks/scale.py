"""How `s4aqa train` scales with the unlabeled pool, at a fixed number of labeled videos.

Generates MTL-AQA-shaped data (T = 10 segments, D = 1024, float16 on disk) as a `folder`
dataset (scores.csv with id,score,split and one <id>.npy per video): 100 labeled videos, an
unlabeled pool of each size, and 200 test videos. For each method it runs `s4aqa train` end to
end in a child process (reading the data, training, evaluating, writing the run folder) and
prints its wall seconds and peak RSS, then the ratio of the largest size's time to the
previous size's. It also prints the approximate neighbourhood graph's recall against the exact
graph (the 10 nearest neighbours of 1,000 sampled videos, by cosine similarity of the
standardised pooled features, as lap_rls and the partner build it).

    python benchmarks/scale.py [--sizes 1000,10000,100000] [--methods lap_rls,aa]
                               [--root /tmp/s4aqa_scale] [--keep] [--no-recall]
                               [--layout protocol|archive]

``--layout protocol`` (the default) scores every training video and draws the 100 labeled ones
with ``--label-ratio``, as the paper's protocols simulate few labels; ``--layout archive`` is a
practitioner's archive: scores.csv scores the 100 labeled videos (and the test videos), half of
the pool has a line with an empty score and the other half no line at all, and `train` runs
without ``--label-ratio`` (the labeled videos are the scores given).

The generated folders are deleted afterwards unless --keep is given; each size needs about
size x 20 KB of disk. The features: a video's segments are its skill along a few directions,
a per-video look drawn from 32 latent factors, and noise; the score is the skill plus judging
noise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

METHODS = ("aa", "svr", "lap_rls", "aa+graph", "s4aqa", "pseudo_label", "vat", "s4l", "coreg")
LABELED, TEST, SEGMENTS, DIM = 100, 200, 10, 1024


def generate(root: Path, pool: int, seed: int = 0, layout: str = "protocol") -> Path:
    """The `folder` dataset of one size: LABELED + pool training videos and TEST test ones."""
    folder = root / f"{layout}{pool}"
    if (folder / "scores.csv").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = LABELED + pool + TEST
    directions = np.linalg.qr(rng.standard_normal((DIM, 4)))[0].T  # (4, D)
    mixing = rng.standard_normal((32, DIM)) / np.sqrt(32)
    rows = ["id,score,split"]
    block = 2000
    for start in range(0, n, block):
        count = min(block, n - start)
        skill = rng.standard_normal(count)
        look = rng.standard_normal((count, 32)) @ mixing  # (count, D)
        quality = 0.9 * skill[:, None] + 0.4 * rng.standard_normal((count, SEGMENTS))
        x = (quality[..., None] * directions[np.arange(SEGMENTS) % 4][None]
             + look[:, None] + 0.5 * rng.standard_normal((count, SEGMENTS, DIM)))
        scores = 60 + 15 * quality.mean(axis=1) + 3 * rng.standard_normal(count)
        for j in range(count):
            i = start + j
            vid = f"v{i:06d}"
            np.save(folder / f"{vid}.npy", x[j].astype(np.float16))
            test = i >= LABELED + pool
            if layout == "protocol" or test or i < LABELED:
                rows.append(f"{vid},{scores[j]:.4f},{'test' if test else 'train'}")
            elif i < LABELED + pool // 2:  # the archive's pool: half an empty score, half no line
                rows.append(f"{vid},,train")
    (folder / "scores.csv").write_text("\n".join(rows) + "\n")
    return folder


def train(folder: Path, pool: int, method: str, out: Path,
          layout: str = "protocol") -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of one `s4aqa train`, and its output (the archive
    layout: its line of video counts, then its last line)."""
    ratio = LABELED / (LABELED + pool)  # rounds to exactly LABELED labeled videos
    command = [sys.executable, "-m", "s4aqa.cli", "train", "--dataset", "folder",
               "--root", str(folder), "--seed", "0",
               "--method", method, "--out", str(out), "--fresh", "--no-progress"]
    if layout == "protocol":
        command += ["--label-ratio", repr(ratio)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    lines = output.strip().splitlines()
    last = lines[-1] if lines else ""
    if layout == "archive":
        last = " | ".join([line for line in lines if "videos:" in line] + [last])
    if child.returncode:
        last = f"FAILED ({child.returncode}): {output.strip()[-400:]}"
    return seconds, usage.ru_maxrss / 1024, last


def recall(folder: Path, sample: int = 1000, k: int = 10) -> tuple[float, float]:
    """Recall of the approximate graph's k nearest neighbours against the exact ones for
    ``sample`` videos, and the approximate search's seconds."""
    from s4aqa.data.formats.folder import read as read_folder  # noqa: PLC0415
    from s4aqa.methods._graph import approximate_neighbours, unit_rows  # noqa: PLC0415
    from s4aqa.methods._pooling import pool_segments  # noqa: PLC0415

    data = read_folder(folder).train()
    nodes = pool_segments(data)
    del data
    nodes = (nodes - nodes.mean(axis=0)) / (nodes.std(axis=0) + 1e-6)
    started = time.perf_counter()
    found = approximate_neighbours(nodes, k)
    seconds = time.perf_counter() - started
    rng = np.random.default_rng(0)
    queries = rng.choice(len(nodes), min(sample, len(nodes)), replace=False)
    unit = unit_rows(nodes)
    similarity = unit[queries] @ unit.T
    similarity[np.arange(len(queries)), queries] = -np.inf
    exact = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    hits = [len(set(a) & set(b)) / k for a, b in zip(exact, found[queries])]
    return float(np.mean(hits)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="unlabeled pool sizes, comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--root", default="/tmp/s4aqa_scale")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--no-recall", action="store_true")
    parser.add_argument("--layout", choices=("protocol", "archive"), default="protocol",
                        help="every training video scored and a ratio drawn, or an archive of "
                             "unscored videos beside the scored ones (module docstring)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]
    root = Path(args.root)
    print(f"{LABELED} labeled + pool + {TEST} test videos of ({SEGMENTS}, {DIM}) float16; "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("pool,method,seconds,peak_rss_mib,result")
    times: dict[tuple[int, str], float] = {}
    try:
        for pool in sizes:
            started = time.perf_counter()
            folder = generate(root, pool, layout=args.layout)
            print(f"# pool {pool}: data generated in {time.perf_counter() - started:.0f} s",
                  flush=True)
            for method in methods:
                seconds, rss, last = train(folder, pool, method,
                                           root / "runs" / f"{method}_{pool}", args.layout)
                times[pool, method] = seconds
                print(f"{pool},{method},{seconds:.1f},{rss:.0f},{last}", flush=True)
                shutil.rmtree(root / "runs" / f"{method}_{pool}", ignore_errors=True)
            if not args.no_recall:
                value, seconds = recall(folder)
                print(f"# pool {pool}: approximate graph recall@10 {value:.4f} against the "
                      f"exact graph (search {seconds:.0f} s)", flush=True)
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    for method in methods:
        done = sorted(p for p, m in times if m == method)
        for small, large in zip(done, done[1:]):
            print(f"ratio {method} time({large})/time({small}): "
                  f"{times[large, method] / times[small, method]:.1f}")


if __name__ == "__main__":
    main()
