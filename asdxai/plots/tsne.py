"""t-SNE scatter plots like Fig. 5 of the study (normal vs anomalous clips in the embedding space).

Normal clips are small filled dots, anomalous clips crosses (black-edged filled
crosses when colour encodes a group), so the two stay
distinguishable in grey-scale print and for colour-blind readers; without
``color_by`` normal clips are blue and anomalous clips red, with ``color_by`` the
colour encodes the group (machine type, domain, ...) and the marker encodes
normal / anomalous. Axes are hidden: t-SNE coordinates have no meaning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._atomic import atomic_path, escape_undecodable
from ..errors import DataError

NORMAL_COLOR = "#4c72b0"  # muted blue
ANOMALY_COLOR = "#d62728"  # red
BACKGROUND_COLOR = "#d9d9d9"  # light grey, reference points of a transform
NORMAL_MARKER = "o"
ANOMALY_MARKER = "x"
GROUP_ANOMALY_MARKER = "X"  # filled cross with a black edge when colour encodes the group


def _check(points: np.ndarray, is_anomaly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise DataError(f"points must have shape (N, 2), got {p.shape}")
    m = np.asarray(is_anomaly).astype(bool)
    if m.shape != (p.shape[0],):
        raise DataError(f"is_anomaly must have shape ({p.shape[0]},), got {m.shape}")
    return p, m


def _sizes(n: int) -> tuple[float, float]:
    """Marker areas (normal, anomalous) that keep 100 ... 20,000 points readable."""
    s = float(np.clip(4000.0 / max(n, 1), 2.0, 30.0))
    return s, 2.5 * s


def _group_colors(groups: Sequence[str]) -> dict[str, Any]:
    # matplotlib on first use: ~2/5 of torch's import (measured); only figures need it
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(groups) <= 10 else "tab20"]
    n = cmap.N
    return {g: cmap(i % n) for i, g in enumerate(groups)}


def _scatter(ax: Axes, points: np.ndarray, **style: Any) -> None:
    """One layer of points [shape=(N, 2)], rasterised (figures with 10^4 points stay small)."""
    ax.scatter(points[:, 0], points[:, 1], rasterized=True, **style)


def _handle(marker: str, label: str, **style: Any) -> Line2D:
    """A legend entry showing ``marker`` alone."""
    return Line2D([], [], ls="", marker=marker, label=label, **style)


def _draw(
    ax: Axes,
    points: np.ndarray,
    is_anomaly: np.ndarray,
    color_by: Sequence[Any] | None,
    title: str | None,
    background: np.ndarray | None,
    legend: bool,
    nearest: np.ndarray | None = None,
) -> None:
    p, m = _check(points, is_anomaly)
    s_norm, s_anom = _sizes(len(p))
    if nearest is not None:  # each anomaly's line to its nearest normal clip (the distance)
        segments = np.stack([p[np.flatnonzero(m)], p[np.asarray(nearest, dtype=np.int64)]], 1)
        ax.add_collection(LineCollection(segments, colors="0.35", linewidths=0.5, zorder=1.5))
    if background is not None:
        b = np.asarray(background, dtype=np.float64)
        _scatter(ax, b, s=s_norm, c=BACKGROUND_COLOR, marker=".", linewidths=0, label="reference",
                 zorder=0)  # fmt: skip
    handles: list[Any] = []
    if color_by is None:
        _scatter(ax, p[~m], s=s_norm, c=NORMAL_COLOR, marker=NORMAL_MARKER, linewidths=0,
                 alpha=0.7, zorder=1)  # fmt: skip
        _scatter(ax, p[m], s=s_anom, c=ANOMALY_COLOR, marker=ANOMALY_MARKER, linewidths=1.0,
                 alpha=0.9, zorder=2)  # fmt: skip
        handles = [
            _handle(NORMAL_MARKER, f"normal ({(~m).sum()})", color=NORMAL_COLOR),
            _handle(ANOMALY_MARKER, f"anomalous ({m.sum()})", color=ANOMALY_COLOR),
        ]
    else:
        labels = np.array(
            ["unknown" if v is None or v == "" else str(v) for v in color_by], dtype=object
        )
        if labels.shape != (len(p),):
            raise DataError(f"color_by must have {len(p)} entries, got {labels.shape[0]}")
        groups = sorted(set(labels))
        colors = _group_colors(groups)
        for g in groups:
            sel, c = labels == g, [colors[g]]
            _scatter(ax, p[sel & ~m], s=s_norm, color=c, marker=NORMAL_MARKER, linewidths=0,
                     alpha=0.45, zorder=1)  # fmt: skip
            _scatter(ax, p[sel & m], s=1.5 * s_anom, color=c, marker=GROUP_ANOMALY_MARKER,
                     edgecolors="black", linewidths=0.4, alpha=1.0, zorder=2)  # fmt: skip
            handles.append(_handle("s", g, color=colors[g]))
        handles += [
            _handle(NORMAL_MARKER, "normal", color="black"),
            _handle(
                GROUP_ANOMALY_MARKER, "anomalous", markerfacecolor="white", markeredgecolor="black"
            ),  # fmt: skip
        ]
    if background is not None:
        handles.append(_handle(".", "reference", color=BACKGROUND_COLOR))
    if nearest is not None:
        handles.append(Line2D([], [], color="0.35", lw=0.5, label="to nearest normal"))
    ax.set_axis_off()
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            fontsize=7,
            frameon=False,
            ncols=min(len(handles), 4),
            handletextpad=0.2,
            columnspacing=1.0,
        )


def plot_tsne(
    points: np.ndarray,
    is_anomaly: np.ndarray,
    *,
    color_by: Sequence[Any] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    background: np.ndarray | None = None,
    legend: bool = True,
) -> Figure:
    """Scatter plot of a 2-D t-SNE projection, normal vs anomalous clips (Fig. 5 of the study).

    Parameters
    ----------
    points : np.ndarray [shape=(N, 2)]
        Projected clips.
    is_anomaly : np.ndarray [shape=(N,)] bool
    color_by : sequence of str [shape=(N,)], optional
        Group of each clip (machine type, domain, section); colour = group,
        marker = normal (dot) / anomalous (cross). Without it: blue dots / red crosses.
    ax : matplotlib Axes, optional
        Draw into this axis; otherwise a new headless :class:`~matplotlib.figure.Figure`.
    title : str, optional
    background : np.ndarray [shape=(M, 2)], optional
        Reference points drawn in light grey underneath (``--transform``).
    legend : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        fig = Figure(figsize=(5.5, 5.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    _draw(ax, points, is_anomaly, color_by, title, background, legend)
    return fig


def plot_tsne_panels(
    panels: Sequence[tuple[Any, ...]],
    *,
    ncols: int = 3,
    panel_size: float = 3.6,
) -> Figure:
    """Several projections side by side (Fig. 5 a–f of the study), one panel per model.

    Parameters
    ----------
    panels : sequence of tuples ``(points, is_anomaly, title)``,
        ``(points, is_anomaly, title, color_by)`` or ``(points, is_anomaly, title, color_by,
        nearest)`` (index of each anomaly's nearest normal clip: a line is drawn to it); see
        :func:`plot_tsne` and :func:`result_panel`.
    ncols : int
        Panels per row.
    panel_size : float
        Width and height of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not panels:
        raise DataError("plot_tsne_panels needs at least one panel")
    if ncols < 1:
        raise DataError(f"ncols must be >= 1, got {ncols}")
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(panel_size * ncols, panel_size * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for k, (ax, panel) in enumerate(zip(axes, panels, strict=False)):
        points, is_anomaly, title = panel[:3]
        color_by = panel[3] if len(panel) > 3 else None
        nearest = panel[4] if len(panel) > 4 else None
        letter = f"({chr(ord('a') + k)}) " if len(panels) > 1 and k < 26 else ""
        _draw(
            ax,
            points,
            is_anomaly,
            color_by,
            f"{letter}{title}" if title else letter or None,
            None,
            legend=True,
            nearest=nearest,
        )
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    return fig


def result_panel(result: Any, title: str) -> tuple[Any, ...]:
    """A :func:`plot_tsne_panels` panel of a :class:`~asdxai.embed.TSNEResult` that shows its
    nearest-normal distances: a line from every anomaly to its nearest normal clip, and the
    mean distances (2-D and, cosine, in the embedding space) under the title."""
    caption = (
        f"mean anomaly-to-nearest-normal distance:\n{float(np.mean(result.distances_2d)):.2f} "
        f"(2-D), {float(np.mean(result.distances_embedding)):.3f} (embedding, cosine)"
    )
    return (result.projection, result.is_anomaly, f"{title}\n{caption}", None,
            result.nearest_normal_2d)  # fmt: skip


def save_figure(fig: Figure, path: Any, *, dpi: int = 150) -> Any:
    """Save ``fig`` as PNG (or any format matplotlib knows from the suffix) atomically.

    Every figure asdxai writes goes through here. Texts holding file-name bytes that are
    not UTF-8 (titles naming a clip) show those bytes as ``\\xNN``: the font renderer
    cannot draw them.
    """
    # matplotlib on first use: ~2/5 of torch's import (measured); only figures need it
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_text(escape_undecodable(text.get_text()))
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path
