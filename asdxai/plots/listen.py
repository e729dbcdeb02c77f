"""Overlay of the flagged (listenable) region on the clip's log spectrogram."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..features import FeatureConfig


def plot_flagged_overlay(
    spec_log: np.ndarray,
    mask: np.ndarray,
    *,
    cfg: FeatureConfig | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    level: float = 0.5,
    alpha: float = 0.35,
) -> Figure:
    """Log spectrogram with the flagged region shaded and outlined.

    Parameters
    ----------
    spec_log : np.ndarray [shape=(T, F)], log-scaled magnitude spectrogram (dB)
    mask : np.ndarray [shape=(T, F)], soft mask in [0, 1] (1 = flagged as anomalous)
    cfg : FeatureConfig, optional (default: the study's); frame times and bin frequencies
    ax : matplotlib Axes to draw into; default: a new headless Figure
    title : optional axes title
    level : mask value drawn as the contour line (default 0.5)
    alpha : opacity of the shading at mask = 1 (0 = contours only)

    Returns
    -------
    matplotlib.figure.Figure
    """
    cfg = cfg if cfg is not None else FeatureConfig()
    spec_log = np.asarray(spec_log, dtype=np.float64)
    mask = np.clip(np.asarray(mask, dtype=np.float64), 0.0, 1.0)
    if spec_log.ndim != 2 or spec_log.shape != mask.shape:
        raise ConfigError(
            f"spectrogram {spec_log.shape} and mask {mask.shape} must have the same (T, F) shape"
        )
    if ax is None:
        fig = Figure(figsize=(8, 4), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    t, f = spec_log.shape
    times = cfg.frame_times().numpy()
    freqs = cfg.bin_frequencies().numpy()
    if len(times) != t or len(freqs) != f:  # another geometry: spread evenly
        times = np.linspace(0.0, cfg.duration_s, t)
        freqs = np.linspace(0.0, cfg.sample_rate / 2, f)
    dt = (times[1] - times[0]) if t > 1 else 1.0
    df = (freqs[1] - freqs[0]) if f > 1 else 1.0
    extent = (times[0] - dt / 2, times[-1] + dt / 2, freqs[0] - df / 2, freqs[-1] + df / 2)
    im = ax.imshow(
        spec_log.T, origin="lower", aspect="auto", cmap="gray_r", extent=extent,
        interpolation="nearest",
    )  # fmt: skip
    fig.colorbar(im, ax=ax, label="dB")
    if alpha > 0:
        rgba = np.zeros((f, t, 4))
        rgba[..., 0], rgba[..., 1], rgba[..., 2] = 1.0, 0.55, 0.0  # orange
        rgba[..., 3] = alpha * mask.T
        ax.imshow(rgba, origin="lower", aspect="auto", extent=extent, interpolation="nearest")
    if 0.0 < level < 1.0 and mask.min() < level < mask.max():
        ax.contour(times, freqs, mask.T, levels=[level], colors="orangered", linewidths=1.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title if title else "flagged region (shaded, contour at mask = 0.5)")
    return fig
