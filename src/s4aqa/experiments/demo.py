"""`s4aqa demo`: supervised-only `aa` against `s4aqa` (its shipped defaults) on the built-in
synthetic data, paired by seed."""

from __future__ import annotations

import time

from tqdm import tqdm

from s4aqa.config import RunConfig
from s4aqa.data.synthetic import make_staged_actions
from s4aqa.experiments.report.tables import markdown
from s4aqa.experiments.stats import paired_difference, summarise
from s4aqa.runs.run import run_training


def run_demo(seeds: int = 4, label_ratio: float = 0.1, methods=("aa", "s4aqa"),
             device: str = "cpu", threads: int = 1, progress: bool = True) -> str:
    data = make_staged_actions()
    results: dict[str, list[float]] = {m: [] for m in methods}
    seconds: dict[str, float] = {m: 0.0 for m in methods}
    runs = [(seed, method) for seed in range(seeds) for method in methods]
    for seed, method in tqdm(runs, desc="demo runs", disable=None if progress else True):
        config = RunConfig(dataset="synthetic", method=method, label_ratio=label_ratio,
                           seed=seed, device=device, threads=threads)
        started = time.perf_counter()
        result = run_training(config, data)
        seconds[method] += time.perf_counter() - started
        results[method].append(result.metrics["test_spearman"])
    reference = results[methods[0]]
    lines = [
        f"Synthetic staged actions: {len(data)} videos of {data.num_segments} segments x "
        f"{data.dim} dims, {label_ratio:.0%} of the training split labeled, {seeds} seed(s), "
        f"{threads} thread(s) per run.",
        "Test Spearman, mean ± std over seeds; paired difference against "
        f"'{methods[0]}' with its 95% interval.",
        "",
    ]
    body = [[method, str(summarise(results[method])),
             "" if method == methods[0] else str(paired_difference(results[method], reference)),
             f"{seconds[method] / seeds:.1f}"] for method in methods]
    lines += markdown(["method", "test Spearman", f"vs {methods[0]}", "s / run"], body)
    return "\n".join(lines)
