"""What the prediction intervals cost on Fis-V: the work they add to a run, timed on its own,
against the run's fit.

The residuals of lap_rls and of every deep method's partner are the leave-one-out predictions
the fit computes anyway for its selection (kept: a mean of 5 vectors); the work added is
``fit_intervals`` + the bounds. svr adds cross-validated predictions with the chosen
hyper-parameters (``SVR.out_of_sample_residuals``: 5 more small fits), asked for by
``fit_intervals``. Timing the added work alone keeps a busy machine's noise out of the ratio
(two whole runs differ by more).
Deep methods: their fit time is in a reproduction's records (seconds per run); their added
work is the same as lap_rls's here.

    python benchmarks/intervals_cost.py [--root ../shared/data/fisv] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from s4aqa.config import RunConfig
from s4aqa.methods.intervals import fit_intervals
from s4aqa.runs.data import load_data
from s4aqa.runs.prepare import prepare


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="../shared/data/fisv")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = load_data(RunConfig(dataset="fisv", root=args.root, target="tes"))
    for ratio in (0.1, 0.4):
        for name in ("svr", "lap_rls"):
            config = RunConfig(dataset="fisv", root=args.root, target="tes", method=name,
                               label_ratio=ratio)
            fits, added = [], []
            for _ in range(args.repeats):
                prepared = prepare(config, data)
                split, method, sets = prepared.split, prepared.method, prepared.sets
                fit = timed(lambda: method.fit(*sets))
                predicted = method.predict(data.select_ids(split.test))
                extra = timed(lambda: fit_intervals(method, sets[0]).bounds(predicted))
                fits.append(fit)
                added.append(extra)
            fit, extra = float(np.median(fits)), float(np.median(added))
            print(f"{name} {ratio:.0%}: fit without intervals {fit:.3f} s, added by the "
                  f"intervals {extra * 1000:.1f} ms, ratio {(fit + extra) / fit:.3f}")


if __name__ == "__main__":
    main()
