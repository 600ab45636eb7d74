"""The report of a reproduction folder, rebuilt from its cache alone.

``build_report(DIR)`` reads ``DIR/manifests/*.json`` (which runs each protocol expanded to)
and ``DIR/runs/<key>.json`` (the finished runs), and writes ``DIR/report.md`` (one section per
protocol and dataset, one table per target and label ratio), the figures as PNG beside it, and
``DIR/results.csv`` with one row per run. Nothing is trained or loaded from the dataset.

How numbers are combined (also stated at the top of the report):

- a run's value is its test Spearman; on a dataset with groups, the Fisher-z average of the
  groups' Spearman (``test_spearman``), and each group's own value in group tables;
- within one seed, the runs of a cell (its initialisations; for k-fold its folds, then its
  tasks) are averaged through Fisher's z; a seed counts for a cell only when all of that
  cell's runs under the seed finished;
- mean ± std is over seeds (sample standard deviation);
- the paired difference against ``aa`` compares per-seed values on the seeds both have: the
  same labeled subset, initialisation indices, folds, tasks and target, so only the method
  differs; mean and 95% Student-t interval over seeds.
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from s4aqa import io
from s4aqa.engine.metrics import fisher_z_mean, spearman
from s4aqa.errors import S4AQAError
from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.protocols import PROTOCOLS, Protocol, RunSpec
from s4aqa.experiments.stats import paired_difference, summarise

MISSING = "missing"
REPORT = "report.md"
RESULTS = "results.csv"
KNN = 10


# ---- loading -----------------------------------------------------------------------------------
@dataclass
class Row:
    """One run of a manifest, with its record (or status 'missing' when not run yet)."""

    spec: RunSpec
    key: str
    status: str
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    internal: bool = False

    @property
    def value(self) -> float | None:
        value = self.metrics.get("test_spearman") if self.status == run_cache.OK else None
        return None if value is None or not math.isfinite(value) else float(value)

    def group_value(self, group: str) -> float | None:
        if self.status != run_cache.OK:
            return None
        value = (self.metrics.get("test_spearman_per_group") or {}).get(group)
        return None if value is None else float(value)

    @property
    def variant_key(self) -> tuple:
        return tuple(sorted(self.spec.variant.items()))


def load_rows(manifest: Mapping[str, Any], cache: run_cache.RunCache) -> list[Row]:
    rows = []
    for values in manifest["runs"]:
        spec = RunSpec.from_dict(values)
        key = values.get("key") or spec.key
        record = cache.load(key)
        if record is None:
            rows.append(Row(spec, key, MISSING))
            continue
        rows.append(Row(spec, key, record.get("status", run_cache.FAILED),
                        record.get("message", ""), record.get("metrics") or {},
                        record.get("seconds"), bool(record.get("internal"))))
    return rows


# ---- combining ---------------------------------------------------------------------------------
def seed_values(rows: Iterable[Row], value: Callable[[Row], float | None]) -> dict[int, float]:
    """Per seed, the Fisher-z average of ``value`` over the seed's runs (all must be ok)."""
    by_seed: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_seed[row.spec.seed].append(row)
    out = {}
    for seed, members in sorted(by_seed.items()):
        values = [value(r) for r in members]
        if values and all(v is not None for v in values):
            out[seed] = fisher_z_mean(values)
    return out


def combine_seedwise(parts: Sequence[Mapping[int, float]]) -> dict[int, float]:
    """Fisher-z average across ``parts`` (e.g. tasks), on the seeds every part has."""
    if not parts:
        return {}
    seeds = set(parts[0])
    for part in parts[1:]:
        seeds &= set(part)
    return {s: fisher_z_mean([p[s] for p in parts]) for s in sorted(seeds)}


@dataclass
class Cell:
    """One method (and variant) in one table: per-seed values and run bookkeeping."""

    values: dict[int, float]
    rows: list[Row]

    @property
    def summary(self):
        return summarise(self.values.values()) if self.values else None

    @property
    def seconds(self) -> float | None:
        times = [r.seconds for r in self.rows if r.status == run_cache.OK and r.seconds is not None]
        return float(np.mean(times)) if times else None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)


def fmt(value: float | None, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def fmt_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def fmt_summary(cell: Cell) -> str:
    s = cell.summary
    if s is None:
        if cell.rows and all(r.status == run_cache.SKIPPED for r in cell.rows):
            return "skipped"
        if cell.count(run_cache.FAILED):
            return "failed"
        return "—"
    return fmt(s.mean) if s.n == 1 else f"{s.mean:.3f} ± {s.std:.3f}"


def fmt_paired(cell: Cell, reference: Cell | None) -> str:
    if reference is None:
        return "—"
    seeds = sorted(set(cell.values) & set(reference.values))
    if not seeds:
        return "n/a"
    diff = paired_difference([cell.values[s] for s in seeds], [reference.values[s] for s in seeds])
    if diff.n < 2:
        return f"{fmt(diff.mean, True)} (1 seed, no interval)"
    return f"{fmt(diff.mean, True)} [{fmt(diff.low, True)}, {fmt(diff.high, True)}]"


def bold_best(texts: list[str], means: list[float | None]) -> list[str]:
    valid = [m for m in means if m is not None and math.isfinite(m)]
    if len(valid) < 2:
        return texts
    best = max(valid)
    return [f"**{t}**" if m is not None and m == best else t for t, m in zip(texts, means)]


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def clean(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(clean(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return lines


def norm(name: Any) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def target_name(target: str | None) -> str:
    return "default target" if target is None else str(target)


# ---- the report --------------------------------------------------------------------------------
class ReportBuilder:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cache = run_cache.RunCache(directory)
        self.figures_ok = True
        self.figure_note = ""

    # tables -------------------------------------------------------------------------------
    def section(self, manifest: Mapping[str, Any], rows: list[Row]) -> list[str]:
        protocol = PROTOCOLS.get(manifest["protocol"])
        if protocol is None:
            return [f"## {manifest['protocol']} ({manifest['dataset']})", "",
                    "Unknown protocol in this version of s4aqa; see results.csv.", ""]
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
        if protocol.note:
            lines += [protocol.note, ""]
        paper = protocol.paper if manifest["dataset"] == protocol.paper_dataset else None
        kind = {"table": self.table, "groups": self.group_table, "kfold": self.kfold_table,
                "tsne": self.tsne, "grid": self.grid, "curve": self.curve}[protocol.kind]
        lines += kind(protocol, manifest, rows, paper)
        lines += self.problems(protocol, rows)
        return lines

    @staticmethod
    def by(rows: Iterable[Row], *fields: str) -> dict[tuple, list[Row]]:
        out: dict[tuple, list[Row]] = defaultdict(list)
        for row in rows:
            out[tuple(getattr(row.spec, f) for f in fields)].append(row)
        return out

    @staticmethod
    def ordered(rows: list[Row], field_name: str) -> list:
        return list(dict.fromkeys(getattr(r.spec, field_name) for r in rows))

    def cells(self, rows: list[Row], value=lambda r: r.value) -> dict[str, Cell]:
        return {m: Cell(seed_values(members, value), members)
                for (m,), members in self.by(rows, "method").items()}

    def table(self, protocol: Protocol, manifest, rows: list[Row], paper) -> list[str]:
        lines = []
        methods = self.ordered(rows, "method")
        for (target, ratio), members in self.by(rows, "target", "label_ratio").items():
            cells = self.cells(members)
            reference = cells.get(protocol.reference)
            header = ["method", "test Spearman (mean ± std)",
                      f"Δ vs {protocol.reference} [95% CI]", "n", "s/run"]
            if paper is not None:
                header.append("paper")
            texts, means, body = [], [], []
            for method in methods:
                cell = cells.get(method)
                if cell is None:
                    continue
                texts.append(fmt_summary(cell))
                means.append(cell.summary.mean if cell.summary else None)
                row = [protocol.label(method), None,
                       "—" if method == protocol.reference else fmt_paired(cell, reference),
                       str(len(cell.values)), fmt_seconds(cell.seconds)]
                if paper is not None:
                    row.append(fmt(paper.get(ratio, {}).get(method)).replace("n/a", ""))
                body.append(row)
            for row, text in zip(body, bold_best(texts, means)):
                row[1] = text
            lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
            lines += md_table(header, body) + [""]
        return lines

    def _grouped_table(self, protocol, rows, paper, columns: list[tuple[str, str]],
                       column_values: Callable[[list[Row]], dict[str, dict[int, float]]]):
        """A table with one column per group/task and an 'avg' column (seedwise values)."""
        lines = []
        methods = self.ordered(rows, "method")
        for (target, ratio), members in self.by(rows, "target", "label_ratio").items():
            per_method = {}
            for (method,), method_rows in self.by(members, "method").items():
                values = column_values(method_rows)
                per_method[method] = {c: Cell(v, method_rows) for c, v in values.items()}
            reference = per_method.get(protocol.reference, {}).get("avg")
            header = (["method"] + [title for _, title in columns] + ["avg (Fisher z)",
                      f"Δ vs {protocol.reference} [95% CI]", "n", "s/run"])
            if paper is not None:
                header.append("paper (" + "/".join([t for _, t in columns] + ["avg"]) + ")")
            present = [m for m in methods if m in per_method]
            table = [[protocol.label(m)] for m in present]
            for column in [c for c, _ in columns] + ["avg"]:
                cells = [per_method[m].get(column) for m in present]
                texts = [fmt_summary(c) if c is not None else "—" for c in cells]
                means = [c.summary.mean if c is not None and c.summary else None for c in cells]
                for line, text in zip(table, bold_best(texts, means)):
                    line.append(text)
            for line, method in zip(table, present):
                avg = per_method[method]["avg"]
                line += ["—" if method == protocol.reference else fmt_paired(avg, reference),
                         str(len(avg.values)), fmt_seconds(avg.seconds)]
                if paper is not None:
                    published = paper.get(ratio, {}).get(method)
                    line.append("" if not published else "/".join(
                        fmt(published.get(norm(c))) for c, _ in columns + [("avg", "")]))
            lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
            lines += md_table(header, table) + [""]
        return lines

    def group_table(self, protocol, manifest, rows, paper) -> list[str]:
        groups = list(manifest.get("groups") or [])
        if not groups:
            seen = {g for r in rows for g in (r.metrics.get("test_spearman_per_group") or {})}
            groups = sorted(seen)

        def values(method_rows):
            out = {g: seed_values(method_rows, lambda r, g=g: r.group_value(g)) for g in groups}
            out["avg"] = seed_values(method_rows, lambda r: r.value)
            return out

        lines = []
        if not groups:
            lines += ["The dataset has no groups: the average is the Spearman over all test "
                      "videos.", ""]
        return lines + self._grouped_table(protocol, rows, paper, [(g, g) for g in groups], values)

    def kfold_table(self, protocol, manifest, rows, paper) -> list[str]:
        tasks = self.ordered(rows, "task")

        def values(method_rows):
            by_task = self.by(method_rows, "task")
            out = {str(t): seed_values(by_task.get((t,), []), lambda r: r.value) for t in tasks}
            out["avg"] = combine_seedwise([out[str(t)] for t in tasks])
            return out

        columns = [(str(t), "all videos" if t is None else str(t)) for t in tasks]
        folds = sorted({r.spec.fold for r in rows if r.spec.fold is not None})
        lines = [f"Folds {', '.join(map(str, folds))} per task; a task's value is the Fisher-z "
                 "average of its fold runs.", ""]
        return lines + self._grouped_table(protocol, rows, paper, columns, values)

    def curve(self, protocol, manifest, rows, paper) -> list[str]:
        lines = []
        methods = self.ordered(rows, "method")
        ratios = sorted({r.spec.label_ratio for r in rows})
        for (target,), members in self.by(rows, "target").items():
            series = {}
            for (method, ratio), cell_rows in self.by(members, "method", "label_ratio").items():
                series.setdefault(method, {})[ratio] = Cell(seed_values(cell_rows, lambda r: r.value),
                                                            cell_rows)
            table = []
            for method in methods:
                if method in series:
                    table.append([protocol.label(method)] + [
                        fmt_summary(series[method][r]) if r in series[method] else "—"
                        for r in ratios])
            for i, ratio in enumerate(ratios):  # bold the best of each ratio
                cells = [series[m].get(ratio) for m in methods if m in series]
                means = [c.summary.mean if c is not None and c.summary else None for c in cells]
                column = bold_best([line[i + 1] for line in table], means)
                for line, text in zip(table, column):
                    line[i + 1] = text
            lines += [f"### {target_name(target)}", ""]
            lines += md_table(["method"] + [pct(r) for r in ratios], table) + [""]
            name = self.figure_name(protocol, manifest, target)
            if self.plot_curve(name, series, protocol, target, manifest["dataset"]):
                lines += [f"![{protocol.name} {target_name(target)}]({name})", ""]
        return lines

    def grid(self, protocol, manifest, rows, paper) -> list[str]:
        lines = []
        for (target, ratio), members in self.by(rows, "target", "label_ratio").items():
            grid_rows = [r for r in members if r.spec.variant]
            others = [r for r in members if not r.spec.variant]
            names = sorted({k for r in grid_rows for k in r.spec.variant})
            lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
            if len(names) != 2:
                lines += ["No two-option grid in these runs.", ""]
                continue
            # λ1 (lambda_rcvr) on rows, λ2 (lambda_adv) on columns
            first = "lambda_rcvr" if "lambda_rcvr" in names else names[0]
            second = names[1] if names[0] == first else names[0]
            ys = sorted({r.spec.variant[first] for r in grid_rows})
            xs = sorted({r.spec.variant[second] for r in grid_rows})
            by_point = defaultdict(list)
            for r in grid_rows:
                by_point[(r.spec.variant[first], r.spec.variant[second])].append(r)
            cells = {p: Cell(seed_values(rs, lambda r: r.value), rs) for p, rs in by_point.items()}
            means = np.full((len(ys), len(xs)), np.nan)
            table = []
            flat_texts, flat_means = [], []
            for i, y in enumerate(ys):
                for j, x in enumerate(xs):
                    cell = cells.get((y, x))
                    flat_texts.append(fmt_summary(cell) if cell else "—")
                    flat_means.append(cell.summary.mean if cell and cell.summary else None)
                    if flat_means[-1] is not None:
                        means[i, j] = flat_means[-1]
            flat_texts = bold_best(flat_texts, flat_means)
            for i, y in enumerate(ys):
                table.append([f"{y:g}"] + flat_texts[i * len(xs):(i + 1) * len(xs)])
            lines += md_table([f"{first} \\ {second}"] + [f"{x:g}" for x in xs], table) + [""]
            for (method,), method_rows in self.by(others, "method").items():
                cell = Cell(seed_values(method_rows, lambda r: r.value), method_rows)
                lines += [f"Reference {protocol.label(method)}: {fmt_summary(cell)} "
                          f"(n = {len(cell.values)}).", ""]
            name = self.figure_name(protocol, manifest, target, ratio,
                                    len({r.spec.label_ratio for r in rows}) > 1)
            if self.plot_grid(name, means, ys, xs, first, second, target, ratio,
                              manifest["dataset"]):
                lines += [f"![{protocol.name} {target_name(target)}]({name})", ""]
        return lines

    def tsne(self, protocol, manifest, rows, paper) -> list[str]:
        lines = []
        methods = self.ordered(rows, "method")
        for (target, ratio), members in self.by(rows, "target", "label_ratio").items():
            panels, table = [], []
            for method in methods:
                method_rows = [r for r in members if r.spec.method == method]
                if not method_rows:
                    continue
                cell = Cell(seed_values(method_rows, lambda r: r.value), method_rows)
                shown = sorted((r for r in method_rows if r.status == run_cache.OK),
                               key=lambda r: (r.spec.seed, r.spec.init))
                arrays = self.cache.load_arrays(shown[0].key) if shown else None
                consistency = None
                if arrays is not None and len(arrays.get("score", ())) > 2:
                    consistency = neighbour_consistency(arrays["embedding"], arrays["score"])
                    panels.append((protocol.label(method), arrays, shown[0]))
                table.append([protocol.label(method), fmt_summary(cell), str(len(cell.values)),
                              fmt(consistency)])
            lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
            lines += md_table(["method", "test Spearman (mean ± std)", "n",
                               f"kNN score consistency (k={KNN}, first seed)"], table) + [""]
            name = self.figure_name(protocol, manifest, target, ratio,
                                    len({r.spec.label_ratio for r in rows}) > 1)
            if panels and self.plot_tsne(name, panels, target, ratio, manifest["dataset"]):
                seed = panels[0][2].spec.seed
                lines += [f"![{protocol.name} {target_name(target)}]({name})", "",
                          f"Unlabeled training videos of seed {seed}, coloured by their true "
                          "score (never seen by the model).", ""]
        return lines

    def problems(self, protocol: Protocol, rows: list[Row]) -> list[str]:
        lines = []
        for status, title in ((run_cache.FAILED, "Failed runs"), (run_cache.SKIPPED, "Skipped runs")):
            groups: dict[tuple, list[Row]] = defaultdict(list)
            for row in rows:
                if row.status == status:
                    groups[(row.spec.method, row.message)].append(row)
            if not groups:
                continue
            table = []
            for (method, message), members in groups.items():
                where = sorted({f"{target_name(r.spec.target)} {pct(r.spec.label_ratio)}"
                                for r in members})
                table.append([protocol.label(method), str(len(members)),
                              ", ".join(where[:4]) + (" ..." if len(where) > 4 else ""),
                              message[:300]])
            lines += [f"**{title}** ({sum(len(m) for m in groups.values())}):", ""]
            lines += md_table(["method", "runs", "where", "message"], table) + [""]
        return lines

    # figures ------------------------------------------------------------------------------
    def figure_name(self, protocol, manifest, target, ratio=None, with_ratio=False) -> str:
        parts = [protocol.name, manifest["dataset"]]
        if target is not None:
            parts.append(str(target))
        if with_ratio and ratio is not None:
            parts.append(f"{ratio * 100:g}pct")
        return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in "-".join(parts)) + ".png"

    def pyplot(self):
        if not self.figures_ok:
            return None
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            self.figures_ok = False
            self.figure_note = ("Figures were not drawn: matplotlib is not installed "
                                "(pip install -e \".[report]\").")
            return None
        return plt

    def save(self, fig, name: str) -> None:
        buffer = _io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        io.write_bytes(self.directory / name, buffer.getvalue())

    def plot_curve(self, name, series, protocol, target, dataset) -> bool:
        plt = self.pyplot()
        if plt is None:
            return False
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        handles, labels = [], []
        for method, by_ratio in series.items():
            points = [(r, c.summary) for r, c in sorted(by_ratio.items()) if c.summary is not None]
            if not points:
                continue
            x = np.array([r * 100 for r, _ in points])
            mean = np.array([s.mean for _, s in points])
            std = np.array([s.std for _, s in points])
            line, = ax.plot(x, mean, marker="o", linewidth=2.2 if method == "s4aqa" else 1.4)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
            handles.append(line)
            labels.append(protocol.label(method))
        if not handles:
            plt.close(fig)
            return False
        ax.set_xlabel("labeled proportion of the training split (%)")
        ax.set_ylabel("test Spearman")
        ax.set_title(f"{dataset} {target_name(target)}: Spearman vs labels (band: ±1 std)")
        ax.grid(alpha=0.3)
        ax.legend(handles, labels, fontsize=8)
        self.save(fig, name)
        plt.close(fig)
        return True

    def plot_grid(self, name, means, ys, xs, first, second, target, ratio, dataset) -> bool:
        plt = self.pyplot()
        if plt is None or np.all(np.isnan(means)):
            return False
        fig, ax = plt.subplots(figsize=(1.3 * len(xs) + 2.0, 1.0 * len(ys) + 1.6))
        image = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", origin="lower",
                          aspect="auto")
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not np.isnan(means[i, j]):
                    ax.text(j, i, f"{means[i, j]:.3f}", ha="center", va="center", fontsize=8,
                            color="white" if means[i, j] < np.nanmean(means) else "black")
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
        ax.set_xlabel(f"λ2 ({second})" if second == "lambda_adv" else second)
        ax.set_ylabel(f"λ1 ({first})" if first == "lambda_rcvr" else first)
        ax.set_title(f"{dataset} {target_name(target)}, {pct(ratio)} labels: test Spearman")
        fig.colorbar(image, ax=ax)
        self.save(fig, name)
        plt.close(fig)
        return True

    def plot_tsne(self, name, panels, target, ratio, dataset) -> bool:
        plt = self.pyplot()
        if plt is None:
            return False
        low = min(float(np.min(a["score"])) for _, a, _ in panels)
        high = max(float(np.max(a["score"])) for _, a, _ in panels)
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4), squeeze=False,
                                 layout="constrained")
        for ax, (label, arrays, row) in zip(axes[0], panels):
            points = tsne_2d(arrays["embedding"])
            scatter = ax.scatter(points[:, 0], points[:, 1], c=arrays["score"], cmap="viridis",
                                 vmin=low, vmax=high, s=10)
            ax.set_title(f"{label}\ntest Spearman {fmt(row.value)}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(scatter, ax=list(axes[0]), label="true score")
        fig.suptitle(f"{dataset} {target_name(target)}, {pct(ratio)} labels: t-SNE of the "
                     "unlabeled representations", fontsize=11)
        self.save(fig, name)
        plt.close(fig)
        return True


def tsne_2d(embedding: np.ndarray) -> np.ndarray:
    from sklearn.manifold import TSNE

    embedding = np.asarray(embedding, np.float64)
    n = len(embedding)
    if n < 4:
        return np.zeros((n, 2)) if embedding.shape[1] < 2 else embedding[:, :2]
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0).fit_transform(embedding)


def neighbour_consistency(embedding: np.ndarray, scores: np.ndarray, k: int = KNN) -> float:
    """Spearman between each video's score and the mean score of its k nearest neighbours
    in representation space: how much the representation is organised by quality."""
    from sklearn.neighbors import NearestNeighbors

    embedding = np.asarray(embedding, np.float64)
    scores = np.asarray(scores, np.float64)
    k = min(k, len(scores) - 1)
    if k < 1:
        return float("nan")
    _, index = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding)
    return spearman(scores[index[:, 1:]].mean(axis=1), scores)


# ---- results.csv -----------------------------------------------------------------------------
CSV_COLUMNS = ["protocol", "dataset", "target", "task", "fold", "method", "options",
               "label_ratio", "seed", "init", "test_spearman", "test_spearman_pooled",
               "val_spearman", "n_labeled", "n_unlabeled", "n_test", "seconds", "status",
               "message", "key"]


def results_csv(rows: Sequence[Row]) -> str:
    groups = sorted({g for r in rows for g in (r.metrics.get("test_spearman_per_group") or {})})
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS[:11] + [f"spearman_{g}" for g in groups] + CSV_COLUMNS[11:])
    for r in rows:
        s, m = r.spec, r.metrics

        def num(value):
            return "" if value is None else (f"{value:.6f}" if isinstance(value, float) else value)

        per_group = m.get("test_spearman_per_group") or {}
        writer.writerow(
            [s.protocol, s.dataset, "" if s.target is None else s.target,
             "" if s.task is None else s.task, "" if s.fold is None else s.fold, s.method,
             json.dumps(s.overrides, sort_keys=True, separators=(",", ":")), s.label_ratio,
             s.seed, s.init, num(m.get("test_spearman"))]
            + [num(per_group.get(g)) for g in groups]
            + [num(m.get("test_spearman_pooled")), num(m.get("val_spearman")),
               num(m.get("n_labeled")), num(m.get("n_unlabeled")), num(m.get("n_test")),
               num(r.seconds), r.status, r.message.replace("\n", " "), r.key])
    return buffer.getvalue()


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
    order = list(PROTOCOLS)
    manifests.sort(key=lambda m: (order.index(m["protocol"]) if m["protocol"] in order
                                  else len(order), m["dataset"]))
    builder = ReportBuilder(directory)
    cache = builder.cache
    lines = [HEADER]
    all_rows: list[Row] = []
    internal = 0
    for manifest in manifests:
        rows = load_rows(manifest, cache)
        all_rows += rows
        internal += sum(r.internal for r in rows if r.status == run_cache.FAILED)
        lines += builder.section(manifest, rows)
    if internal:
        lines[1:1] = ["", f"**{internal} run(s) failed with an internal error** (a bug, not a "
                      "data problem); their tracebacks are in runs/<key>.json.", ""]
    if builder.figure_note:
        lines += [builder.figure_note, ""]
    io.write_text(directory / RESULTS, results_csv(all_rows))
    path = directory / REPORT
    io.write_text(path, "\n".join(lines).rstrip() + "\n")
    return path
