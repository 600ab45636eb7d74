"""How much to trust `s4aqa explain`: a deletion test, and agreement with a known truth.

For each method and seed, trains a run (or reads run folders given with --runs), explains its
test videos and then

- deletion test: replaces the 10% of segments with the largest |contribution| by the reference
  and measures how far the prediction moves (mean absolute change, score units), against as
  many random segments (5 random draws per video); the ratio says how much better than chance
  the timeline picks the segments the score depends on;
- on the built-in synthetic data (--dataset synthetic), whose generator records every segment's
  true contribution: the per-video Spearman between explained and true contributions, averaged
  over the test videos (random attributions: about 0);
- the time to explain the test videos (N videos x T segments perturbed copies).

    python benchmarks/explain_faithfulness.py --dataset fisv --root ../shared/data/fisv \\
        --target tes --methods aa,s4aqa --seeds 3 --label-ratio 0.4
    python benchmarks/explain_faithfulness.py --dataset synthetic --methods aa,s4aqa --seeds 3
    python benchmarks/explain_faithfulness.py --runs run_a run_b     # your own trained runs

Prints one line per run and mean +- std over seeds per method and reference, and writes
--out (JSON) if given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from s4aqa.config import RunConfig
from s4aqa.data.splits import Split
from s4aqa.runs.checkpoint import load_checkpoint
from s4aqa.runs.explain import deletion_test, explain, mean_reference, reference_for, run_data
from s4aqa.runs.data import load_data
from s4aqa.runs.run import run_training


def agreement(contributions: np.ndarray, truth: np.ndarray) -> float:
    """Per-video Spearman between explained and true contributions, averaged."""
    return float(np.nanmean([spearmanr(c, t)[0] for c, t in zip(contributions, truth)]))


def across_videos(contributions: np.ndarray, truth: np.ndarray) -> float:
    """Pearson across test videos at each segment position, averaged over positions: does the
    timeline say which videos did better at a given moment."""
    return float(np.nanmean([np.corrcoef(contributions[:, t], truth[:, t])[0, 1]
                             for t in range(truth.shape[1])]))


def ceiling(data, split: Split, ridge: float = 1.0) -> float:
    """What a read-out *trained on the true contributions* reaches on the per-video Spearman:
    one ridge regression per segment position from that segment's features to its true
    contribution, fitted on the training videos' truth (which no method sees), scored on the
    test videos. An explanation of a score-trained model is not expected to beat it."""
    train = data.select_ids(list(split.labeled) + list(split.validation) + list(split.unlabeled))
    test = data.select_ids(split.test)
    out = np.zeros(test.meta["true_contribution"].shape)
    for t in range(test.num_segments):
        x = train.features[:, t].astype(np.float64)
        mu = x.mean(axis=0)
        y = train.meta["true_contribution"][:, t]
        w = np.linalg.solve((x - mu).T @ (x - mu) + ridge * np.eye(x.shape[1]),
                            (x - mu).T @ (y - y.mean()))
        out[:, t] = (test.features[:, t] - mu) @ w + y.mean()
    return agreement(out, np.asarray(test.meta["true_contribution"]))


def measure(method, data, split: Split, references, fraction: float, seed: int) -> list[dict]:
    labeled = data.select_ids(list(split.labeled) + list(split.validation))
    test = data.select_ids(split.test)
    mean = mean_reference(labeled.features)
    rows = []
    for name in references:
        if name == "recovery" and method.recovered_segments(test.features[:1]) is None:
            continue
        started = time.perf_counter()
        explanation = explain(method, test.ids, test.features, mean, name)
        seconds = time.perf_counter() - started
        reference = reference_for(method, test.features, mean, name)
        row = {"reference": name, "videos": len(test), "segments": test.num_segments,
               "explain_seconds": seconds,
               **deletion_test(method, test.features, explanation.contributions, reference,
                               fraction, seed=seed)}
        if "true_contribution" in test.meta:
            truth = np.asarray(test.meta["true_contribution"])
            row["spearman_truth"] = agreement(explanation.contributions, truth)
            rng = np.random.default_rng(seed)
            row["spearman_random"] = agreement(rng.standard_normal(truth.shape), truth)
            row["pearson_across_videos"] = across_videos(explanation.contributions, truth)
            row["spearman_ceiling"] = ceiling(data, split)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--root", default=None)
    parser.add_argument("--target", default=None)
    parser.add_argument("--methods", default="aa,s4aqa")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--label-ratio", type=float, default=0.4)
    parser.add_argument("--fraction", type=float, default=0.1,
                        help="share of segments replaced in the deletion test")
    parser.add_argument("--references", default="mean,recovery")
    parser.add_argument("--runs", nargs="*", default=None, help="trained run folders instead")
    parser.add_argument("--out", default=None, help="JSON file for every row")
    args = parser.parse_args()
    references = args.references.split(",")
    rows = []
    if args.runs:
        for run in args.runs:
            method, meta = load_checkpoint(run)
            data = run_data(meta)
            for row in measure(method, data, Split.load(Path(run) / "split.json"), references,
                               args.fraction, 0):
                rows.append({"method": meta["method"], "seed": meta["config"].get("seed"), **row})
                print(json.dumps(rows[-1]))
    else:
        for name in args.methods.split(","):
            for seed in range(args.seeds):
                config = RunConfig.from_dict({
                    "dataset": args.dataset, "root": args.root, "target": args.target,
                    "method": name, "label_ratio": args.label_ratio, "seed": seed}).resolved()
                result = run_training(config)
                data = load_data(config)
                for row in measure(result.method, data, result.split, references,
                                   args.fraction, seed):
                    rows.append({"method": name, "seed": seed,
                                 "test_spearman": result.metrics["test_spearman"], **row})
                    print(json.dumps(rows[-1]), flush=True)
    print("\nmean +- std over seeds")
    for key in sorted({(r["method"], r["reference"]) for r in rows}):
        group = [r for r in rows if (r["method"], r["reference"]) == key]
        parts = []
        for field in ("ratio", "top", "random", "spearman_truth", "spearman_random",
                      "spearman_ceiling", "pearson_across_videos", "explain_seconds"):
            values = [r[field] for r in group if field in r]
            if values:
                parts.append(f"{field} {np.mean(values):.3f} +- {np.std(values):.3f}")
        print(f"{key[0]} ({key[1]} reference, {len(group)} runs): " + "; ".join(parts))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
