"""The report's figures, read through the figures the drawing functions return (titles,
artists, extents after a draw) rather than through pixels: a title claims a spread (band, bars)
only where one is drawn, with one seed and with several, and no legend covers the axes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from s4aqa.experiments.report.aggregate import Cell
from s4aqa.experiments.report.figures import Figures, seeds_note

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.collections import PolyCollection  # noqa: E402


def cell(*values):
    return Cell({seed: v for seed, v in enumerate(values)}, [])


def series(seeds):
    """Two methods at three label ratios, ``seeds`` values per point."""
    rng = np.random.default_rng(0)
    return {method: {r: cell(*(base + r / 2 + 0.05 * rng.standard_normal(seeds)))
                     for r in (0.1, 0.4, 1.0)}
            for method, base in (("aa", 0.5), ("svr", 0.45))}


@pytest.fixture
def figures(tmp_path):
    made = Figures(tmp_path)
    yield made
    made.plt.close("all")


def legend_off_the_axes(fig, ax):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    return not legend.overlaps(ax.get_window_extent(renderer))


def test_seeds_note_claims_a_spread_only_with_two_seeds_or_more():
    assert seeds_note([1, 1], "band") == "1 seed"
    assert seeds_note([3, 3], "band") == "band: ±1 std over 3 seeds"
    assert seeds_note([2, 3], "bars") == "bars: ±1 std over 2–3 seeds"
    assert seeds_note([1, 3], "band") == ("band: ±1 std where a point has 2 seeds or more; "
                                          "1–3 seeds")
    assert seeds_note([3], "") == "3 seeds"


def test_fig6_with_one_seed_draws_no_band_and_its_title_claims_none(figures):
    fig = figures.draw_curve(series(1), str, None, "synthetic")
    ax = fig.axes[0]
    assert "std" not in ax.get_title() and "band" not in ax.get_title()
    assert "1 seed" in ax.get_title()
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert legend_off_the_axes(fig, ax)


def test_fig6_with_several_seeds_draws_the_band_its_title_names(figures):
    fig = figures.draw_curve(series(3), str, None, "synthetic")
    ax = fig.axes[0]
    assert "band: ±1 std over 3 seeds" in ax.get_title()
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2 and all(len(b.get_paths()) > 0 for b in bands)
    assert legend_off_the_axes(fig, ax)
    assert figures.curve("f.png", series(3), str, None, "synthetic")
    assert (figures.directory / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_pool_with_one_seed_draws_no_error_bars_and_its_title_claims_none(figures):
    sizes = {0.0: 0, 0.5: 180, 1.0: 360}
    one = {"s4aqa": {x: cell(0.6 + x / 10) for x in sizes}}
    fig = figures.draw_pool(one, sizes, cell(0.58), "aa", str, None, 0.1, "synthetic")
    ax = fig.axes[0]
    assert "std" not in ax.get_title() and "1 seed" in ax.get_title()
    assert all(not c.has_yerr for c in ax.containers)
    assert legend_off_the_axes(fig, ax)
    three = {"s4aqa": {x: cell(0.6, 0.62 + x / 10, 0.58) for x in sizes}}
    fig = figures.draw_pool(three, sizes, cell(0.58, 0.6, 0.59), "aa", str, None, 0.1,
                            "synthetic")
    ax = fig.axes[0]
    assert "bars: ±1 std over 3 seeds" in ax.get_title()
    assert all(c.has_yerr for c in ax.containers)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "180", "360"]
    assert legend_off_the_axes(fig, ax)


def test_grid_writes_each_value_in_a_colour_that_reads_on_its_cell(figures):
    means = np.array([[0.1, 0.2], [0.8, 0.9]])
    fig = figures.draw_grid(means, [0.1, 1.0], [0.01, 0.1], "lambda_rcvr", "lambda_adv", None,
                            0.1, "synthetic", seeds=[3, 3, 3, 3])
    ax = fig.axes[0]
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours == {"0.100": "white", "0.200": "white", "0.800": "black", "0.900": "black"}
    assert "mean test Spearman (3 seeds)" in ax.get_title()
    fig = figures.draw_grid(means, [0.1, 1.0], [0.01, 0.1], "lambda_rcvr", "lambda_adv", None,
                            0.1, "synthetic", seeds=[1, 1, 1, 1])
    assert "mean" not in fig.axes[0].get_title() and "1 seed" in fig.axes[0].get_title()


def test_tsne_names_the_seed_its_panels_show(figures):
    rng = np.random.default_rng(0)
    arrays = {"embedding": rng.standard_normal((3, 4)), "score": np.array([1.0, 2.0, 3.0])}
    row = SimpleNamespace(value=0.5, config=SimpleNamespace(seed=2))
    fig = figures.draw_tsne([("AA", arrays, row), ("S4AQA", arrays, row)], None, 0.1,
                            "synthetic")
    assert "(seed 2)" in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes[:2]] == ["AA\ntest Spearman 0.500",
                                                      "S4AQA\ntest Spearman 0.500"]
