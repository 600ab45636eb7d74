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
        """Mean ± std of each method against the labeled proportion (see :meth:`draw_curve`)."""
        return self._saved(self.draw_curve(series, label, target, dataset), name)

    def pool(self, name, series, sizes, reference, reference_name, label, target, ratio,
             dataset) -> bool:
        """Mean ± std of each method against the unlabeled pool (see :meth:`draw_pool`)."""
        return self._saved(self.draw_pool(series, sizes, reference, reference_name, label,
                                          target, ratio, dataset), name)

    def grid(self, name, means, ys, xs, first, second, target, ratio, dataset,
             seeds=None) -> bool:
        """A heat map of mean Spearman over a two-option grid (see :meth:`draw_grid`)."""
        return self._saved(self.draw_grid(means, ys, xs, first, second, target, ratio, dataset,
                                          seeds), name)

    def tsne(self, name, panels, target, ratio, dataset) -> bool:
        """One t-SNE panel per method (see :meth:`draw_tsne`)."""
        return self._saved(self.draw_tsne(panels, target, ratio, dataset), name)

    def _saved(self, fig, name) -> bool:
        if fig is None:
            return False
        self.save(fig, name)
        return True

    # ---- the drawings: each returns its figure (None where there is nothing to draw) --------
    def draw_curve(self, series, label, target, dataset):
        """Each method's mean over seeds against the labeled proportion, a ±1 std band where a
        point has two seeds or more; the title says how many seeds, and claims a band only
        where one is drawn. The legend sits outside the axes, so it covers no line or band."""
        if self.plt is None:
            return None
        fig, ax = self.plt.subplots(figsize=(6.4, 4.2))
        handles, labels, counts = [], [], []
        for method, by_ratio in series.items():
            points = [(r, c.summary) for r, c in sorted(by_ratio.items()) if c.summary is not None]
            if not points:
                continue
            x = np.array([r * 100 for r, _ in points])
            mean = np.array([s.mean for _, s in points])
            std = np.array([s.std for _, s in points])
            seeds = np.array([s.n for _, s in points])
            counts += list(seeds)
            line, = ax.plot(x, mean, marker="o", linewidth=2.2 if method == "s4aqa" else 1.4)
            if (seeds >= 2).any():
                ax.fill_between(x, mean - std, mean + std, where=seeds >= 2,
                                color=line.get_color(), alpha=0.15, linewidth=0)
            handles.append(line)
            labels.append(label(method))
        if not handles:
            self.plt.close(fig)
            return None
        ax.set_xlabel("labeled proportion of the training split (%)")
        ax.set_ylabel("test Spearman")
        ax.set_title(f"{dataset} {target_name(target)}: Spearman vs labels\n"
                     f"({seeds_note(counts, 'band')})", fontsize=11)
        ax.grid(alpha=0.3)
        outside_legend(ax, handles, labels)
        return fig

    def draw_pool(self, series, sizes, reference, reference_name, label, target, ratio,
                  dataset):
        """Each method's mean over seeds against the number of unlabeled videos (``sizes``:
        share -> videos), ±1 std error bars where a point has two seeds or more, the reference
        as a dashed horizontal line; legend outside the axes."""
        if self.plt is None:
            return None
        fig, ax = self.plt.subplots(figsize=(6.4, 4.2))
        counts = []
        # methods nudged apart along x, so their error bars do not hide each other
        nudge = 0.01 * max(max(sizes.values(), default=0), 1)
        for index, (method, by_share) in enumerate(series.items()):
            points = sorted(((sizes[x], c.summary) for x, c in by_share.items()
                             if x in sizes and c.summary is not None), key=lambda p: p[0])
            if not points:
                continue
            x = np.array([n for n, _ in points]) + (index - (len(series) - 1) / 2) * nudge
            seeds = [p.n for _, p in points]
            counts += seeds
            bars = [p.std if n >= 2 else np.nan for (_, p), n in zip(points, seeds)]
            ax.errorbar(x, [p.mean for _, p in points],
                        yerr=bars if max(seeds) >= 2 else None, marker="o", capsize=3,
                        linewidth=2.2 if method == "s4aqa" else 1.4, label=label(method))
        if not counts:
            self.plt.close(fig)
            return None
        if reference is not None and reference.summary is not None:
            ax.axhline(reference.summary.mean, color="black", linestyle="--", linewidth=1.2,
                       label=f"{label(reference_name)}\n(no unlabeled video)")
        ticks = sorted(set(sizes.values()))
        ax.set_xticks(ticks, [f"{n:,.0f}" for n in ticks])
        ax.set_xlabel("unlabeled videos in the training pool (labeled videos fixed per seed)")
        ax.set_ylabel("test Spearman")
        ax.set_title(f"{dataset} {target_name(target)}, {pct(ratio)} labels: Spearman vs "
                     f"unlabeled pool\n({seeds_note(counts, 'bars')})", fontsize=11)
        ax.grid(alpha=0.3)
        outside_legend(ax, *ax.get_legend_handles_labels())
        return fig

    def draw_grid(self, means, ys, xs, first, second, target, ratio, dataset, seeds=None):
        """A heat map of mean Spearman over a two-option grid, each cell's value written in
        it (white on the dark half of the colour scale, black on the light half); ``seeds``,
        the seed count of each cell where known, goes into the title."""
        if self.plt is None or np.all(np.isnan(means)):
            return None
        fig, ax = self.plt.subplots(figsize=(1.3 * len(xs) + 2.0, 1.0 * len(ys) + 1.6))
        image = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", origin="lower",
                          aspect="auto")
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not np.isnan(means[i, j]):
                    dark = image.norm(means[i, j]) < 0.5
                    ax.text(j, i, f"{means[i, j]:.3f}", ha="center", va="center", fontsize=9,
                            color="white" if dark else "black")
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
        ax.set_xlabel(f"λ2 ({second})" if second == "lambda_adv" else second)
        ax.set_ylabel(f"λ1 ({first})" if first == "lambda_rcvr" else first)
        what = "test Spearman"
        if seeds:
            what = (f"{what} ({seeds_note(seeds, '')})" if max(seeds) < 2
                    else f"mean {what} ({seeds_note(seeds, '')})")
        ax.set_title(f"{dataset} {target_name(target)}, {pct(ratio)} labels: {what}",
                     fontsize=11)
        fig.colorbar(image, ax=ax, label="test Spearman")
        return fig

    def draw_tsne(self, panels, target, ratio, dataset):
        """One t-SNE panel per method of (label, arrays, row), coloured by true score: the
        run ``row`` of one seed (its test Spearman in the panel's title, the seed in the
        figure's)."""
        if self.plt is None:
            return None
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
        fig.colorbar(scatter, ax=list(axes[0]), label="true score", fraction=0.04, pad=0.01)
        seeds = sorted({row.config.seed for _, _, row in panels})
        which = (f"seed {seeds[0]}" if len(seeds) == 1
                 else "seeds " + ", ".join(str(s) for s in seeds))
        fig.suptitle(f"{dataset} {target_name(target)}, {pct(ratio)} labels: t-SNE of the "
                     f"unlabeled representations ({which})", fontsize=11)
        return fig


def seeds_note(counts, spread: str) -> str:
    """What a title says of the seeds behind its points (``counts``: the seed count of each
    point) and of the ``spread`` drawn ('band', 'bars'; '' for none): a spread is claimed
    only where it is drawn, which needs two seeds."""
    counts = sorted({int(n) for n in counts})
    if not counts:
        return ""
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    seeds += " seed" if counts == [1] else " seeds"
    if counts[-1] < 2 or not spread:
        return seeds
    if counts[0] < 2:
        return f"{spread}: ±1 std where a point has 2 seeds or more; {seeds}"
    return f"{spread}: ±1 std over {seeds}"


def outside_legend(ax, handles, labels) -> None:
    """The legend to the right of the axes, so that it covers none of the data."""
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0.0, frameon=False)
