"""`s4aqa reproduce` end to end on generated data: cache, resume, failures, skips, workers."""

from __future__ import annotations

import csv

import pytest

from s4aqa import cli
from s4aqa.errors import S4AQAError
from s4aqa.experiments import execute, runner
from s4aqa.experiments.cache import RunCache
from s4aqa.methods import registry

TINY = ["--set", "steps=3", "--set", "eval_every=3", "--quiet"]
from markdown_text import squash


def results(directory):
    with open(directory / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_reproduce_then_cached_then_report(tmp_path, capsys):
    out = tmp_path / "ablation"
    argv = ["reproduce", "ablation", "--seeds", "1", "--ratios", "0.1", *TINY, "--out", str(out)]
    assert cli.main(argv) == 0
    assert "7 runs (0 cached, 7 run now; 0 failed, 0 skipped)" in capsys.readouterr().out
    report = squash((out / "report.md").read_text())
    assert "| s4aqa (shipped defaults) |" in report and "| AA+GRAPH |" in report
    assert "### default target, 10% labels" in report
    rows = results(out)
    assert [r["method"] for r in rows] == ["aa", "aa+rda", "aa+msfr", "aa+msfr+rda", "aa+cons",
                                           "aa+graph", "s4aqa"]
    assert all(r["status"] == "ok" and -1 <= float(r["test_spearman"]) <= 1 for r in rows)
    assert {r["n_labeled"] for r in rows} == {rows[0]["n_labeled"]}  # one seed, one subset
    # a second call recomputes nothing; `report` rebuilds the same report from the cache
    assert cli.main(argv) == 0
    assert "7 runs (7 cached, 0 run now" in capsys.readouterr().out
    (out / "report.md").unlink()
    assert cli.main(["report", str(out)]) == 0
    assert squash((out / "report.md").read_text()) == report


def test_resume_after_interruption(tmp_path, fake_methods, monkeypatch):
    calls = []
    real = execute.execute_run

    def interrupted(spec, directory):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(spec["config"]["seed"])
        return real(spec, directory)

    monkeypatch.setattr(execute, "execute_run", interrupted)
    kwargs = dict(out=tmp_path, methods=["_fake_ridge", "_fake_semi"], ratios=[0.2], seeds=3,
                  progress=False)
    with pytest.raises(KeyboardInterrupt):
        runner.reproduce("table1", **kwargs)
    assert len(list(RunCache(tmp_path).keys())) == 3  # the finished runs are kept
    calls.clear()
    summary = runner.reproduce("table1", **kwargs)
    assert (summary.total, summary.cached, summary.ran) == (6, 3, 3) and len(calls) == 3
    # a changed option reruns only the runs it touches
    calls.clear()
    summary = runner.reproduce("table1", **kwargs, options={"weight": "0.9"})
    assert summary.ran == 3 and all(r["status"] == "ok" for r in results(tmp_path))
    assert {r["method"] for r in results(tmp_path) if r["options"] != "{}"} == {"_fake_semi"}


def test_failures_and_skips_are_recorded_not_fatal(tmp_path, fake_methods, monkeypatch, capsys):
    out = tmp_path / "fig6"
    argv = ["reproduce", "fig6", "--seeds", "1", "--ratios", "0.5,1.0", "--quiet",
            "--methods", "_fake_ridge,_fake_semi,_fake_broken", "--out", str(out)]
    assert cli.main(argv) == 0
    rows = {(r["method"], r["label_ratio"]): r for r in results(out)}
    assert rows[("_fake_semi", "1.0")]["status"] == "skipped"
    assert rows[("_fake_ridge", "1.0")]["status"] == "ok"  # supervised: the 100% end point
    assert rows[("_fake_broken", "0.5")]["status"] == "failed"
    assert rows[("_fake_broken", "0.5")]["message"] == "broken on purpose"
    report = (out / "report.md").read_text()
    assert "**Failed runs** (2)" in report and "broken on purpose" in report
    assert "**Skipped runs** (1)" in report and (out / "fig6-synthetic.png").is_file()
    # failed runs are retried, skipped ones are not; an internal error makes the exit code 1
    def bug(self, labeled, unlabeled=None, validation=None, hooks=()):
        raise ValueError("a bug")

    monkeypatch.setattr(registry.METHODS.get("_fake_broken"), "fit", bug)
    capsys.readouterr()
    assert cli.main(argv) == 1
    assert "(4 cached, 2 run now; 2 failed, 0 skipped)" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "internal error: ValueError: a bug" in report
    assert "**2 run(s) failed with an internal error**" in report


def test_fig4_embeddings_and_the_tsne_figure(tmp_path, fake_methods):
    summary = runner.reproduce("fig4", out=tmp_path, methods=["_fake_ridge", "_fake_semi"],
                               ratios=[0.9], seeds=1, progress=False)
    assert summary.ran == 2 and summary.failed == 0
    cache = RunCache(tmp_path)
    arrays = [cache.load_arrays(k) for k in cache.keys()]
    assert all(a["embedding"].shape == (len(a["score"]), 8) for a in arrays)
    assert (tmp_path / "fig4-synthetic.png").read_bytes()[:4] == b"\x89PNG"
    assert "kNN score consistency" in (tmp_path / "report.md").read_text()


def test_workers_run_in_separate_processes(tmp_path, capsys):
    out = tmp_path / "w2"
    argv = ["reproduce", "ablation", "--seeds", "1", "--ratios", "0.1", "--methods", "aa,s4aqa",
            "--workers", "2", *TINY, "--out", str(out)]
    assert cli.main(argv) == 0
    assert "2 runs (0 cached, 2 run now; 0 failed" in capsys.readouterr().out
    assert [r["status"] for r in results(out)] == ["ok", "ok"]


def test_user_errors_stop_before_any_run(tmp_path, capsys):
    assert cli.main(["reproduce", "table1", "--dataset", "fisv", "--root", str(tmp_path / "no"),
                     "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "check --root" in capsys.readouterr().err
    with pytest.raises(S4AQAError, match="workers"):
        runner.reproduce("table1", out=tmp_path, workers=0, progress=False)


def test_group_seeds_runs_each_seed_and_caches_them(tmp_path):
    from s4aqa.cli import main

    out = tmp_path / "grouped"
    argv = ["reproduce", "ablation", "--dataset", "synthetic", "--seeds", "3", "--ratios", "0.2",
            "--methods", "aa,s4aqa", "--set", "steps=20", "--group-seeds", "--quiet",
            "--out", str(out)]
    assert main(argv) == 0
    import json

    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert len(records) == 6
    assert all(r["status"] == "ok" and r["metrics"].get("grouped") == 3 for r in records)
    assert main(argv) == 0  # all cached: nothing reruns
    assert len(list((out / "runs").glob("*.json"))) == 6


def test_holdout_evaluates_on_training_videos_and_never_the_test_split(tmp_path, capsys):
    from s4aqa.data.synthetic import make_staged_actions

    out = tmp_path / "tuning"
    argv = ["reproduce", "ablation", "--seeds", "1", "--ratios", "0.2", "--methods", "aa",
            "--holdout", "40", *TINY, "--out", str(out)]
    assert cli.main(argv) == 0
    assert "40 held-out training videos" in (out / "report.md").read_text()
    cache = RunCache(out)
    record = cache.load(next(iter(cache.keys())))
    train_ids = set(make_staged_actions().train().ids)
    assert record["metrics"]["n_test"] == len(record["test_ids"]) == 40
    assert set(record["test_ids"]) <= train_ids


def test_shift_runs_labeled_and_unlabeled_from_named_groups(tmp_path, capsys):
    out = tmp_path / "shift"
    argv = ["reproduce", "ablation", "--dataset", "synthetic_shift", "--shift", "source:look",
            "--seeds", "1", "--ratios", "0.2", "--methods", "aa+rda", *TINY, "--out", str(out)]
    assert cli.main(argv) == 0
    assert "labeled videos from source, unlabeled from look" in (out / "report.md").read_text()
    row, = results(out)
    assert row["status"] == "ok" and row["n_unlabeled"] == "200"
    assert {"spearman_source", "spearman_look"} <= set(row) and "spearman_skill" not in row


def test_shift_naming_a_missing_group_stops_before_any_run(tmp_path, capsys):
    out = tmp_path / "shift"
    argv = ["reproduce", "ablation", "--dataset", "synthetic_shift", "--shift", "source:lok",
            "--seeds", "1", *TINY, "--out", str(out)]
    assert cli.main(argv) != 0
    assert "no group lok" in capsys.readouterr().err
    assert not (out / "runs").exists()


def test_cli_reproduce_pool_grows_the_unlabeled_pool_with_labels_fixed(tmp_path, capsys):
    out = tmp_path / "pool"
    argv = ["reproduce", "pool", "--seeds", "2", *TINY, "--out", str(out)]
    assert cli.main(argv) == 0
    # per seed: aa once, lap_rls, aa+graph, s4aqa and trs at 5 pool sizes each
    assert "42 runs (0 cached, 42 run now; 0 failed, 0 skipped)" in capsys.readouterr().out
    rows = results(out)
    assert all(r["status"] == "ok" for r in rows)
    for seed in ("0", "1"):  # a seed's labeled videos do not change with the pool
        assert len({r["n_labeled"] for r in rows if r["seed"] == seed}) == 1
    sizes = {(r["method"], r["unlabeled_share"]): r["n_unlabeled"] for r in rows}
    assert [sizes[("lap_rls", s)] for s in ("0.0", "0.125", "0.25", "0.5", "1.0")] == [
        "0", "45", "90", "180", "360"]
    assert sizes[("aa", "1.0")] == "0"
    # aa+graph without its unlabeled videos is aa, run for run
    spearman = {(r["method"], r["unlabeled_share"], r["seed"]): r["test_spearman"] for r in rows}
    assert all(spearman[("aa+graph", "0.0", s)] == spearman[("aa", "1.0", s)] for s in "01")
    report = squash((out / "report.md").read_text())
    assert ("| method \\ unlabeled videos (share) | 0 (0%) | 45 (12.5%) | 90 (25%) | "
            "180 (50%) | 360 (100%) | Δ 360 − 0 [95% CI] |") in report
    assert "| aa+graph |" in report and "| s4aqa |" in report
    assert "| trs (beyond the paper) |" in report  # a row not in the paper says so
    assert "Reference aa (reads no unlabeled video" in report
    assert (out / "pool-synthetic.png").read_bytes()[:4] == b"\x89PNG"
    assert "](pool-synthetic.png)" in report
    assert cli.main(argv) == 0
    assert "42 runs (42 cached, 0 run now" in capsys.readouterr().out
