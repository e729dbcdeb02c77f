"""How faithful is an importance map? Deletion / insertion curves and localisation scores.

* **Deletion**: remove time–frequency cells from the input (set them to the fill
  value) in order of decreasing importance and record the anomaly score after
  every step. For an ASD map (high = anomalous) a faithful map makes the score
  fall fast: a small area under the deletion curve.
* **Insertion**: start from the all-fill input and add cells in the same order;
  a faithful map makes the score rise fast: a large area under the insertion curve.
* **Localisation** (synthetic clips with a ground-truth anomaly mask): pixel AUC
  of the map against the mask (scikit-learn ``roc_auc_score``) and the pointing
  game (does the map's maximum fall inside the mask, with an optional tolerance).

The x axis of the curves is the fraction of cells removed / inserted (0..1); the
area is the trapezoid rule over it. Scores are raw (not normalised); compare
curves of the same clip and scorer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import Integral, Interval, check_params
from ..errors import ConfigError

log = logging.getLogger(__name__)

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CurveResult:
    """A deletion or insertion curve.

    Attributes
    ----------
    kind : "deletion" | "insertion"
    fractions : np.ndarray [shape=(S + 1,)], fraction of cells removed / inserted, 0..1
    scores : np.ndarray [shape=(S + 1,)], anomaly score at each step
    auc : float, trapezoidal area under ``scores`` over ``fractions``
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: float


def _cell_ranking(importance: np.ndarray, cell: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """Cell-id map (T, F) and cell ids sorted by decreasing mean importance."""
    t, f = importance.shape
    ct, cf = cell
    if ct <= 0 or cf <= 0 or ct > t or cf > f:
        raise ConfigError(f"cell size {cell} must be positive and fit in the map {(t, f)}")
    nt, nf = -(-t // ct), -(-f // cf)
    rows = np.arange(t) // ct
    cols = np.arange(f) // cf
    ids = rows[:, None] * nf + cols[None, :]  # (T, F)
    sums = np.bincount(ids.ravel(), weights=importance.ravel(), minlength=nt * nf)
    counts = np.bincount(ids.ravel(), minlength=nt * nf)
    order = np.argsort(-(sums / counts), kind="stable")
    return ids, order, nt * nf


def _curve(
    kind: str,
    score_fn: ScoreFn,
    spec: torch.Tensor | np.ndarray,
    importance: np.ndarray,
    cell: tuple[int, int],
    steps: int,
    fill: float,
    batch_size: int,
    device: torch.device | str | None,
) -> CurveResult:
    importance = np.asarray(importance, dtype=np.float64)
    x = torch.as_tensor(np.asarray(spec) if not isinstance(spec, torch.Tensor) else spec)
    x = x.detach().to(torch.float32)
    if device is not None:
        x = x.to(device)
    if tuple(x.shape) != importance.shape:
        raise ConfigError(f"spec shape {tuple(x.shape)} != importance shape {importance.shape}")
    positive = (Integral, Interval(1, None))
    check_params({"steps": positive, "batch_size": positive}, steps=steps, batch_size=batch_size)
    ids, order, n_cells = _cell_ranking(importance, cell)
    steps = min(steps, n_cells)
    counts = np.unique(np.linspace(0, n_cells, steps + 1).round().astype(int))
    rank = np.empty(n_cells, dtype=np.int64)
    rank[order] = np.arange(n_cells)
    pixel_rank = torch.as_tensor(rank[ids], device=x.device)  # (T, F) rank of each pixel's cell
    scores = []
    for start in range(0, len(counts), batch_size):
        ks = torch.as_tensor(counts[start : start + batch_size], device=x.device)
        top = pixel_rank[None] < ks[:, None, None]  # (B, T, F): among the first k cells
        keep = ~top if kind == "deletion" else top
        batch = torch.where(keep, x[None], torch.full_like(x[None], fill))
        with torch.no_grad():
            s = score_fn(batch)
        scores.append(torch.as_tensor(s).detach().float().reshape(-1).cpu().numpy())
    fractions = counts / n_cells
    scores_arr = np.concatenate(scores).astype(np.float64)
    auc = (
        float(np.trapezoid(scores_arr, fractions))
        if hasattr(np, "trapezoid")
        else float(np.trapz(scores_arr, fractions))
    )
    return CurveResult(kind, fractions, scores_arr, auc)


def deletion_curve(
    score_fn: ScoreFn,
    spec: torch.Tensor | np.ndarray,
    importance: np.ndarray,
    *,
    cell: tuple[int, int] = (1, 1),
    steps: int = 50,
    fill: float = 0.0,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> CurveResult:
    """Scores while removing cells of ``spec`` in order of decreasing importance.

    Parameters
    ----------
    score_fn : callable, Tensor [shape=(B, T, F)] -> Tensor [shape=(B,)]
    spec : [shape=(T, F)], the model input
    importance : np.ndarray [shape=(T, F)]
    cell : (rows, cols), size of the removed cells in frames x bins (edge cells are smaller)
    steps : int, number of removal steps (the curve has steps + 1 points)
    fill : float, value of removed cells (0 = silence for a linear magnitude spectrogram)
    batch_size : int, inputs per call of ``score_fn``
    """
    return _curve("deletion", score_fn, spec, importance, cell, steps, fill, batch_size, device)


def insertion_curve(
    score_fn: ScoreFn,
    spec: torch.Tensor | np.ndarray,
    importance: np.ndarray,
    *,
    cell: tuple[int, int] = (1, 1),
    steps: int = 50,
    fill: float = 0.0,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> CurveResult:
    """Scores while inserting cells of ``spec`` into an all-``fill`` input (same order)."""
    return _curve("insertion", score_fn, spec, importance, cell, steps, fill, batch_size, device)


def _check_mask(importance: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    importance = np.asarray(importance, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    if importance.shape != mask.shape:
        raise ConfigError(f"importance shape {importance.shape} != mask shape {mask.shape}")
    if not mask.any() or mask.all():
        raise ConfigError("the ground-truth mask must contain both True and False entries")
    return importance, mask


def pixel_auc(importance: np.ndarray, mask: np.ndarray) -> float:
    """ROC AUC of the importance values as a detector of the ground-truth pixels.

    Parameters
    ----------
    importance : np.ndarray [shape=(T, F)]
    mask : np.ndarray [shape=(T, F)], bool, True inside the anomaly
    """
    # scikit-learn on first use: its import costs ~3/4 of torch's (measured); most runs skip it
    from sklearn.metrics import roc_auc_score

    importance, mask = _check_mask(importance, mask)
    return float(roc_auc_score(mask.ravel(), importance.ravel()))


def pointing_game(importance: np.ndarray, mask: np.ndarray, *, tolerance: int = 0) -> bool:
    """True if the map's maximum lies inside the mask or within ``tolerance`` pixels of it
    (Chebyshev distance; ties: the first maximum in row-major order)."""
    importance, mask = _check_mask(importance, mask)
    check_params({"tolerance": (Integral, Interval(0, None))}, tolerance=tolerance)
    i, j = np.unravel_index(int(np.argmax(importance)), importance.shape)
    rows = slice(max(0, i - tolerance), i + tolerance + 1)
    cols = slice(max(0, j - tolerance), j + tolerance + 1)
    window = mask[rows, cols]
    return bool(window.any())


def localisation(
    importance: np.ndarray, mask: np.ndarray, *, tolerance: int = 0
) -> dict[str, float]:
    """``{"pixel_auc": ..., "pointing_game": 0.0 | 1.0}`` for one map."""
    return {
        "pixel_auc": pixel_auc(importance, mask),
        "pointing_game": float(pointing_game(importance, mask, tolerance=tolerance)),
    }
