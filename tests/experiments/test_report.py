"""The report, built from a small fake result set (no training)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from s4aqa.config import RunConfig
from s4aqa.errors import S4AQAError
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import RunSpec
from s4aqa.experiments.report import build_report, sections
from s4aqa.experiments.report.aggregate import Row, combine_seedwise, seed_values
from s4aqa.experiments.report.figures import at_most, neighbour_consistency
from s4aqa.training.metrics import fisher_z_mean

PNG = b"\x89PNG"
from markdown_text import squash


def spec(protocol, dataset, method, seed, ratio=0.1, target=None, task=None, fold=None,
         variant=None, extras=()):
    variant = dict(variant or {})
    config = RunConfig(dataset=dataset, target=target, task=task, fold=fold, method=method,
                       options=dict(variant), label_ratio=ratio, seed=seed)
    return RunSpec(protocol, config, overrides=dict(variant), variant=variant,
                   extras=tuple(extras))


def write(directory, protocol, dataset, runs, groups=()):
    """runs: [(RunSpec, status, metrics or message, arrays or None)]."""
    cache = run_cache.RunCache(directory)
    for s, status, payload, arrays in runs:
        record = {"key": s.key, "status": status, "spec": s.to_dict(), "seconds": 2.0}
        if status == "ok":
            record["metrics"] = payload
            record["extras"] = ["embedding"] if arrays else []
        else:
            record["message"] = payload
        cache.save(record, arrays)
    run_cache.write_manifest(directory, {
        "protocol": protocol, "dataset": dataset, "root": None, "seeds": 3, "inits": 1,
        "methods": [], "missing_methods": ["svr"], "options": {}, "groups": list(groups),
        "folds": [], "runs": [dict(s.to_dict(), key=s.key) for s, *_ in runs]})


def test_fisher_z_combination():
    rows = [Row(spec("t", "d", "aa", seed, fold=fold), "k", "ok", metrics={"test_spearman": v})
            for seed, fold, v in [(0, 0, 0.2), (0, 1, 0.6), (1, 0, 0.4), (1, 1, 0.4)]]
    values = seed_values(rows, lambda r: r.value)
    assert values[0] == pytest.approx(math.tanh((math.atanh(0.2) + math.atanh(0.6)) / 2))
    assert values[0] > 0.4  # Fisher z weighs the higher correlation more than the plain mean
    assert values[1] == pytest.approx(0.4)
    # a seed with an unfinished run does not count
    rows.append(Row(spec("t", "d", "aa", 2, fold=0), "k", "failed"))
    assert set(seed_values(rows, lambda r: r.value)) == {0, 1}
    both = combine_seedwise([{0: 0.5, 1: 0.3}, {0: 0.7}])
    assert list(both) == [0] and both[0] == pytest.approx(fisher_z_mean([0.5, 0.7]))


def test_table_report_with_paper_column_pairs_and_failures(tmp_path):
    values = {"aa": [0.60, 0.62, 0.58], "s4aqa": [0.66, 0.69, 0.65], "vat": [0.50, 0.70, 0.55]}
    runs = []
    for ratio in (0.1, 0.4):
        for method, vs in values.items():
            for seed, v in enumerate(vs):
                runs.append((spec("table1", "mtl_aqa", method, seed, ratio), "ok",
                             {"test_spearman": v + ratio / 10, "n_test": 353}, None))
    runs.append((spec("table1", "mtl_aqa", "coreg", 0, 0.1), "failed", "needs | more data", None))
    write(tmp_path, "table1", "mtl_aqa", runs)
    report = squash(build_report(tmp_path).read_text())
    lines = report.splitlines()
    s4 = next(line for line in lines if line.startswith("| s4aqa |"))
    # best mean in bold, the paper's 10% value, n and s/run
    assert "**0.677 ± 0.021**" in s4 and "0.676" in s4 and "| 3 | 2.0 |" in s4
    diffs = np.array(values["s4aqa"]) - np.array(values["aa"])
    assert f"+{diffs.mean():.3f} [" in s4  # paired by seed against aa
    aa = next(line for line in lines if line.startswith("| aa |"))
    assert "| — |" in aa and "0.618" in aa
    assert "Not registered in this installation, so not run: svr." in report
    assert "**Failed runs** (1)" in report and "needs \\| more data" in report
    assert "### default target, 40% labels" in report and "0.746" in report
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(runs)
    assert {r["status"] for r in rows} == {"ok", "failed"}
    assert rows[0]["protocol"] == "table1" and rows[0]["test_spearman"] == "0.610000"


def test_group_and_kfold_tables(tmp_path):
    groups = ["Ball", "Clubs", "Hoop", "Ribbon"]
    runs = []
    for method, shift in (("aa", 0.0), ("s4aqa", 0.1)):
        for seed in range(2):
            per_group = {g: 0.1 * (i + 1) + shift + 0.01 * seed for i, g in enumerate(groups)}
            runs.append((spec("table2", "rg", method, seed, 0.4), "ok",
                         {"test_spearman": fisher_z_mean(per_group.values()),
                          "test_spearman_per_group": per_group}, None))
    write(tmp_path, "table2", "rg", runs, groups)
    folds = []
    for method in ("aa", "s4aqa"):
        for task in ("Suturing", "Knot_Tying"):
            for fold in range(2):
                for seed in range(2):
                    folds.append((spec("table3", "jigsaws", method, seed, 0.5, task=task,
                                       fold=fold), "ok",
                                  {"test_spearman": 0.3 + 0.1 * fold + 0.2 * (method == "s4aqa")},
                                  None))
    write(tmp_path, "table3", "jigsaws", folds)
    report = squash(build_report(tmp_path).read_text())
    header = next(line for line in report.splitlines() if line.startswith("| method | Ball"))
    assert "avg (Fisher z)" in header and "paper (Ball/Clubs/Hoop/Ribbon/avg)" in header
    s4 = next(line for line in report.splitlines() if line.startswith("| s4aqa | **0.205"))
    assert "0.248/0.388/0.372/0.357/0.342" in s4
    expected_task = fisher_z_mean([0.5, 0.6])
    kfold = [line for line in report.splitlines() if line.startswith("| s4aqa |")][-1]
    assert kfold.count(f"{expected_task:.3f}") == 3  # two tasks and their average
    assert kfold.endswith("| 0.533/0.813/0.655 |")  # paper columns follow the data's tasks
    assert "Folds 0, 1 per task" in report
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert "spearman_Ball" in rows[0] and len(rows) == len(runs) + len(folds)


def test_figures_grid_curve_and_tsne(tmp_path):
    rng = np.random.default_rng(0)
    grid = []
    for a in (0.1, 1.0):
        for b in (0.01, 0.1):
            for seed in range(2):
                grid.append((spec("fig5", "synthetic", "s4aqa", seed,
                                  variant={"lambda_rcvr": a, "lambda_adv": b}), "ok",
                             {"test_spearman": 0.5 + a / 10 - b}, None))
    grid += [(spec("fig5", "synthetic", "aa", seed), "ok", {"test_spearman": 0.4}, None)
             for seed in range(2)]
    write(tmp_path, "fig5", "synthetic", grid)
    curve = []
    for ratio in (0.2, 0.5, 1.0):  # (0.1 would be fig5's aa runs: same key, one run)
        for seed in range(2):
            curve.append((spec("fig6", "synthetic", "aa", seed, ratio), "ok",
                          {"test_spearman": ratio / 2 + seed / 100}, None))
            curve.append((spec("fig6", "synthetic", "s4aqa", seed, ratio),
                          *(("skipped", "no unlabeled videos") if ratio == 1.0 else
                            ("ok", {"test_spearman": ratio / 2 + 0.05})), None))
    write(tmp_path, "fig6", "synthetic", curve)
    score = rng.normal(size=40)
    embedding = np.c_[score, rng.normal(size=(40, 3))].astype(np.float32)
    tsne = [(spec("fig4", "synthetic", m, 0, 0.3, extras=("embedding",)), "ok",
             {"test_spearman": 0.5},
             {"embedding": embedding, "score": score, "ids": np.array([str(i) for i in range(40)])})
            for m in ("aa", "s4aqa")]
    write(tmp_path, "fig4", "synthetic", tsne)
    report = squash(build_report(tmp_path).read_text())
    for name in ("fig4-synthetic.png", "fig5-synthetic.png", "fig6-synthetic.png"):
        assert (tmp_path / name).read_bytes()[:4] == PNG
        assert f"]({name})" in report
    assert "| lambda_rcvr \\ lambda_adv | 0.01 | 0.1 |" in report
    assert "**0.590 ± 0.000**" in report and "Reference aa: 0.400 ± 0.000" in report
    assert "| s4aqa | **0.150 ± 0.000** | **0.300 ± 0.000** | skipped |" in report
    assert "**Skipped runs** (2)" in report
    assert report.index("## fig4") < report.index("## fig5") < report.index("## fig6")
    assert neighbour_consistency(embedding, score) > 0.5


def test_at_most_is_a_fixed_aligned_draw():
    score = np.arange(30.0)
    arrays = {"embedding": np.c_[score, -score], "score": score,
              "ids": np.array([str(i) for i in range(30)])}
    assert at_most(arrays, 30) is arrays
    drawn = at_most(arrays, 10)
    assert len(drawn["score"]) == 10 and np.all(np.diff(drawn["score"]) > 0)
    assert np.array_equal(drawn["embedding"][:, 0], drawn["score"])
    assert list(drawn["ids"]) == [str(int(v)) for v in drawn["score"]]
    assert np.array_equal(at_most(arrays, 10)["score"], drawn["score"])


def test_fig4_reads_a_draw_of_a_large_pool(tmp_path, monkeypatch):
    monkeypatch.setattr(sections, "FIGURE_VIDEOS", 20)
    rng = np.random.default_rng(1)
    score = rng.normal(size=50)
    embedding = np.c_[score, rng.normal(size=(50, 3))].astype(np.float32)
    runs = [(spec("fig4", "synthetic", m, 0, 0.3, extras=("embedding",)), "ok",
             {"test_spearman": 0.5},
             {"embedding": embedding, "score": score,
              "ids": np.array([str(i) for i in range(50)])})
            for m in ("aa", "s4aqa")]
    write(tmp_path, "fig4", "synthetic", runs)
    report = squash(build_report(tmp_path).read_text())
    assert "a fixed draw of 20 of the 50 unlabeled videos" in report


def test_report_needs_a_reproduction(tmp_path):
    with pytest.raises(S4AQAError, match="reproduce"):
        build_report(tmp_path)


def test_table_reports_mae_and_no_paper_note_without_a_paper_column(tmp_path):
    runs = [(spec("ablation", "fisv", method, seed), "ok",
             {"test_spearman": 0.5 + seed / 100, "test_mae": mae + seed, "n_test": 100}, None)
            for method, mae in (("aa", 4.0), ("s4aqa", 5.0)) for seed in range(2)]
    write(tmp_path, "ablation", "fisv", runs)
    report = squash(build_report(tmp_path).read_text())
    assert "Paper column" not in report and "| test MAE |" in report
    aa = next(line for line in report.splitlines() if line.startswith("| AA |"))
    assert "4.500 ± 0.707" in aa  # a plain mean of errors, not Fisher z
    with open(tmp_path / "results.csv", newline="") as handle:
        assert {r["test_mae"] for r in csv.DictReader(handle)} >= {"4.000000", "5.000000"}


def test_one_seed_reads_the_same_everywhere():
    from s4aqa.experiments.stats import paired_difference, summarise
    assert str(summarise([0.5])) == "0.500"
    assert str(paired_difference([0.5], [0.4])) == "+0.100 (1 seed, no interval)"
