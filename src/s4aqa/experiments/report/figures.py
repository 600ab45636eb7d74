"""The report's figures (matplotlib, the ``report`` extra): label-ratio curves, unlabeled-pool
curves, λ grids and t-SNE panels, written as PNG beside the report; and what the t-SNE table
reads of the representations."""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors

from s4aqa import io
from s4aqa.experiments.report.tables import fmt, pct, target_name
from s4aqa.training.metrics import spearman

KNN = 10
# t-SNE and the kNN consistency read at most this many unlabeled videos (a fixed draw): both
# grow faster than linearly, and a scatter of more points shows no more
FIGURE_VIDEOS = 5000


def at_most(arrays: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """A run's per-video arrays, cut to a fixed draw of ``count`` videos (in their order)
    when there are more; the same draw for every method of a seed with the same videos."""
    total = len(arrays["score"])
    if total <= count:
        return arrays
    keep = np.sort(np.random.default_rng(0).choice(total, count, replace=False))
    return {name: values[keep] for name, values in arrays.items()}


def tsne_2d(embedding: np.ndarray) -> np.ndarray:
    embedding = np.asarray(embedding, np.float64)
    n = len(embedding)
    if n < 4:
        return np.zeros((n, 2)) if embedding.shape[1] < 2 else embedding[:, :2]
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0).fit_transform(embedding)


def neighbour_consistency(embedding: np.ndarray, scores: np.ndarray, k: int = KNN) -> float:
    """Spearman between each video's score and the mean score of its k nearest neighbours
    in representation space: how much the representation is organised by quality."""
    embedding = np.asarray(embedding, np.float64)
    scores = np.asarray(scores, np.float64)
    k = min(k, len(scores) - 1)
    if k < 1:
        return float("nan")
    _, index = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding)
    return spearman(scores[index[:, 1:]].mean(axis=1), scores)


def figure_name(protocol: str, dataset: str, target, ratio=None, with_ratio=False) -> str:
    parts = [protocol, dataset]
    if target is not None:
        parts.append(str(target))
    if with_ratio and ratio is not None:
        parts.append(f"{ratio * 100:g}pct")
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in "-".join(parts)) + ".png"


class Figures:
    """Draws into ``directory``; without matplotlib, draws nothing and says so once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.note = ""
        try:  # matplotlib is optional (the `report` extra)
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            plt = None
            self.note = ("Figures were not drawn: matplotlib is not installed "
                         "(pip install -e \".[report]\").")
        self.plt = plt

    def save(self, fig, name: str) -> None:
        buffer = _io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        io.write_bytes(self.directory / name, buffer.getvalue())
        self.plt.close(fig)

    def curve(self, name, series, label, target, dataset) -> bool:
        """Mean ± std of each method against the labeled proportion."""
        if self.plt is None:
            return False
        fig, ax = self.plt.subplots(figsize=(6.4, 4.2))
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
            labels.append(label(method))
        if not handles:
            self.plt.close(fig)
            return False
        ax.set_xlabel("labeled proportion of the training split (%)")
        ax.set_ylabel("test Spearman")
        ax.set_title(f"{dataset} {target_name(target)}: Spearman vs labels (band: ±1 std)")
        ax.grid(alpha=0.3)
        ax.legend(handles, labels, fontsize=8)
        self.save(fig, name)
        return True

    def pool(self, name, series, sizes, reference, reference_name, label, target, ratio,
             dataset) -> bool:
        """Mean ± std of each method against the number of unlabeled videos (``sizes``: share
        -> videos), the reference as a dashed horizontal line."""
        if self.plt is None:
            return False
        fig, ax = self.plt.subplots(figsize=(6.4, 4.2))
        drawn = False
        # methods nudged apart along x, so their error bars do not hide each other
        nudge = 0.01 * max(max(sizes.values(), default=0), 1)
        for index, (method, by_share) in enumerate(series.items()):
            points = sorted(((sizes[x], c.summary) for x, c in by_share.items()
                             if x in sizes and c.summary is not None), key=lambda p: p[0])
            if not points:
                continue
            x = np.array([n for n, _ in points]) + (index - (len(series) - 1) / 2) * nudge
            ax.errorbar(x, [p.mean for _, p in points], yerr=[p.std for _, p in points],
                        marker="o", capsize=3, linewidth=2.2 if method == "s4aqa" else 1.4,
                        label=label(method))
            drawn = True
        if reference is not None and reference.summary is not None:
            ax.axhline(reference.summary.mean, color="black", linestyle="--", linewidth=1.2,
                       label=f"{label(reference_name)} (no unlabeled video)")
        if not drawn:
            self.plt.close(fig)
            return False
        ticks = sorted(set(sizes.values()))
        ax.set_xticks(ticks, [f"{n:g}" for n in ticks])
        ax.set_xlabel("unlabeled videos in the training pool (labeled videos fixed per seed)")
        ax.set_ylabel("test Spearman")
        ax.set_title(f"{dataset} {target_name(target)}, {pct(ratio)} labels: Spearman vs "
                     "unlabeled pool (bars: ±1 std)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        self.save(fig, name)
        return True

    def grid(self, name, means, ys, xs, first, second, target, ratio, dataset) -> bool:
        """A heat map of mean Spearman over a two-option grid."""
        if self.plt is None or np.all(np.isnan(means)):
            return False
        fig, ax = self.plt.subplots(figsize=(1.3 * len(xs) + 2.0, 1.0 * len(ys) + 1.6))
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
        return True

    def tsne(self, name, panels, target, ratio, dataset) -> bool:
        """One t-SNE panel per method of (label, arrays, row), coloured by true score."""
        if self.plt is None:
            return False
        low = min(float(np.min(a["score"])) for _, a, _ in panels)
        high = max(float(np.max(a["score"])) for _, a, _ in panels)
        fig, axes = self.plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4),
                                      squeeze=False, layout="constrained")
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
        return True
