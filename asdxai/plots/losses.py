"""Per-epoch loss curves (the study's Fig. 2 / Fig. 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

_CURVES = (
    ("angular", "training loss"),
    ("ic_compactness", "mean IC compactness loss"),
    ("inter_compactness", "mean inter-class compactness loss"),
)


def plot_loss_history(
    histories: Mapping[str, Mapping[str, Sequence[float]]]
    | Sequence[Mapping[str, Sequence[float]]],
    *,
    ax: Axes | None = None,
) -> Figure:
    """Plot the per-epoch losses of one or more training runs.

    Parameters
    ----------
    histories : one history dict (keys ``angular``, ``ic_compactness``, ``inter_compactness``,
        lists per epoch, as in ``Checkpoint.history[model_key]``), a list of them (trials: the
        mean is drawn with a +-1 std band), or ``{label: history or list of histories}``
    ax : axis to draw on; a new headless figure when None

    Returns
    -------
    Figure
    """
    if ax is None:
        fig = Figure(figsize=(5.0, 3.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    groups = _groups(histories)
    styles = ("-", "--", ":", "-.")
    for gi, (label, runs) in enumerate(groups.items()):
        for ci, (key, name) in enumerate(_CURVES):
            rows = [np.asarray(r[key], dtype=float) for r in runs if key in r and len(r[key])]
            if not rows:
                continue
            n = min(len(r) for r in rows)
            data = np.stack([r[:n] for r in rows])
            if np.isnan(data).all():
                continue
            epochs = np.arange(1, n + 1)
            mean = np.nanmean(data, axis=0)
            text = name if len(groups) == 1 else f"{label}: {name}"
            (line,) = ax.plot(
                epochs, mean, styles[gi % len(styles)], color=f"C{ci}", marker="o", ms=3, label=text
            )
            if len(rows) > 1:
                std = np.nanstd(data, axis=0)
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def _groups(histories) -> dict[str, list[Mapping[str, Sequence[float]]]]:
    if isinstance(histories, Mapping):
        if any(k in histories for k, _ in _CURVES):
            return {"": [histories]}
        out = {}
        for label, value in histories.items():
            out[str(label)] = [value] if isinstance(value, Mapping) else list(value)
        return out
    return {"": list(histories)}
