"""Where does an importance map look? Measures against machine / background ground truth.

The study's explanation is a claim about where the maps look: a model trained on an
auxiliary classification task isolates the machine sound (its map follows the machine, the
machine's high-energy regions read as *normal*), a one-class model's map looks random or
follows background events. On a synthetic clip the generator records, per spectrogram cell,
the machine-to-background level ``L`` (dB) and the cells where transient background events
dominate (:mod:`asdxai.data.components`); these functions measure a map ``m`` against them.
All take numpy arrays of shape (T, F) and work on any map and mask pair.

Notation: ``A = AUC(m; L > 0)`` is the probability that a random machine-dominant cell has a
higher map value than a random background-dominant cell (ties count one half; the
Mann-Whitney statistic over the cells' average ranks).

* :func:`machine_focus` -- ``max(A, 1 - A)``: how well the map's *ranking* of the cells
  separates the machine from the background, in either direction. Stated properties (each a
  test on hand-built maps, ``tests/test_focus.py``): the exact machine mask, either sign,
  scores the maximum 1 at every machine area (10 % .. 90 % tested); a random map scores
  chance, 0.5 (plus the folding's small positive bias, about ``0.8 sd(A)``: 0.001-0.002
  on a 311 x 513 map); any strictly monotone rescaling of the map (dB or linear, sign flip, ranks)
  leaves it unchanged. It replaces a median-based version (the AUC of ``|m - median(m)|``),
  which gave the exact machine mask 0 whenever the machine covered more than half the cells.
* :func:`machine_contrast` -- the signed twin, ``2 A - 1`` in [-1, 1] (the rank-biserial
  correlation): ``-1`` = every machine cell reads more *normal* than every background cell
  (the study's Fig. 4b), ``+1`` = more anomalous; it flips sign with the map, and
  ``machine_focus = (1 + |machine_contrast|) / 2``.
* :func:`machine_correlation` -- Pearson ``r(m, L)``: the linear, level-weighted version.
* :func:`machine_partial_correlation` -- the partial Pearson correlation of ``m`` and ``L``
  given the clip's log energy ``E`` (its dB spectrogram): how the map relates to the machine
  *beyond* what the cells' loudness explains. The energy map itself (``m = E``) scores 0.
* :func:`event_share` -- ``(sum_E d / sum d) / (|E| / N)`` with ``d = |m - median(m)|``
  (:func:`map_deviation`), the deviation mass on the background-event cells ``E`` over their
  area share: 1 = no preference, > 1 = drawn to background events.
* :func:`map_focus` -- all of them plus the pixel AUC and pointing game against the anomaly
  mask (:mod:`asdxai.explain.faithfulness`), for whichever ground truths a clip has, as a
  :class:`FocusResult`.

Every measure is meant to be read beside the same measure of the clip's **energy map** (its
log spectrogram, a map that knows nothing of the model): a loud machine makes the energy map
score a high machine focus by itself, so a model's map looks at the machine only as far as it
beats that baseline -- or as far as its partial correlation is away from 0.

Undefined values (a ground truth missing, one class empty, a constant map) are NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError
from .faithfulness import pixel_auc, pointing_game
from .rise import split_half_agreement

__all__ = [
    "FocusResult",
    "event_share",
    "machine_contrast",
    "machine_correlation",
    "machine_focus",
    "machine_partial_correlation",
    "map_deviation",
    "map_focus",
]


def _pair(importance: np.ndarray, truth: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    importance = np.asarray(importance, dtype=np.float64)
    truth = np.asarray(truth)
    if importance.ndim != 2 or importance.shape != truth.shape:
        raise ConfigError(
            f"importance shape {importance.shape} and {name} shape {truth.shape} "
            "must be the same (T, F)",
            param=name,
        )
    return importance, truth


def map_deviation(importance: np.ndarray) -> np.ndarray:
    """The map's structure ``d = |m - median(m)|`` [shape=(T, F)] float64."""
    m = np.asarray(importance, dtype=np.float64)
    return np.abs(m - np.median(m))


def _machine_auc(importance: np.ndarray, level_db: np.ndarray) -> float:
    """``A = AUC(m; L > 0)`` from average ranks (NaN: one class empty or a constant map)."""
    # scipy on first use: scipy.stats costs ~1/2 of torch's import (measured)
    from scipy.stats import rankdata

    importance, level = _pair(importance, level_db, "level_db")
    machine = np.asarray(level, dtype=np.float64).ravel() > 0
    n1 = int(machine.sum())
    n0 = machine.size - n1
    m = importance.ravel()
    if n1 == 0 or n0 == 0 or np.ptp(m) == 0:
        return math.nan
    r1 = float(rankdata(m)[machine].sum())
    return (r1 - n1 * (n1 + 1) / 2) / (n1 * n0)


def machine_contrast(importance: np.ndarray, level_db: np.ndarray) -> float:
    r"""Signed rank contrast of machine-dominant against background-dominant cells.

    .. math::

        c = 2A - 1, \qquad A = P(m_i > m_j \mid L_i > 0 \ge L_j) + \tfrac12 P(m_i = m_j \mid \cdot)

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)], the map ``m`` (high = anomalous)
    level_db : np.ndarray [shape=(T, F)], machine-to-background level ``L`` in dB

    Returns
    -------
    float in [-1, 1]: -1 = every machine cell reads more normal than every background cell
    (the study's Fig. 4b), +1 = more anomalous, 0 = no preference; ``c(-m) = -c(m)`` and
    ``c(g(m)) = c(m)`` for any strictly increasing ``g``. NaN if either class of cells is
    empty or the map is constant.
    """
    return 2.0 * _machine_auc(importance, level_db) - 1.0


def machine_focus(importance: np.ndarray, level_db: np.ndarray) -> float:
    r"""How well the map's ranking of the cells separates the machine from the background.

    .. math::

        \mathrm{focus} = \max(A, 1 - A) = \tfrac12 (1 + |c|)

    with ``A`` and ``c`` of :func:`machine_contrast` (a folded ROC AUC).

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)], the map ``m``
    level_db : np.ndarray [shape=(T, F)], machine-to-background level ``L`` in dB

    Returns
    -------
    float in [0.5, 1]: 1 = the map is the machine mask (either sign) or any strictly monotone
    function of it, at any machine area; 0.5 = chance (a random map: 0.5 plus a bias of about
    ``0.8 sd(A)``, ``sd(A)^2 = (n_1 + n_0 + 1) / (12 n_1 n_0)`` for ``n_1`` machine and ``n_0``
    background cells). Invariant to strictly monotone rescaling of the map. NaN if either
    class of cells is empty or the map is constant.
    """
    a = _machine_auc(importance, level_db)
    return max(a, 1.0 - a) if math.isfinite(a) else math.nan


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """The project's one Pearson correlation, clipped to [-1, 1] against rounding."""
    return float(np.clip(split_half_agreement(a, b), -1.0, 1.0))


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
    return _pearson(importance.ravel(), np.asarray(level, dtype=np.float64).ravel())


def machine_partial_correlation(
    importance: np.ndarray, level_db: np.ndarray, log_energy: np.ndarray
) -> float:
    r"""Correlation of the map with the machine level *beyond* the cells' energy.

    .. math::

        r_{mL \cdot E} = \frac{r_{mL} - r_{mE}\, r_{LE}}
                              {\sqrt{(1 - r_{mE}^2)(1 - r_{LE}^2)}}

    the Pearson correlation of the residuals of ``m`` and ``L`` after a linear regression on
    the log energy ``E``.

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)], the map ``m`` (high = anomalous)
    level_db : np.ndarray [shape=(T, F)], machine-to-background level ``L`` in dB
    log_energy : np.ndarray [shape=(T, F)], the clip's log spectrogram ``E`` in dB

    Returns
    -------
    float in [-1, 1]: the sign reads as :func:`machine_correlation`'s; 0 for a map that is an
    affine function of ``E`` (the energy map itself: nothing beyond energy). NaN if ``m``,
    ``L`` or ``E`` is constant or ``L`` is an affine function of ``E``.
    """
    importance, level = _pair(importance, level_db, "level_db")
    _, energy = _pair(importance, log_energy, "log_energy")
    m = importance.ravel()
    v = np.asarray(level, dtype=np.float64).ravel()
    e = np.asarray(energy, dtype=np.float64).ravel()
    r_ml, r_me, r_le = _pearson(m, v), _pearson(m, e), _pearson(v, e)
    if not all(map(math.isfinite, (r_ml, r_me, r_le))) or 1.0 - r_le**2 < 1e-12:
        return math.nan
    if 1.0 - r_me**2 < 1e-12:  # the map is E up to an affine map: no residual
        return 0.0
    r = (r_ml - r_me * r_le) / math.sqrt((1.0 - r_me**2) * (1.0 - r_le**2))
    return float(np.clip(r, -1.0, 1.0))


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
    machine_contrast : float, :func:`machine_contrast` (components)
    machine_correlation : float, :func:`machine_correlation` (components)
    machine_partial_r : float, :func:`machine_partial_correlation` (components and the clip's
        log energy)
    event_share : float, :func:`event_share` (components)
    pixel_auc : float, :func:`~asdxai.explain.faithfulness.pixel_auc` (anomaly mask)
    pointing_game : float, 1.0 / 0.0, :func:`~asdxai.explain.faithfulness.pointing_game`
        (anomaly mask)
    machine_area : float, fraction of cells that are machine-dominant (components)
    event_area : float, fraction of cells dominated by background events (components)
    """

    machine_focus: float = math.nan
    machine_contrast: float = math.nan
    machine_correlation: float = math.nan
    machine_partial_r: float = math.nan
    event_share: float = math.nan
    pixel_auc: float = math.nan
    pointing_game: float = math.nan
    machine_area: float = math.nan
    event_area: float = math.nan

    def to_dict(self, *, prefix: str = "") -> dict[str, float]:
        """``{prefix + name: value}`` of every measure (plain floats, NaN where undefined)."""
        return {prefix + k: float(v) for k, v in asdict(self).items()}


def map_focus(
    importance: np.ndarray,
    *,
    anomaly_mask: np.ndarray | None = None,
    level_db: np.ndarray | None = None,
    events: np.ndarray | None = None,
    tolerance: int = 0,
    log_energy: np.ndarray | None = None,
) -> FocusResult:
    """Every focus measure of one map for whichever ground truths exist.

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)], the map (high = anomalous)
    anomaly_mask : np.ndarray [shape=(T, F)] bool or None, ground-truth anomaly cells
        (pixel AUC, pointing game; NaN when None or when it has no True / no False cell,
        e.g. on a normal clip)
    level_db : np.ndarray [shape=(T, F)] or None, machine-to-background level (machine
        focus, contrast, correlation, area)
    events : np.ndarray [shape=(T, F)] bool or None, background-event cells (event
        share, event area)
    tolerance : int, pointing-game tolerance in cells (Chebyshev distance)
    log_energy : np.ndarray [shape=(T, F)] or None, the clip's log spectrogram in dB (with
        ``level_db``: the partial correlation beyond energy). Pass the same array as
        ``importance`` for the energy-map baseline.

    Returns
    -------
    FocusResult

    Examples
    --------
    >>> truth = load_components(clip)  # doctest: +SKIP
    >>> mask = load_anomaly_mask(clip)  # doctest: +SKIP
    >>> map_focus(result.importance, mask, truth.level_db, truth.events, log_energy=log_spec)
    >>> map_focus(log_spec, mask, truth.level_db, truth.events, log_energy=log_spec)  # baseline
    """
    importance = np.asarray(importance, dtype=np.float64)
    values: dict[str, float] = {}
    if anomaly_mask is not None:
        importance, mask = _pair(importance, anomaly_mask, "anomaly_mask")
        mask = mask.astype(bool)
        if mask.any() and not mask.all():
            values["pixel_auc"] = pixel_auc(importance, mask)
            values["pointing_game"] = float(pointing_game(importance, mask, tolerance=tolerance))
    if level_db is not None:
        values["machine_focus"] = machine_focus(importance, level_db)
        values["machine_contrast"] = machine_contrast(importance, level_db)
        values["machine_correlation"] = machine_correlation(importance, level_db)
        values["machine_area"] = float(np.mean(np.asarray(level_db, dtype=np.float64) > 0))
        if log_energy is not None:
            values["machine_partial_r"] = machine_partial_correlation(
                importance, level_db, log_energy
            )
    if events is not None:
        values["event_share"] = event_share(importance, events)
        values["event_area"] = float(np.mean(np.asarray(events, dtype=bool)))
    return FocusResult(**values)
