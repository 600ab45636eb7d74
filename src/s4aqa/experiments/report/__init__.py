"""The report of a reproduction folder, rebuilt from its cache alone.

``build_report(DIR)`` reads ``DIR/manifests/*.json`` (which runs each protocol expanded to)
and ``DIR/runs/<key>.json`` (the finished runs), and writes ``DIR/report.md`` (one section per
protocol and dataset), the figures as PNG beside it, and ``DIR/results.csv`` with one row per
run. Nothing is trained or loaded from the dataset. In parts: ``aggregate`` (runs to per-seed
values), ``tables`` (cell texts, markdown, results.csv), ``figures`` (matplotlib) and
``sections`` (one writer per protocol kind; ``pool`` registers its own there).
"""

from __future__ import annotations

import os
from pathlib import Path

from s4aqa import io
from s4aqa.errors import S4AQAError
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import PROTOCOLS
from s4aqa.experiments.report.aggregate import Row, load_rows
from s4aqa.experiments.report.figures import Figures
from s4aqa.experiments.report.pool import pool as _pool_section  # noqa: F401 - registers "pool"
from s4aqa.experiments.report.sections import write_section
from s4aqa.experiments.report.tables import results_csv

REPORT = "report.md"
RESULTS = "results.csv"

HEADER = """# s4aqa reproduction report

Built from the run cache alone (`s4aqa report DIR` rebuilds it); every run is a row of
[results.csv](results.csv).

How to read the tables:

- A run's value is its test Spearman; on a dataset with groups it is the Fisher-z average of
  the groups' Spearman (group tables also show each group).
- Within one seed, a cell's runs (initialisations; folds, then tasks for k-fold tables) are
  averaged through Fisher's z. A seed counts for a cell only when all its runs finished.
- mean ± std: over seeds (sample standard deviation); **bold**: the best mean of the column.
- Δ vs aa: paired by seed (same labeled subset, initialisation indices, folds, tasks and
  target): mean per-seed difference and its 95% Student-t interval over seeds.
- n: seeds in the mean; s/run: seconds of training and evaluation per run (data loading excluded).
- paper: the published number, shown when the dataset is the one the paper reports.
"""


def build_report(directory: str | os.PathLike) -> Path:
    """Write report.md, results.csv and the figures of ``directory`` from its cache alone."""
    directory = Path(directory)
    manifests = run_cache.read_manifests(directory)
    if not manifests:
        raise S4AQAError(f"{directory}: no reproduction found (no manifests/ folder); run "
                         "`s4aqa reproduce PROTOCOL --out DIR` first")
    order = PROTOCOLS.in_order()
    manifests.sort(key=lambda m: (order.index(m["protocol"]) if m["protocol"] in order
                                  else len(order), m["dataset"]))
    cache = run_cache.RunCache(directory)
    figures = Figures(directory)
    lines = [HEADER]
    all_rows: list[Row] = []
    for manifest in manifests:
        if manifest["protocol"] not in PROTOCOLS:
            lines += [f"## {manifest['protocol']} ({manifest['dataset']})", "",
                      "Unknown protocol in this version of s4aqa; see results.csv.", ""]
            continue
        rows = load_rows(manifest, cache)
        all_rows += rows
        lines += write_section(PROTOCOLS.get(manifest["protocol"]), manifest, rows, figures,
                               cache)
    internal = sum(r.internal for r in all_rows if r.status == run_cache.FAILED)
    if internal:
        lines[1:1] = ["", f"**{internal} run(s) failed with an internal error** (a bug, not a "
                      "data problem); their tracebacks are in runs/<key>.json.", ""]
    if figures.note:
        lines += [figures.note, ""]
    io.write_text(directory / RESULTS, results_csv(all_rows))
    path = directory / REPORT
    io.write_text(path, "\n".join(lines).rstrip() + "\n")
    return path
