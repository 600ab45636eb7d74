"""How numbers are written: cell texts, markdown tables (pandas with tabulate) and the
``results.csv`` frame of every run."""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import pandas as pd

from s4aqa.experiments import cache as run_cache
from s4aqa.experiments.report.aggregate import Cell, Row


def fmt(value: float | None, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def fmt_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def fmt_summary(cell: Cell | None) -> str:
    """'mean ± std' over seeds, or why there is no number."""
    if cell is None:
        return "—"
    s = cell.summary
    if s is None:
        if cell.rows and all(r.status == run_cache.SKIPPED for r in cell.rows):
            return "skipped"
        if cell.count(run_cache.FAILED):
            return "failed"
        return "undefined" if cell.undefined else "—"
    text = fmt(s.mean) if s.n == 1 else f"{s.mean:.3f} ± {s.std:.3f}"
    return text + (f" ({cell.undefined} run(s) undefined)" if cell.undefined else "")


def fmt_paired(cell: Cell, reference: Cell | None) -> str:
    if reference is None:
        return "—"
    diff = cell.against(reference)
    if diff is None:
        return "n/a"
    return str(diff)


def bold_best(texts: list[str], means: list[float | None]) -> list[str]:
    valid = [m for m in means if m is not None and math.isfinite(m)]
    if len(valid) < 2:
        return texts
    best = max(valid)
    return [f"**{t}**" if m is not None and m == best else t for t, m in zip(texts, means)]


def pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def target_name(target: str | None) -> str:
    return "default target" if target is None else str(target)


def norm(name: Any) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def markdown(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A GitHub markdown table (tabulate's pipe format, through pandas), as lines."""
    def clean(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    frame = pd.DataFrame([[clean(c) for c in row] for row in rows],
                         columns=[clean(h) for h in header])
    return frame.to_markdown(index=False, tablefmt="pipe", disable_numparse=True).splitlines()


CSV_COLUMNS = ["protocol", "dataset", "target", "task", "fold", "method", "options",
               "label_ratio", "unlabeled_share", "seed", "init", "test_spearman",
               "test_spearman_pooled",
               "test_mae", "test_coverage", "test_interval_width", "test_interval_width_relative",
               "val_spearman", "n_labeled", "n_unlabeled", "n_test", "seconds", "status",
               "message", "key"]


def results_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """One row per run: where it sits, its numbers and its status (``results.csv``)."""
    groups = sorted({g for r in rows for g in (r.metrics.get("test_spearman_per_group") or {})})
    records = []
    for r in rows:
        c, m = r.config, r.metrics
        per_group = m.get("test_spearman_per_group") or {}
        records.append({
            "protocol": r.spec.protocol, "dataset": c.dataset, "target": c.target,
            "task": c.task, "fold": c.fold, "method": c.method,
            "options": json.dumps(r.spec.overrides, sort_keys=True, separators=(",", ":")),
            "label_ratio": repr(float(c.label_ratio)),
            "unlabeled_share": repr(float(c.unlabeled_share)), "seed": c.seed, "init": c.init,
            "test_spearman": m.get("test_spearman"),
            **{f"spearman_{g}": per_group.get(g) for g in groups},
            "test_spearman_pooled": m.get("test_spearman_pooled"), "test_mae": m.get("test_mae"),
            "test_coverage": m.get("test_coverage"),
            "test_interval_width": m.get("test_interval_width"),
            "test_interval_width_relative": m.get("test_interval_width_relative"),
            "val_spearman": m.get("val_spearman"), "n_labeled": m.get("n_labeled"),
            "n_unlabeled": m.get("n_unlabeled"), "n_test": m.get("n_test"),
            "seconds": r.seconds, "status": r.status, "message": r.message.replace("\n", " "),
            "key": r.key})
    after = CSV_COLUMNS.index("test_spearman") + 1  # each group's Spearman follows the average
    columns = CSV_COLUMNS[:after] + [f"spearman_{g}" for g in groups] + CSV_COLUMNS[after:]
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.astype({name: "Int64" for name in ("fold", "n_labeled", "n_unlabeled",
                                                    "n_test")})


def results_csv(rows: Sequence[Row]) -> str:
    return results_frame(rows).to_csv(index=False, float_format="%.6f", lineterminator="\n")
