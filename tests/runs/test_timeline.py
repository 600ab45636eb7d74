"""The explain timeline, read through the figure `timeline_figure` returns (its artists'
extents after a draw): the legend covers neither a value label nor the data, the value labels
stay inside the axes, and the files `write_explanation` writes."""

from __future__ import annotations

import numpy as np
import pytest

from s4aqa.runs.explain import Explanation
from s4aqa.runs.timeline import safe_name, timeline_figure, timeline_png, write_explanation

plt = pytest.importorskip("matplotlib.pyplot")


def explanation(t=16, spans=False, truth=True):
    """One video whose largest contribution is its last segment, the top right corner where a
    legend inside the axes would sit, its lowest near the end too."""
    rng = np.random.default_rng(0)
    row = 0.3 * rng.standard_normal(t)
    row[-1], row[-2], row[1] = 2.0, -1.5, 1.2
    span = [np.stack([np.arange(t) * 1.5, np.arange(t) * 1.5 + 1.4], 1)] if spans else [None]
    return Explanation(["vid_001"], np.array([51.3]), row[None], "mean", span,
                       (row + 0.5 * rng.standard_normal(t))[None] if truth else None)


def extents(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return (renderer, ax.get_window_extent(renderer), ax.get_legend().get_window_extent(renderer),
            [text.get_window_extent(renderer) for text in ax.texts])


@pytest.mark.parametrize("t, spans, truth", [(16, False, True), (16, False, False),
                                             (60, True, True), (4, False, True)])
def test_the_legend_covers_no_value_label_and_no_data(t, spans, truth):
    fig = timeline_figure(explanation(t, spans, truth), 0)
    try:
        _, axes, legend, labels = extents(fig)
        assert len(labels) == 3
        assert not any(legend.overlaps(label) for label in labels)
        assert not legend.overlaps(axes)  # beside the axes: it covers no bar, dot or label
        assert fig.bbox.contains(legend.x1 - 1, legend.y0 + 1)  # and inside the picture
    finally:
        plt.close(fig)


@pytest.mark.parametrize("t, spans", [(16, False), (60, True)])
def test_value_labels_stay_inside_the_axes_and_apart(t, spans):
    fig = timeline_figure(explanation(t, spans), 0)
    try:
        _, axes, _, labels = extents(fig)
        for label in labels:
            assert axes.x0 <= label.x0 and label.x1 <= axes.x1
            assert axes.y0 <= label.y0 and label.y1 <= axes.y1
        assert not any(a.overlaps(b) for i, a in enumerate(labels) for b in labels[i + 1:])
        texts = [text.get_text() for text in fig.axes[0].texts]
        assert texts == ["+2.00", "-1.50", "+1.20"]
    finally:
        plt.close(fig)


def test_every_segment_has_its_tick_and_the_axes_are_labelled():
    fig = timeline_figure(explanation(16), 0)
    try:
        ax = fig.axes[0]
        assert list(ax.get_xticks()) == list(range(16))
        assert ax.get_xlabel() == "segment (in time order)" and ax.get_ylabel()
        assert ax.get_title().startswith("vid_001: predicted score 51.30")
    finally:
        plt.close(fig)


def test_pictures_and_files(tmp_path):
    e = Explanation(["a/b"], np.array([1.0]), np.array([[0.5, -0.2, 0.1]]), "mean",
                    [np.array([[0, 1], [1, 2], [2, 3.5]])], np.array([[0.4, -0.1, 0.0]]))
    assert timeline_png(e, 0)[:4] == b"\x89PNG"
    assert safe_name("a/b") == "a_b"
    written = write_explanation(tmp_path / "out", e)
    assert [p.name for p in written] == ["segments.csv", "a_b.png"]
    assert written[1].read_bytes()[:4] == b"\x89PNG"
    written = write_explanation(tmp_path / "plain", e, pictures=False)
    assert [p.name for p in written] == ["segments.csv"]
