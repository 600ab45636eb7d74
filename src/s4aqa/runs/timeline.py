"""An explanation drawn and written: each video's segment contributions as a timeline picture
(matplotlib, the ``report`` extra, on the Agg backend), and the files of ``s4aqa explain``:
DIR/segments.csv and DIR/<id>.png.

The picture: a bar per segment along the action (green where the segment won points against
the reference, red where it lost them), the three largest labelled with their value, the true
contributions as dots where the data knows them, the predicted score in the title. The legend
sits to the right of the axes and the value labels inside them, so that neither covers the
other nor the data (``tests/runs/test_timeline.py`` checks the extents).
"""

from __future__ import annotations

import io as _io
import os
from pathlib import Path

import numpy as np

from s4aqa import io
from s4aqa.errors import S4AQAError
from s4aqa.runs.explain import Explanation

WON, LOST = "#2e8b57", "#c0392b"
LABELLED = 3  # segments whose value is written on their bar
EVERY_TICK = 24  # up to this many segments, one tick per segment


def has_matplotlib() -> bool:
    try:  # optional: the `report` extra
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure():
    """One figure and axes sized for a timeline, the legend's room on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.4))
    fig.subplots_adjust(left=0.07, right=0.79, bottom=0.16, top=0.86)
    return plt, fig, ax


def timeline_figure(explanation: Explanation, index: int, title: str = ""):
    """The matplotlib figure of video ``index``'s timeline (the caller closes it:
    ``matplotlib.pyplot.close(fig)``)."""
    _, fig, ax = _figure()
    draw(ax, explanation, index, title)
    return fig


def timeline_png(explanation: Explanation, index: int, title: str = "") -> bytes:
    """A PNG of video ``index``'s contributions along the action (see :func:`timeline_pngs`)."""
    return next(timeline_pngs(explanation, [index], [title]))


def timeline_pngs(explanation: Explanation, indices=None, titles=None):
    """PNGs of the videos ``indices`` (default all), one figure drawn into again for every
    video."""
    plt, fig, ax = _figure()
    indices = range(len(explanation.ids)) if indices is None else indices
    try:
        for n, index in enumerate(indices):
            ax.clear()
            draw(ax, explanation, index, titles[n] if titles else "")
            buffer = _io.BytesIO()
            fig.savefig(buffer, format="png", dpi=100)
            yield buffer.getvalue()
    finally:
        plt.close(fig)


def draw(ax, explanation: Explanation, index: int, title: str = "") -> list:
    """Video ``index``'s timeline into ``ax``; returns the value labels (text artists)."""
    row = explanation.contributions[index]
    t = len(row)
    span = explanation.spans[index]
    if span is not None:
        left, label = span[:, 0], "time in the video (s)"
        width = np.maximum(span[:, 1] - span[:, 0], 1e-3)
        width = np.minimum(width, np.diff(np.append(left, left[-1] + width[-1])) * 0.9 + 1e-3)
    else:
        left, width, label = np.arange(t) - 0.4, np.full(t, 0.8), "segment (in time order)"
    ax.bar(left, row, width=width, align="edge", color=np.where(row >= 0, WON, LOST))
    ax.bar([0], [0], width=0, color=WON, label="points won\n(explained)")
    ax.bar([0], [0], width=0, color=LOST, label="points lost\n(explained)")
    if explanation.truth is not None:
        ax.plot(left + width / 2, explanation.truth[index], "k.--", lw=1, ms=6,
                label="true\ncontribution")
    ax.axhline(0, color="grey", lw=0.8)
    labels = []
    for seg, value in explanation.top(index, LABELLED):
        # above a bar that won, below one that lost, on white so that the truth's line
        # running through it does not hide it
        labels.append(ax.annotate(
            f"{value:+.2f}", (left[seg] + width[seg] / 2, value), xytext=(0, 3 if value >= 0
                                                                           else -3),
            textcoords="offset points", ha="center", va="bottom" if value >= 0 else "top",
            fontsize=8, zorder=5,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none",
                  "alpha": 0.8}))
    ax.margins(x=0.03, y=0.18)  # room for the labels beside the ends and above and below the bars
    # few ticks: drawing them is most of a picture's cost
    if span is None and t <= EVERY_TICK:
        ax.set_xticks(range(t))
    else:
        ax.locator_params(axis="x", nbins=10, integer=span is None)
    ax.locator_params(axis="y", nbins=6)
    ax.set_xlabel(label)
    ax.set_ylabel("points won (+) / lost (−)")
    ax.set_title(title or (f"{explanation.ids[index]}: predicted score "
                           f"{explanation.predicted[index]:.2f}; segments sum "
                           f"{row.sum():+.2f} against the {explanation.reference} reference"),
                 fontsize=10, wrap=True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8,
              frameon=False, labelspacing=0.9)
    return labels


def safe_name(vid: str) -> str:
    """A file name for a video id (path separators and odd characters replaced)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in vid).lstrip(".") or "video"


def write_explanation(out: str | os.PathLike, explanation: Explanation,
                      pictures: bool = True) -> list[Path]:
    """DIR/segments.csv and, with ``pictures``, DIR/<id>.png per video; everything is drawn
    before anything is written, and each file is written atomically."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise S4AQAError(f"--out {out}: exists and is not a folder")
    images = {}
    if pictures:
        names = [safe_name(vid) + ".png" for vid in explanation.ids]
        if len(set(names)) < len(names):
            raise S4AQAError("two videos would share a picture's file name; rename one")
        images = dict(zip(names, timeline_pngs(explanation)))
    written = [out / "segments.csv"]
    io.write_text(written[0], explanation.csv_text())
    for name, png in images.items():
        io.write_bytes(out / name, png)
        written.append(out / name)
    return written
