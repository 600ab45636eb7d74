"""The `pool` section: test Spearman against the size of the unlabeled pool.

Runs that sweep the pool carry their share in ``variant["unlabeled_share"]`` (``protocols``);
the others (the reference ``aa``, which reads no unlabeled video) run once per seed and are
shown as a flat line. Per target and label ratio: a table with one column per pool size (the
number of unlabeled videos the runs read, and the share), the paired gain of the largest pool
over the smallest (pool 0) of the same method, and the largest pool against the reference;
and a figure of the same numbers.
"""

from __future__ import annotations

from s4aqa.experiments.report.aggregate import Cell, Row, by, ordered
from s4aqa.experiments.report.sections import SECTIONS, Section
from s4aqa.experiments.report.tables import (
    bold_best,
    fmt_paired,
    fmt_summary,
    markdown,
    pct,
    target_name,
)
from s4aqa.experiments.stats import summarise

SHARE = "unlabeled_share"


def pool_size(rows: list[Row]) -> list[int]:
    """The numbers of unlabeled videos the finished runs of one share read (one, normally:
    the draw keeps round(share * n) of the same n under every seed)."""
    return sorted({int(r.metrics["n_unlabeled"]) for r in rows
                   if r.value is not None and r.metrics.get("n_unlabeled") is not None})


def size_text(sizes: list[int]) -> str:
    if not sizes:
        return "?"
    return str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"


def seedwise_gain(cell: Cell | None, base: Cell | None) -> str:
    """'std of the per-seed differences, seeds where it is positive / seeds paired'."""
    if cell is None or base is None:
        return "—"
    seeds = sorted(set(cell.values) & set(base.values))
    if not seeds:
        return "n/a"
    diffs = [cell.values[s] - base.values[s] for s in seeds]
    return f"{summarise(diffs).std:.3f}, {sum(d > 0 for d in diffs)}/{len(diffs)}"


@SECTIONS.register("pool")
def pool(s: Section) -> list[str]:
    """What more unlabeled videos add: each method's Spearman at every pool size, the gain of
    the largest pool over the smallest, the reference as a flat line, and the figure."""
    lines = []
    protocol = s.protocol
    for (target, ratio), members in by(s.rows, "target", "label_ratio").items():
        swept = [r for r in members if SHARE in r.spec.variant]
        flat = [r for r in members if SHARE not in r.spec.variant]
        shares = sorted({r.config.unlabeled_share for r in swept})
        series: dict[str, dict[float, Cell]] = {
            method: {share: Cell.of(rows) for (share,), rows in by(method_rows, SHARE).items()}
            for (method,), method_rows in by(swept, "method").items()}
        flat_cells = {method: Cell.of(rows) for (method,), rows in by(flat, "method").items()}
        reference = flat_cells.get(protocol.reference)
        sizes = {share: pool_size([r for r in swept if r.config.unlabeled_share == share])
                 for share in shares}
        lines += [f"### {target_name(target)}, {pct(ratio)} labels", ""]
        if not shares:
            lines += [("No run grows the unlabeled pool here (no method that reads unlabeled "
                       "videos)."), ""]
        else:
            smallest, largest = shares[0], shares[-1]
            small, large = size_text(sizes[smallest]), size_text(sizes[largest])
            present = [m for m in ordered(swept, "method") if m in series]
            body = [[protocol.label(m)] for m in present]
            for share in shares:  # bold the best of each pool size
                column = [series[m].get(share) for m in present]
                texts = bold_best([fmt_summary(c) for c in column],
                                  [c.mean if c is not None else None for c in column])
                for line, text in zip(body, texts):
                    line.append(text)
            for line, method in zip(body, present):
                top, bottom = series[method].get(largest), series[method].get(smallest)
                line += [fmt_paired(top, bottom) if top is not None else "—",
                         seedwise_gain(top, bottom),
                         fmt_paired(top, reference) if top is not None else "—",
                         str(len(top.values)) if top is not None else "0"]
            header = (["method \\ unlabeled videos (share)"]
                      + [f"{size_text(sizes[x])} ({pct(x)})" for x in shares]
                      + [f"Δ {large} − {small} [95% CI]", "std of Δ, seeds Δ > 0",
                         f"Δ {large} vs {protocol.reference} [95% CI]", "n"])
            lines += markdown(header, body) + [""]
        for method, cell in flat_cells.items():
            lines += [(f"Reference {protocol.label(method)} (reads no unlabeled video, so one "
                       f"run per seed): {fmt_summary(cell)} (n = {len(cell.values)})."), ""]
        name = s.figure(target, ratio)
        points = {share: sum(n) / len(n) for share, n in sizes.items() if n}  # x of the figure
        if shares and s.figures.pool(name, series, points, reference, protocol.reference,
                                     protocol.label, target, ratio, s.dataset):
            lines += [f"![{protocol.name} {target_name(target)}]({name})", ""]
    return lines
