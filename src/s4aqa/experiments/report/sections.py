"""One report section per protocol, written by the section of the protocol's kind.

``SECTIONS`` maps a protocol kind (table, groups, kfold, tsne, grid, curve; pool, in
``report.pool``) to the function that writes its tables and figures; a protocol names its
kind, and a new kind is one function registered here or in a module of its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import Protocol
from s4aqa.experiments.report.aggregate import (
    MISSING,
    Cell,
    Row,
    by,
    combine_seedwise,
    ordered,
    seed_values,
)
from s4aqa.experiments.report.figures import (
    FIGURE_VIDEOS,
    KNN,
    Figures,
    at_most,
    figure_name,
    neighbour_consistency,
)
from s4aqa.experiments.report.tables import (
    bold_best,
    fmt,
    fmt_paired,
    fmt_seconds,
    fmt_summary,
    markdown,
    norm,
    pct,
    target_name,
)
from s4aqa.registry import Registry

SECTIONS = Registry("protocol kind")


@dataclass
class Section:
    """What a section writer reads: the protocol, its manifest and runs, the published
    numbers (when the dataset is the paper's), the figures and the cache (for extras)."""

    protocol: Protocol
    manifest: Mapping[str, Any]
    rows: list[Row]
    paper: Mapping[float, Mapping[str, Any]] | None
    figures: Figures
    cache: run_cache.RunCache

    @property
    def dataset(self) -> str:
        return self.manifest["dataset"]

    def figure(self, target, ratio=None) -> str:
        several = len({r.config.label_ratio for r in self.rows}) > 1
        return figure_name(self.protocol.name, self.dataset, target, ratio, several)


def write_section(protocol: Protocol, manifest: Mapping[str, Any], rows: list[Row],
                  figures: Figures, cache: run_cache.RunCache) -> list[str]:
    """The protocol's heading, what was run, its kind's tables and figures, and the runs that
    failed or were skipped."""
    counts = {s: sum(r.status == s for r in rows)
              for s in (run_cache.OK, run_cache.FAILED, run_cache.SKIPPED, MISSING)}
    lines = [f"## {protocol.name} on {manifest['dataset']}: {protocol.title}", ""]
    info = [f"dataset `{manifest['dataset']}`"
            + (f" from `{manifest['root']}`" if manifest.get("root") else ""),
            f"{manifest['seeds']} seed(s) x {manifest['inits']} initialisation(s)",
            f"{len(rows)} runs: {counts['ok']} ok, {counts['failed']} failed, "
            f"{counts['skipped']} skipped, {counts[MISSING]} not run yet"]
    if manifest.get("holdout"):
        info.append(f"evaluated on {manifest['holdout']} held-out training videos, not on the "
                    "test split (a tuning run: 'test Spearman' below means held-out)")
    if manifest.get("shift"):
        labeled, unlabeled = manifest["shift"].split(":")
        info.append(f"group shift: labeled videos from {labeled}, unlabeled from {unlabeled}")
    if manifest.get("options"):
        info.append("options " + ", ".join(f"`{k}={v}`" for k, v in manifest["options"].items()))
    lines += ["; ".join(info) + ".", ""]
    if manifest.get("missing_methods"):
        lines += [f"Not registered in this installation, so not run: "
                  f"{', '.join(manifest['missing_methods'])}.", ""]
    paper = protocol.paper if manifest["dataset"] == protocol.paper_dataset else None
    note = " ".join(t for t in (protocol.note, protocol.paper_note if paper else "") if t)
    if note:
        lines += [note, ""]
    section = Section(protocol, manifest, rows, paper, figures, cache)
    lines += SECTIONS.get(protocol.kind)(section)
    return lines + problems(protocol, rows)


def problems(protocol: Protocol, rows: list[Row]) -> list[str]:
    lines = []
    for status, title in ((run_cache.FAILED, "Failed runs"), (run_cache.SKIPPED, "Skipped runs")):
        groups: dict[tuple, list[Row]] = defaultdict(list)
        for row in rows:
            if row.status == status:
                groups[(row.config.method, row.message)].append(row)
        if not groups:
            continue
        table = []
        for (method, message), members in groups.items():
            where = sorted({f"{target_name(r.config.target)} {pct(r.config.label_ratio)}"
                            for r in members})
            table.append([protocol.label(method), str(len(members)),
                          ", ".join(where[:4]) + (" ..." if len(where) > 4 else ""),
                          message[:300]])
        lines += [f"**{title}** ({sum(len(m) for m in groups.values())}):", ""]
        lines += markdown(["method", "runs", "where", "message"], table) + [""]
    return lines


def cells(rows: list[Row], value: Callable[[Row], float | None] = lambda r: r.value
          ) -> dict[str, Cell]:
    return {m: Cell.of(members, value) for (m,), members in by(rows, "method").items()}


@SECTIONS.register("table")
def table(s: Section) -> list[str]:
    """One table per target and label ratio: each method's mean ± std, its paired difference
    against the reference, seeds, seconds per run, and the published number."""
    lines = []
    protocol = s.protocol
    methods = ordered(s.rows, "method")
    for (target, ratio), members in by(s.rows, "target", "label_ratio").items():
        method_cells = cells(members)
        reference = method_cells.get(protocol.reference)
        errors = {m: Cell.of(rows, lambda r: r.mae, np.mean)
                  for (m,), rows in by(members, "method").items()}
        # the prediction intervals (methods.intervals): empirical coverage on the test
        # videos and mean width in score units, mean ± std over seeds
        coverage = {m: Cell.of(rows, lambda r: r.metric("test_coverage"), np.mean)
                    for (m,), rows in by(members, "method").items()}
        width = {m: Cell.of(rows, lambda r: r.metric("test_interval_width"), np.mean)
                 for (m,), rows in by(members, "method").items()}
        asked = sorted({float(r.metrics["coverage"]) for r in members
                        if r.metrics.get("coverage") is not None})
        asked_text = "/".join(f"{c:.0%}" for c in asked) if asked else "interval"
        header = ["method", "test Spearman (mean ± std)",
                  f"Δ vs {protocol.reference} [95% CI]", "test MAE",
                  f"{asked_text} coverage", "width", "n", "s/run"]
        if s.paper is not None:
            header.append("paper")
        present = [m for m in methods if m in method_cells]
        texts = bold_best([fmt_summary(method_cells[m]) for m in present],
                          [method_cells[m].mean for m in present])
        body = []
        for method, text in zip(present, texts):
            cell = method_cells[method]
            row = [protocol.label(method), text,
                   "—" if method == protocol.reference else fmt_paired(cell, reference),
                   fmt_summary(errors[method]), fmt_summary(coverage[method]),
                   fmt_summary(width[method]), str(len(cell.values)),
                   fmt_seconds(cell.seconds)]
            if s.paper is not None:
                row.append(fmt(s.paper.get(ratio, {}).get(method)).replace("n/a", ""))
            body.append(row)
        lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
        lines += markdown(header, body) + [""]
    return lines


def _grouped_table(s: Section, columns: list[tuple[str, str]],
                   column_values: Callable[[list[Row]], dict[str, dict[int, float]]]):
    """A table with one column per group/task and an 'avg' column (seedwise values)."""
    lines = []
    protocol = s.protocol
    methods = ordered(s.rows, "method")
    for (target, ratio), members in by(s.rows, "target", "label_ratio").items():
        per_method = {}
        for (method,), method_rows in by(members, "method").items():
            values = column_values(method_rows)
            per_method[method] = {c: Cell(v, method_rows) for c, v in values.items()}
        reference = per_method.get(protocol.reference, {}).get("avg")
        header = (["method"] + [title for _, title in columns] + ["avg (Fisher z)",
                  f"Δ vs {protocol.reference} [95% CI]", "n", "s/run"])
        if s.paper is not None:
            header.append("paper (" + "/".join([t for _, t in columns] + ["avg"]) + ")")
        present = [m for m in methods if m in per_method]
        body = [[protocol.label(m)] for m in present]
        for column in [c for c, _ in columns] + ["avg"]:
            column_cells = [per_method[m].get(column) for m in present]
            texts = bold_best([fmt_summary(c) for c in column_cells],
                              [c.mean if c is not None else None for c in column_cells])
            for line, text in zip(body, texts):
                line.append(text)
        for line, method in zip(body, present):
            avg = per_method[method]["avg"]
            line += ["—" if method == protocol.reference else fmt_paired(avg, reference),
                     str(len(avg.values)), fmt_seconds(avg.seconds)]
            if s.paper is not None:
                published = s.paper.get(ratio, {}).get(method)
                line.append("" if not published else "/".join(
                    fmt(published.get(norm(c))) for c, _ in columns + [("avg", "")]))
        lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
        lines += markdown(header, body) + [""]
    return lines


@SECTIONS.register("groups")
def group_table(s: Section) -> list[str]:
    """Table II: each group's Spearman and their Fisher-z average, one run per seed."""
    groups = list(s.manifest.get("groups") or [])
    if not groups:
        groups = sorted({g for r in s.rows for g in (r.metrics.get("test_spearman_per_group") or {})})

    def values(method_rows):
        out = {g: seed_values(method_rows, lambda r, g=g: r.group_value(g)) for g in groups}
        out["avg"] = seed_values(method_rows)
        return out

    lines = []
    if not groups:
        lines += ["The dataset has no groups: the average is the Spearman over all test "
                  "videos.", ""]
    return lines + _grouped_table(s, [(g, g) for g in groups], values)


@SECTIONS.register("kfold")
def kfold_table(s: Section) -> list[str]:
    """Table III: per task, the Fisher-z average of its folds; then the tasks' average."""
    tasks = ordered(s.rows, "task")

    def values(method_rows):
        by_task = by(method_rows, "task")
        out = {str(t): seed_values(by_task.get((t,), [])) for t in tasks}
        out["avg"] = combine_seedwise([out[str(t)] for t in tasks])
        return out

    columns = [(str(t), "all videos" if t is None else str(t)) for t in tasks]
    folds = sorted({r.config.fold for r in s.rows if r.config.fold is not None})
    lines = [f"Folds {', '.join(map(str, folds))} per task; a task's value is the Fisher-z "
             "average of its fold runs.", ""]
    return lines + _grouped_table(s, columns, values)


@SECTIONS.register("curve")
def curve(s: Section) -> list[str]:
    """Fig. 6: each method's Spearman against the labeled proportion, table and figure."""
    lines = []
    protocol = s.protocol
    methods = ordered(s.rows, "method")
    ratios = sorted({r.config.label_ratio for r in s.rows})
    for (target,), members in by(s.rows, "target").items():
        series: dict[str, dict[float, Cell]] = {}
        for (method, ratio), cell_rows in by(members, "method", "label_ratio").items():
            series.setdefault(method, {})[ratio] = Cell.of(cell_rows)
        present = [m for m in methods if m in series]
        body = [[protocol.label(m)] for m in present]
        for ratio in ratios:  # bold the best of each ratio
            column_cells = [series[m].get(ratio) for m in present]
            texts = bold_best([fmt_summary(c) for c in column_cells],
                              [c.mean if c is not None else None for c in column_cells])
            for line, text in zip(body, texts):
                line.append(text)
        lines += [f"### {target_name(target)}", ""]
        lines += markdown(["method"] + [pct(r) for r in ratios], body) + [""]
        name = s.figure(target)
        if s.figures.curve(name, series, protocol.label, target, s.dataset):
            lines += [f"![{protocol.name} {target_name(target)}]({name})", ""]
    return lines


@SECTIONS.register("grid")
def grid(s: Section) -> list[str]:
    """Fig. 5: mean Spearman over a two-option grid (λ1 on rows, λ2 on columns)."""
    lines = []
    protocol = s.protocol
    for (target, ratio), members in by(s.rows, "target", "label_ratio").items():
        grid_rows = [r for r in members if r.spec.variant]
        others = [r for r in members if not r.spec.variant]
        names = sorted({k for r in grid_rows for k in r.spec.variant})
        lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
        if len(names) != 2:
            lines += ["No two-option grid in these runs.", ""]
            continue
        first = "lambda_rcvr" if "lambda_rcvr" in names else names[0]
        second = names[1] if names[0] == first else names[0]
        ys = sorted({r.spec.variant[first] for r in grid_rows})
        xs = sorted({r.spec.variant[second] for r in grid_rows})
        by_point = defaultdict(list)
        for r in grid_rows:
            by_point[(r.spec.variant[first], r.spec.variant[second])].append(r)
        point_cells = {p: Cell.of(rs) for p, rs in by_point.items()}
        flat = [point_cells.get((y, x)) for y in ys for x in xs]
        means = np.array([np.nan if c is None or c.mean is None else c.mean for c in flat],
                         dtype=float).reshape(len(ys), len(xs))
        texts = bold_best([fmt_summary(c) for c in flat],
                          [c.mean if c is not None else None for c in flat])
        body = [[f"{y:g}"] + texts[i * len(xs):(i + 1) * len(xs)] for i, y in enumerate(ys)]
        lines += markdown([f"{first} \\ {second}"] + [f"{x:g}" for x in xs], body) + [""]
        for (method,), method_rows in by(others, "method").items():
            cell = Cell.of(method_rows)
            lines += [f"Reference {protocol.label(method)}: {fmt_summary(cell)} "
                      f"(n = {len(cell.values)}).", ""]
        name = s.figure(target, ratio)
        if s.figures.grid(name, means, ys, xs, first, second, target, ratio, s.dataset):
            lines += [f"![{protocol.name} {target_name(target)}]({name})", ""]
    return lines


@SECTIONS.register("tsne")
def tsne(s: Section) -> list[str]:
    """Fig. 4: t-SNE of the unlabeled representations of the first seed, and how well a
    video's nearest neighbours in representation space predict its score."""
    lines = []
    protocol = s.protocol
    methods = ordered(s.rows, "method")
    for (target, ratio), members in by(s.rows, "target", "label_ratio").items():
        panels, body, drawn_from = [], [], 0
        for method in methods:
            method_rows = [r for r in members if r.config.method == method]
            if not method_rows:
                continue
            cell = Cell.of(method_rows)
            shown = sorted((r for r in method_rows if r.status == run_cache.OK),
                           key=lambda r: (r.config.seed, r.config.init))
            arrays = s.cache.load_arrays(shown[0].key) if shown else None
            consistency = None
            if arrays is not None and len(arrays.get("score", ())) > 2:
                drawn_from = max(drawn_from, len(arrays["score"]))
                arrays = at_most(arrays, FIGURE_VIDEOS)
                consistency = neighbour_consistency(arrays["embedding"], arrays["score"])
                panels.append((protocol.label(method), arrays, shown[0]))
            body.append([protocol.label(method), fmt_summary(cell), str(len(cell.values)),
                         fmt(consistency)])
        lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
        lines += markdown(["method", "test Spearman (mean ± std)", "n",
                           f"kNN score consistency (k={KNN}, first seed)"], body) + [""]
        name = s.figure(target, ratio)
        if panels and s.figures.tsne(name, panels, target, ratio, s.dataset):
            seed = panels[0][2].config.seed
            lines += [f"![{protocol.name} {target_name(target)}]({name})", "",
                      f"Unlabeled training videos of seed {seed}, coloured by their true "
                      "score (never seen by the model).", ""]
        if drawn_from > FIGURE_VIDEOS:
            lines += [f"The consistency and the figure read a fixed draw of {FIGURE_VIDEOS:,} of "
                      f"the {drawn_from:,} unlabeled videos.", ""]
    return lines
