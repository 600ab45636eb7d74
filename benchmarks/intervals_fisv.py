"""Prediction intervals on Fis-V: coverage and width per cell against the naive baseline.

Reads a reproduction folder of `s4aqa reproduce table1 ... --methods aa,s4aqa,svr,lap_rls`
(its cached records hold each run's test coverage, width and predictions) and computes, on
the same labeled videos of each seed, the naive baseline: ridge regression on mean-pooled
features with ± the conformal quantile of its leave-one-out absolute residuals, applied to
every video (centred on ridge's own prediction, and, in a second column, the same ± around
each method's prediction). Nothing here chooses anything; with --holdout it reads
validation slices of the training split.

    python benchmarks/intervals_fisv.py REPRO_DIR [--root ../shared/data/fisv]

Prints a markdown table: per method and cell, coverage mean ± std over seeds, the lowest
single run, width mean ± std (score units) and width / test scores' std.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from s4aqa.config import RunConfig
from s4aqa.experiments.cache import RunCache, read_manifests
from s4aqa.experiments.protocols import RunSpec
from s4aqa.methods._linear import GraphRidge
from s4aqa.methods.intervals import conformal_quantile
from s4aqa.methods.registry import create
from s4aqa.runs.data import load_data
from s4aqa.runs.prepare import split_of, training_sets


def naive(config: RunConfig, data, coverage: float):
    """(half-width, ridge's test predictions, test scores, test ids) of the naive baseline on
    the labeled videos of ``config``'s seed."""
    method = create("lap_rls", {}, seed=0)  # selects nothing: labeled + validation slice
    split = split_of(config, data, need_validation=False)
    labeled = training_sets(data, split, method)[0]
    model = GraphRidge(graphs=(0.0,), average_best=5).fit(labeled)
    half = conformal_quantile(model.loo_residuals, coverage)
    test = data.select_ids(split.test)
    return half, model.predict(test), test.scores, list(test.ids)


def summary(values) -> str:
    values = np.asarray(values, float)
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else \
        f"{values.mean():.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("repro")
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    cache = RunCache(args.repro)
    cells = defaultdict(lambda: defaultdict(list))
    naive_done: dict = {}
    datasets: dict = {}
    for manifest in read_manifests(args.repro):
        for values in manifest["runs"]:
            spec = RunSpec.from_dict(values)
            record = cache.load(values.get("key") or spec.key)
            if record is None or record.get("status") != "ok":
                continue
            c = spec.config
            if args.root:
                c = RunConfig.from_dict({**c.to_dict(), "root": args.root})
            m = record["metrics"]
            cell = (c.target, c.label_ratio)
            key = (c.target, c.holdout)
            if key not in datasets:
                datasets[key] = load_data(c)
            data = datasets[key]
            coverage = float(m.get("coverage", 0.9))
            seed_key = (c.target, c.label_ratio, c.seed)
            if seed_key not in naive_done:
                naive_done[seed_key] = naive(c, data, coverage)
                half, ridge, truth, _ = naive_done[seed_key]
                cells[cell]["naive (ridge LOO ±)"].append(
                    (np.mean(np.abs(truth - ridge) <= half), 2 * half, 2 * half / truth.std(),
                     None, None))
            half, _, truth, ids = naive_done[seed_key]
            assert ids == record["test_ids"]
            predicted = np.asarray(record["predictions"])
            naive_cover = np.mean(np.abs(truth - predicted) <= half)
            relative = m.get("test_interval_width_relative", m.get("test_interval_width_std"))
            name = c.method + ("" if c.intervals == "jackknife" else f" ({c.intervals})")
            cells[cell][name].append(
                (m["test_coverage"], m["test_interval_width"], relative, naive_cover,
                 m["test_spearman"]))
    print("| target | labels | method | seeds | coverage | lowest run | width | width / std "
          "| naive ± around it: coverage | test Spearman |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (target, ratio), methods in sorted(cells.items()):
        for method, rows in methods.items():
            cover, width, width_std, naive_cover, rho = zip(*rows)
            print(f"| {target} | {ratio:.0%} | {method} | {len(rows)} | {summary(cover)} | "
                  f"{min(cover):.2f} | {summary(width)} | {summary(width_std)} | "
                  + (f"{summary(naive_cover)} | {summary(rho)} |" if rho[0] is not None
                     else "— | — |"))


if __name__ == "__main__":
    main()
