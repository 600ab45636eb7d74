"""The run cache: what the key holds, and what counts as a finished run."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from s4aqa.config import RunConfig
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import PROTOCOLS, DatasetInfo, expand
from s4aqa.runs.identity import key_fields, run_key

FLAT = DatasetInfo("synthetic", groups=[], folds=[])


def test_key_covers_every_field_that_decides_the_numbers(tmp_path, monkeypatch):
    base = RunConfig(dataset="fisv", root=str(tmp_path), target="tes", label_ratio=0.1,
                     seed=0, init=0, method="s4aqa", options={"steps": 20})
    key = run_key(base)
    changes = {"dataset": "rg", "root": str(tmp_path / "other"), "target": "pcs", "task": "Ball",
               "fold": 1, "segments": 16, "label_ratio": 0.4, "seed": 1, "init": 1,
               "val_fraction": 0.0, "holdout": 100, "shift": "a:b", "method": "aa",
               "options": {"steps": 21}, "unlabeled_share": 0.5}
    for name, value in changes.items():
        assert run_key(dataclasses.replace(base, **{name: value})) != key, name
    # not part of the key: the device, and how a path or the options are spelt
    assert run_key(dataclasses.replace(base, device="cuda")) == key
    monkeypatch.chdir(tmp_path.parent)
    relative = dataclasses.replace(base, root=os.path.relpath(tmp_path))
    assert run_key(relative) == key
    assert run_key(dataclasses.replace(base, label_ratio=0.10000)) == key
    # no hold-out leaves the key as it was before the field existed
    assert "holdout" not in key_fields(base)
    assert "shift" not in key_fields(base)


def test_the_whole_unlabeled_pool_keeps_the_keys_of_before():
    base = RunConfig(dataset="fisv", target="tes", method="lap_rls", seed=2)
    assert "unlabeled_share" not in key_fields(base)
    # a record written before the setting existed (no such field) has the same key
    before = {k: v for k, v in base.to_dict().items() if k != "unlabeled_share"}
    assert run_key(RunConfig.from_dict(before)) == run_key(base)
    assert run_key(dataclasses.replace(base, unlabeled_share=1)) == run_key(base)
    shares = [0.0, 0.125, 0.25, 0.5]
    keys = {run_key(dataclasses.replace(base, unlabeled_share=s)) for s in shares}
    assert len(keys) == len(shares) and run_key(base) not in keys
    assert key_fields(dataclasses.replace(base, unlabeled_share=0))["unlabeled_share"] == 0.0


def test_a_changed_option_invalidates_only_its_runs(fake_methods):
    def keys(**options):
        runs, _ = expand(PROTOCOLS.get("table1"), RunConfig(dataset="synthetic"), info=FLAT, seeds=2,
                         methods=["_fake_ridge", "_fake_semi"], options=options)
        return {(r.config.method, r.config.label_ratio, r.config.seed): r.key for r in runs}

    before, after = keys(alpha="1"), keys(alpha="1", weight="0.25")
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {k for k in before if k[0] == "_fake_semi"}
    # the default spelt out, as a string or a number, is the same run
    assert keys() == keys(alpha="1") == keys(alpha=1.0)


def test_fig5_grid_point_change_touches_only_that_point():
    protocol = PROTOCOLS.get("fig5")
    runs, _ = expand(protocol, RunConfig(dataset="synthetic"), info=FLAT, seeds=1)
    narrower = dataclasses.replace(protocol, grid={"aa+msfr+rda": {
        "lambda_rcvr": (0.1, 0.3, 1.0, 2.0), "lambda_adv": (0.001, 0.01, 0.1, 1.0)}})
    runs2, _ = expand(narrower, RunConfig(dataset="synthetic"), info=FLAT, seeds=1)
    old, new = {r.key for r in runs}, {r.key for r in runs2}
    assert len(old - new) == len(new - old) == 4  # the λ1 = 3 row became λ1 = 2


def _record(key, status="ok", **extra):
    return {"key": key, "status": status, "metrics": {"test_spearman": 0.5}, **extra}


def test_records_and_extras(tmp_path):
    cache = run_cache.RunCache(tmp_path)
    assert cache.load("a" * 64) is None and not cache.is_done("a" * 64)
    cache.save(_record("a" * 64))
    assert cache.is_done("a" * 64)
    assert not cache.is_done("a" * 64, extras=("embedding",))  # extras asked for, not kept
    arrays = {"embedding": np.ones((3, 2), np.float32), "score": np.arange(3.0),
              "ids": np.array(["x", "y", "z"])}
    cache.save(_record("b" * 64, extras=["embedding"]), arrays)
    assert cache.is_done("b" * 64, extras=("embedding",))
    loaded = cache.load_arrays("b" * 64)
    assert loaded["ids"].tolist() == ["x", "y", "z"] and loaded["embedding"].shape == (3, 2)
    cache.save(_record("c" * 64, status="failed", message="no"))
    assert not cache.is_done("c" * 64)  # failed runs are retried
    cache.save(_record("d" * 64, status="skipped"))
    assert cache.is_done("d" * 64)
    # a half-written or foreign file is not a finished run
    cache.record_path("e" * 64).write_text('{"key": "eee')
    assert cache.load("e" * 64) is None
    cache.record_path("f" * 64).write_text('{"key": "other", "status": "ok"}')
    assert not cache.is_done("f" * 64)
    assert not list(tmp_path.glob("runs/.*.tmp"))  # atomic writes leave no temporaries
