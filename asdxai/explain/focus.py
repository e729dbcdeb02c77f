"""Where does an importance map look? Measures against machine / background ground truth.

The study's explanation is a claim about where the maps look: a model trained on an
auxiliary classification task isolates the machine sound (its map's structure
follows the machine, the machine's high-energy regions read as *normal*), a
one-class model's map looks random or follows background events. On a synthetic
clip the generator records, per spectrogram cell, the machine-to-background level
``L`` (dB) and the cells where transient background events dominate
(:mod:`asdxai.data.components`); these functions measure a map ``m`` against them.
All take numpy arrays of shape (T, F) and work on any map and mask pair.

Notation: ``d = |m - median(m)|`` is the map's *deviation* -- its structure, whether
a cell reads as more anomalous or more normal than the typical cell; ``N`` is the
number of cells.

* :func:`machine_focus` -- ROC AUC of ``d`` as a detector of machine-dominant cells
  (``L > 0``) against background-dominant ones: 0.5 = the map's structure ignores
  the machine, 1 = it sits on the machine, < 0.5 = on the background.
* :func:`machine_correlation` -- Pearson ``r(m, L)``: negative = machine regions read
  as normal (the study's Fig. 4b), positive = as anomalous.
* :func:`event_share` -- ``(sum_E d / sum d) / (|E| / N)``, the deviation mass on the
  background-event cells ``E`` over their area share: 1 = no preference, > 1 = drawn
  to background events.
* :func:`map_focus` -- all of them plus the pixel AUC and pointing game against the
  anomaly mask (:mod:`asdxai.explain.faithfulness`), for whichever ground truths a
  clip has, as a :class:`FocusResult`.

Undefined values (a ground truth missing, one class empty, a constant map) are NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError
from .faithfulness import pixel_auc, pointing_game

__all__ = [
    "FocusResult",
    "event_share",
    "machine_correlation",
    "machine_focus",
    "map_deviation",
    "map_focus",
]


def _pair(importance: np.ndarray, truth: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    importance = np.asarray(importance, dtype=np.float64)
    truth = np.asarray(truth)
    if importance.ndim != 2 or importance.shape != truth.shape:
        raise ConfigError(
            f"importance shape {importance.shape} and {name} shape {truth.shape} "
            "must be the same (T, F)"
        )
    return importance, truth


def map_deviation(importance: np.ndarray) -> np.ndarray:
    """The map's structure ``d = |m - median(m)|`` [shape=(T, F)] float64."""
    m = np.asarray(importance, dtype=np.float64)
    return np.abs(m - np.median(m))


def machine_focus(importance: np.ndarray, level_db: np.ndarray) -> float:
    r"""How much of the map's structure sits on the machine.

    .. math::

        \mathrm{focus} = \mathrm{AUC}\big(y = [L > 0],\; s = |m - \mathrm{median}(m)|\big)
        = P(d_i > d_j \mid L_i > 0 \ge L_j) + \tfrac12 P(d_i = d_j \mid \cdot)

    the probability that a random machine-dominant cell deviates more from the map's
    median than a random background-dominant cell (scikit-learn ``roc_auc_score``).

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)], the map ``m``
    level_db : np.ndarray [shape=(T, F)], machine-to-background level ``L`` in dB

    Returns
    -------
    float in [0, 1]: 0.5 = the structure ignores the machine, 1 = it lies wholly on
    machine-dominant cells, < 0.5 = on background-dominant cells; NaN if either class
    of cells is empty.
    """
    from sklearn.metrics import roc_auc_score

    importance, level = _pair(importance, level_db, "level_db")
    machine = np.asarray(level, dtype=np.float64) > 0
    if machine.all() or not machine.any():
        return math.nan
    return float(roc_auc_score(machine.ravel(), map_deviation(importance).ravel()))


def machine_correlation(importance: np.ndarray, level_db: np.ndarray) -> float:
    r"""Signed correlation of the map with the machine-to-background level.

    .. math::

        r = \frac{\sum_i (m_i - \bar m)(L_i - \bar L)}
                 {\sqrt{\sum_i (m_i - \bar m)^2}\,\sqrt{\sum_i (L_i - \bar L)^2}}

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)], the map ``m`` (high = anomalous)
    level_db : np.ndarray [shape=(T, F)], machine-to-background level ``L`` in dB

    Returns
    -------
    float in [-1, 1]: negative = the machine's regions read as normal (the study's
    Fig. 4b), positive = as anomalous; NaN if the map or the level is constant.
    """
    importance, level = _pair(importance, level_db, "level_db")
    m = importance.ravel() - importance.mean()
    v = np.asarray(level, dtype=np.float64).ravel()
    v = v - v.mean()
    denom = math.sqrt(float(m @ m) * float(v @ v))
    if denom == 0.0:
        return math.nan
    return float(np.clip((m @ v) / denom, -1.0, 1.0))


def event_share(importance: np.ndarray, events: np.ndarray) -> float:
    r"""How strongly the map's structure is drawn to background events.

    .. math::

        \mathrm{share} = \frac{\sum_{i \in E} d_i \,/\, \sum_i d_i}{|E| \,/\, N},
        \qquad d = |m - \mathrm{median}(m)|

    the fraction of the map's deviation mass on the event cells ``E`` divided by their
    fraction of the area.

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)], the map ``m``
    events : np.ndarray [shape=(T, F)] bool, cells dominated by transient background events

    Returns
    -------
    float >= 0: 1 = no preference, > 1 = drawn to background events (at most
    ``N / |E|``), < 1 = avoids them; NaN if there are no event cells or the map is
    constant.
    """
    importance, events = _pair(importance, events, "events")
    events = events.astype(bool)
    d = map_deviation(importance)
    total = float(d.sum())
    if not events.any() or total == 0.0:
        return math.nan
    return float(d[events].sum() / total / events.mean())


@dataclass(frozen=True)
class FocusResult:
    """Where one map looks; NaN where the clip lacks the ground truth a measure needs.

    Attributes
    ----------
    machine_focus : float, :func:`machine_focus` (components)
    machine_correlation : float, :func:`machine_correlation` (components)
    event_share : float, :func:`event_share` (components)
    pixel_auc : float, :func:`~asdxai.explain.faithfulness.pixel_auc` (anomaly mask)
    pointing_game : float, 1.0 / 0.0, :func:`~asdxai.explain.faithfulness.pointing_game`
        (anomaly mask)
    machine_area : float, fraction of cells that are machine-dominant (components)
    event_area : float, fraction of cells dominated by background events (components)
    """

    machine_focus: float = math.nan
    machine_correlation: float = math.nan
    event_share: float = math.nan
    pixel_auc: float = math.nan
    pointing_game: float = math.nan
    machine_area: float = math.nan
    event_area: float = math.nan

    def to_dict(self) -> dict[str, float]:
        """``{name: value}`` of every measure (plain floats, NaN where undefined)."""
        return {k: float(v) for k, v in asdict(self).items()}


def map_focus(
    importance: np.ndarray,
    anomaly_mask: np.ndarray | None = None,
    level_db: np.ndarray | None = None,
    events: np.ndarray | None = None,
    tolerance: int = 0,
) -> FocusResult:
    """Every focus measure of one map for whichever ground truths exist.

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)], the map (high = anomalous)
    anomaly_mask : np.ndarray [shape=(T, F)] bool or None, ground-truth anomaly cells
        (pixel AUC, pointing game; NaN when None or when it has no True / no False cell,
        e.g. on a normal clip)
    level_db : np.ndarray [shape=(T, F)] or None, machine-to-background level (machine
        focus, machine correlation, machine area)
    events : np.ndarray [shape=(T, F)] bool or None, background-event cells (event
        share, event area)
    tolerance : int, pointing-game tolerance in cells (Chebyshev distance)

    Returns
    -------
    FocusResult

    Examples
    --------
    >>> truth = load_components(clip)  # doctest: +SKIP
    >>> map_focus(result.importance, load_anomaly_mask(clip), truth.level_db, truth.events)
    """
    importance = np.asarray(importance, dtype=np.float64)
    values: dict[str, float] = {}
    if anomaly_mask is not None:
        importance, mask = _pair(importance, anomaly_mask, "anomaly_mask")
        mask = mask.astype(bool)
        if mask.any() and not mask.all():
            values["pixel_auc"] = pixel_auc(importance, mask)
            values["pointing_game"] = float(pointing_game(importance, mask, tolerance))
    if level_db is not None:
        values["machine_focus"] = machine_focus(importance, level_db)
        values["machine_correlation"] = machine_correlation(importance, level_db)
        values["machine_area"] = float(np.mean(np.asarray(level_db, dtype=np.float64) > 0))
    if events is not None:
        values["event_share"] = event_share(importance, events)
        values["event_area"] = float(np.mean(np.asarray(events, dtype=bool)))
    return FocusResult(**values)
