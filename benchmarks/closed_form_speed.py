"""GraphRidge.fit (the model of lap_rls and of the deep methods' partner) on generated data:
N videos of (8, 256) features, 10% labeled, the default grids (13 ridge x 9 graph strengths),
one process from start to exit.

    python benchmarks/closed_form_speed.py --videos 1600 [--labeled-share 0.1]

To compare with another version of the code, put its src first on PYTHONPATH, e.g.
``git archive <commit> src | tar -x -C /tmp/old`` and ``PYTHONPATH=/tmp/old/src``; under
farm-bench: ``farm-bench --vs 'env PYTHONPATH=/tmp/old/src python ...' -- python ...``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from s4aqa.data.featureset import FeatureSet
from s4aqa.methods._linear import GraphRidge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1600)
    parser.add_argument("--labeled-share", type=float, default=0.1)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.videos
    skill = rng.standard_normal(n)
    x = rng.standard_normal((n, args.segments, args.dim)).astype(np.float32)
    x[:, :, :8] += skill[:, None, None].astype(np.float32)
    data = FeatureSet([f"v{i}" for i in range(n)], x, 60 + 10 * skill + rng.standard_normal(n),
                      ["train"] * n)
    n_labeled = max(3, int(round(args.labeled_share * n)))
    labeled, unlabeled = data.subset(np.arange(n_labeled)), data.subset(np.arange(n_labeled, n))
    started = time.perf_counter()
    model = GraphRidge(average_best=5).fit(labeled, unlabeled)
    print(f"fit {n} videos ({n_labeled} labeled): {time.perf_counter() - started:.2f} s, "
          f"params {model.params}, mean prediction {float(model.predict(data).mean()):.6f}")


if __name__ == "__main__":
    main()
