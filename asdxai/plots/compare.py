"""One clip explained by every method, side by side (``asdxai compare-explainers``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..features import FeatureConfig
from .rise import _extent


def plot_method_maps(
    spec_log: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    anomaly_mask: np.ndarray | None = None,
    cfg: FeatureConfig | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    columns: int = 5,
) -> Figure:
    """The log spectrogram and every method's map of one clip in a grid of panels.

    Parameters
    ----------
    spec_log : np.ndarray [shape=(T, F)], log spectrogram (dB), the first panel
    maps : method name -> np.ndarray [shape=(T, F)], in panel order; each map has its own
        colour scale, clipped to its 1st..99th percentile (the ranks are what the measures use)
    anomaly_mask : np.ndarray [shape=(T, F)] bool, optional; its outline is drawn on every panel
    cfg : FeatureConfig giving frame times and bin frequencies (default: spread the axes
        evenly over the study's clip)
    labels : method name -> panel subtitle (e.g. with the pixel AUC); default: the name
    title : figure title
    columns : panels per row

    Returns
    -------
    matplotlib.figure.Figure (headless)
    """
    spec_log = np.asarray(spec_log, dtype=np.float64)
    for name, m in maps.items():
        if np.shape(m) != spec_log.shape:
            raise ConfigError(
                f"map {name!r} has shape {np.shape(m)}, the spectrogram {spec_log.shape}"
            )
    cfg = cfg if cfg is not None else FeatureConfig()
    extent = _extent(cfg, spec_log.shape)
    panels = [("log spectrogram", spec_log, "magma")]
    panels += [((labels or {}).get(k, k), np.asarray(v, dtype=np.float64), "viridis")
               for k, v in maps.items()]  # fmt: skip
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(3.2 * columns, 2.6 * rows + (0.4 if title else 0)), layout="constrained")
    axes = np.atleast_1d(
        fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
    ).ravel()
    for ax, (name, data, cmap) in zip(axes, panels, strict=False):
        lo, hi = np.percentile(data, [1, 99])
        ax.imshow(
            data.T, origin="lower", aspect="auto", cmap=cmap, extent=extent,
            interpolation="nearest", vmin=lo, vmax=hi if hi > lo else lo + 1,
        )  # fmt: skip
        if anomaly_mask is not None:
            t = np.linspace(extent[0], extent[1], spec_log.shape[0])
            f = np.linspace(extent[2], extent[3], spec_log.shape[1])
            ax.contour(t, f, np.asarray(anomaly_mask, dtype=float).T, levels=[0.5],
                       colors="red", linewidths=0.8)  # fmt: skip
        ax.set_title(name, fontsize=9)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    for ax in axes[::columns]:
        ax.set_ylabel("frequency (Hz)")
    for ax in axes[-columns:]:
        ax.set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return fig
