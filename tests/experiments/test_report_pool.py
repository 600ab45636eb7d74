"""The `pool` section of the report, built from a small fake result set (no training)."""

from __future__ import annotations

import csv

from markdown_text import squash

from s4aqa.config import RunConfig
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import RunSpec
from s4aqa.experiments.report import build_report

PNG = b"\x89PNG"
SHARES = (0.0, 0.5, 1.0)
POOL = 40  # unlabeled videos of the whole pool


def pool_run(method, seed, share=None, target="tes"):
    """A pool run: swept runs carry their share in ``variant``, the reference does not."""
    config = RunConfig(dataset="fisv", target=target, method=method, seed=seed, label_ratio=0.1,
                       unlabeled_share=1.0 if share is None else share,
                       options={"unlabeled": False} if share == 0 else {})
    variant = {} if share is None else {"unlabeled_share": share}
    return RunSpec("pool", config, overrides=dict(config.options), variant=variant)


def value(method, seed, share):
    if method == "aa":
        return 0.35 + 0.01 * seed
    if method == "s4aqa":  # more unlabeled videos help, by 0.2 at the whole pool
        return 0.3 + 0.2 * share + 0.01 * seed
    return 0.4 - 0.1 * share + 0.02 * seed  # lap_rls: they hurt


def write_pool(directory, seeds=3):
    cache = run_cache.RunCache(directory)
    specs = [pool_run("aa", s) for s in range(seeds)]
    specs += [pool_run(m, s, x) for m in ("lap_rls", "s4aqa") for x in SHARES
              for s in range(seeds)]
    for spec in specs:
        share = spec.variant.get("unlabeled_share", 0.0)
        cache.save({"key": spec.key, "status": "ok", "spec": spec.to_dict(), "seconds": 1.0,
                    "metrics": {"test_spearman": value(spec.config.method, spec.config.seed,
                                                       share),
                                "n_unlabeled": round(share * POOL)}})
    run_cache.write_manifest(directory, {
        "protocol": "pool", "dataset": "fisv", "root": None, "seeds": seeds, "inits": 1,
        "methods": [], "missing_methods": [], "options": {}, "groups": [], "folds": [],
        "runs": [dict(s.to_dict(), key=s.key) for s in specs]})
    return specs


def test_pool_table_columns_are_pool_sizes_with_gains_over_pool_zero(tmp_path):
    specs = write_pool(tmp_path)
    report = squash(build_report(tmp_path).read_text())
    assert "## pool on fisv: What more unlabeled videos add" in report
    assert ("| method \\ unlabeled videos (share) | 0 (0%) | 20 (50%) | 40 (100%) | "
            "Δ 40 − 0 [95% CI] | std of Δ, seeds Δ > 0 | Δ 40 vs aa [95% CI] | n |") in report
    lines = report.splitlines()
    s4 = next(line for line in lines if line.startswith("| s4aqa |"))
    cells = [c.strip() for c in s4.strip("|").split("|")]
    assert cells[1:4] == ["0.310 ± 0.010", "**0.410 ± 0.010**", "**0.510 ± 0.010**"]
    assert cells[4].startswith("+0.200 [+0.200, +0.200]") and cells[5] == "0.000, 3/3"
    assert cells[6].startswith("+0.150 [") and cells[7] == "3"
    lap = [c.strip() for c in next(line for line in lines
                                   if line.startswith("| lap_rls |")).strip("|").split("|")]
    assert lap[1] == "**0.420 ± 0.020**" and lap[4].startswith("-0.100") and lap[5].endswith("0/3")
    assert "Reference aa (reads no unlabeled video, so one run per seed): 0.360 ± 0.010 (n = 3)." \
        in report
    assert "| aa |" not in report  # the reference is a line, not a row of pool sizes
    assert (tmp_path / "pool-fisv-tes.png").read_bytes()[:4] == PNG
    assert "](pool-fisv-tes.png)" in report
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(specs)
    assert {r["unlabeled_share"] for r in rows if r["method"] == "s4aqa"} == {"0.0", "0.5", "1.0"}
    assert {r["unlabeled_share"] for r in rows if r["method"] == "aa"} == {"1.0"}
    assert next(r for r in rows if r["unlabeled_share"] == "0.0")["options"] == \
        '{"unlabeled":false}'


def test_a_failed_run_of_the_pool_leaves_its_seed_out_of_that_column(tmp_path):
    write_pool(tmp_path, seeds=2)
    # one seed of s4aqa's whole pool failed: the column still shows the other seed
    spec = pool_run("s4aqa", 1, 1.0)
    run_cache.RunCache(tmp_path).save({"key": spec.key, "status": "failed", "message": "boom",
                                       "spec": spec.to_dict()})
    report = squash(build_report(tmp_path).read_text())
    s4 = next(line for line in report.splitlines() if line.startswith("| s4aqa |"))
    assert "| **0.500** |" in s4 and "(1 seed, no interval)" in s4 and s4.endswith("| 1 |")
    assert "**Failed runs** (1)" in report
