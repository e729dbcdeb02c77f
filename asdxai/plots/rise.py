"""The study's Fig. 4 panel: log spectrogram | RISE importance map, side by side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..features import FeatureConfig


def _extent(cfg: FeatureConfig, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """imshow extent (s, s, Hz, Hz) with pixel edges half a hop / half a bin outside centres."""
    t, f = shape
    times = cfg.frame_times().numpy()
    freqs = cfg.bin_frequencies().numpy()
    if len(times) != t or len(freqs) != f:  # map of another geometry: spread evenly
        times = np.linspace(0.0, cfg.duration_s, t)
        freqs = np.linspace(0.0, cfg.sample_rate / 2, f)
    dt = cfg.hop_length / cfg.sample_rate
    df = cfg.sample_rate / cfg.n_fft
    return (times[0] - dt / 2, times[-1] + dt / 2, freqs[0] - df / 2, freqs[-1] + df / 2)


def plot_importance(
    spec_log: np.ndarray,
    importance: np.ndarray,
    *,
    cfg: FeatureConfig | None = None,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
    cmap: str = "viridis",
) -> Figure:
    """Log spectrogram and importance map side by side (time in s on x, frequency in Hz on y).

    Parameters
    ----------
    spec_log : np.ndarray [shape=(T, F)], log-scaled spectrogram (dB)
    importance : np.ndarray [shape=(T, F)], RISE map; low (blue) = normal, high (yellow) =
        anomalous; its colour scale is its own (maps of different clips are not comparable)
    cfg : FeatureConfig, optional (default: the study's), gives frame times and bin frequencies
    axes : two matplotlib Axes to draw into; default: a new headless Figure with two panels
    title : optional figure title (suptitle)
    cmap : colour map of the importance map (viridis as in the study)

    Returns
    -------
    matplotlib.figure.Figure
    """
    cfg = cfg if cfg is not None else FeatureConfig()
    spec_log = np.asarray(spec_log, dtype=np.float64)
    importance = np.asarray(importance, dtype=np.float64)
    if spec_log.ndim != 2 or spec_log.shape != importance.shape:
        raise ConfigError(
            f"spectrogram {spec_log.shape} and importance {importance.shape} must be equal (T, F)"
        )
    if axes is None:
        fig = Figure(figsize=(11, 4), layout="constrained")
        axes = fig.subplots(1, 2, sharex=True, sharey=True)
    else:
        if len(axes) != 2:
            raise ConfigError("plot_importance needs two axes (spectrogram, importance)")
        fig = axes[0].figure
    extent = _extent(cfg, spec_log.shape)
    panels = (
        (spec_log, "magma", "log spectrogram", "dB"),
        (importance, cmap, "importance (RISE)", "importance"),
    )
    for ax, (data, cm, name, label) in zip(axes, panels, strict=True):
        im = ax.imshow(
            data.T, origin="lower", aspect="auto", cmap=cm, extent=extent, interpolation="nearest"
        )
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
        ax.set_title(name)
        fig.colorbar(im, ax=ax, label=label)
    if title:
        fig.suptitle(title)
    return fig


#: What the colours of a RISE map mean (written on every Fig. 4).
COLOUR_MEANING = (
    "RISE importance: yellow = cells whose presence raises the anomaly score (what the map "
    "flags),\nblue = cells whose presence lowers it (read as normal); each map has its own "
    "colour scale"
)


def clip_label(machine: str, section: str, name: str, *, label: str | None) -> str:
    """The row label of one clip in Fig. 4: machine type, section, label and file name."""
    return f"{machine}, section {section}, {label or 'unlabelled'}\n{name}"


def plot_importance_grid(
    rows: Sequence[tuple[str, np.ndarray, dict[str, np.ndarray]]],
    *,
    cfg: FeatureConfig | None = None,
    panel_size: tuple[float, float] = (4.2, 3.0),
    captions: Sequence[dict[str, str]] | None = None,
    title: str | None = None,
) -> Figure:
    """The study's Fig. 4: one row per clip, log spectrogram | one importance map per model.

    Parameters
    ----------
    rows : sequence of ``(clip label, spec_log (T, F), {model title: importance (T, F)})``;
        every row must name the same models in the same order
    cfg : FeatureConfig, optional (default: the study's)
    panel_size : (width, height) of one panel in inches
    captions : optional, per row ``{model title: text}`` written under that map (e.g. the
        measures of where it looks)
    title : optional first line of the figure title (e.g. which models explain the clips);
        the figure title always says what the colours mean (:data:`COLOUR_MEANING`)

    Returns
    -------
    matplotlib.figure.Figure
        Every panel has its own colour scale and colour bar, as in the study.
    """
    cfg = cfg if cfg is not None else FeatureConfig()
    if not rows:
        raise ConfigError("plot_importance_grid needs at least one row")
    models = list(rows[0][2])
    ncols = 1 + len(models)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * len(rows)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), ncols, squeeze=False))
    for r, (label, spec_log, maps) in enumerate(rows):
        if list(maps) != models:
            raise ConfigError(f"row {label!r} names models {list(maps)}, expected {models}")
        panels = [(np.asarray(spec_log), "magma", f"{label}\nlog spectrogram", "dB")]
        panels += [(np.asarray(m), "viridis", title, "importance") for title, m in maps.items()]
        extent = _extent(cfg, panels[0][0].shape)
        for ax, (data, cmap, name, unit) in zip(axes[r], panels, strict=True):
            if data.shape != panels[0][0].shape:
                raise ConfigError(f"{name}: shape {data.shape} differs from the spectrogram's")
            im = ax.imshow(
                data.T, origin="lower", aspect="auto", cmap=cmap, extent=extent,
                interpolation="nearest",
            )  # fmt: skip
            ax.set_title(name, fontsize=9)
            caption = (captions[r] if captions else {}).get(name, "")
            ax.set_xlabel(f"time (s)\n{caption}" if caption else "time (s)", fontsize=8)
            ax.set_ylabel("frequency (Hz)")
            fig.colorbar(im, ax=ax, label=unit)
    fig.suptitle("\n".join(filter(None, [title, COLOUR_MEANING])), fontsize=9)
    return fig


def measures_caption(measures: dict[str, float]) -> str:
    """A one-line caption of a map's measures (machine focus, machine correlation, event share,
    pixel AUC), for :func:`plot_importance_grid`."""
    short = (("machine_focus", "focus"), ("machine_correlation", "r(machine)"),
             ("event_share", "events"), ("pixel_auc", "pixel AUC"))  # fmt: skip
    return ", ".join(f"{label} {measures[k]:.2f}" for k, label in short if k in measures)
