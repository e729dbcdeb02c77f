"""Measures of one map: where it looks (localisation), whether the black box agrees (faithfulness).

Localisation (needs the synthetic ground truth; :func:`asdxai.explain.focus.map_focus`):
pixel AUC and pointing game against the anomaly mask, machine focus, signed machine contrast and
correlation, the partial correlation beyond the clip's log energy and background-event share
against the machine / background components; and
``deviation_auc``, the pixel AUC of the map's structure ``|m - median(m)|``
(:func:`~asdxai.explain.focus.map_deviation`): whether the map singles the anomaly out in
either direction (a map that reads the anomaly as *normal* has a pixel AUC below 0.5 but a
high deviation AUC).

Faithfulness (needs only the black box). A removed cell takes the value of the *reference*
(:data:`FILLS`): ``"median"`` (default) = the clip's median frame at that bin, the clip's
stationary part, so removing a cell keeps the input close to the training data; ``"zero"`` =
silence, the perturbation RISE's masks and the Captum baselines here use themselves (an all-silent
spectrogram is far from the training data: most models score it as very anomalous, so zero-fill
curves mostly measure that). Both are constant over time in every bin, and the encoders subtract
each bin's temporal mean, so a fully removed bin is the same under either: they differ only on
partly removed bins. A (T, F) tensor is a reference of its own, e.g. normal content
(:func:`asdxai.explain.reference.normal_reference`). With ``s`` the score of the unmasked input:

* ``deletion`` -- area under the deletion curve (:func:`asdxai.explain.faithfulness.deletion_curve`,
  cells of one pixel, removed in order of decreasing importance) divided by ``s``: lower =
  removing what the map calls anomalous lowers the score faster;
* ``insertion`` -- the insertion curve's area divided by ``s``: higher is better;
* ``ins_minus_del`` -- ``insertion - deletion``, one number per map (higher is better);
* ``band_deletion`` -- frequency-band removal (the 2026 ASD study): whole frequency bands
  (the map's mean over all frames and the band's bins ranks them) removed one by one, area over
  ``s``; lower is better;
* ``average_drop`` and ``average_increase`` (L-MAC): keep only the top ``q`` of the cells
  (the rest from the reference) and score it, ``s_q``; drop = ``max(0, s - s_q) / s`` (lower
  is better), increase = ``1 if s_q > s`` (higher is better). Averaged over clips these are
  L-MAC's AD and AI.

``stability`` is the Pearson correlation of two maps of the same input with different seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ...constants import FILLS
from ...errors import ConfigError
from ..faithfulness import deletion_curve, insertion_curve, pixel_auc
from ..focus import map_deviation, map_focus
from ..rise import split_half_agreement
from .methods import median_frame

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


#: Localisation measures (from :func:`~asdxai.explain.focus.map_focus`) and whether higher is
#: better for each (None: signed, no better direction).
LOCALISATION = {
    "pixel_auc": True,
    "pointing_game": True,
    "deviation_auc": True,
    "machine_focus": None,
    "machine_contrast": None,
    "machine_correlation": None,
    "machine_partial_r": None,
    "event_share": False,
}
#: Faithfulness measures and whether higher is better.
FAITHFULNESS = {
    "deletion": False,
    "insertion": True,
    "ins_minus_del": True,
    "band_deletion": False,
    "average_drop": False,
    "average_increase": True,
}


def localisation_measures(
    importance: np.ndarray,
    anomaly_mask: np.ndarray | None,
    *,
    level_db: np.ndarray | None = None,
    events: np.ndarray | None = None,
    log_energy: np.ndarray | None = None,
) -> dict[str, float]:
    """The :data:`LOCALISATION` measures of one map (NaN where the ground truth is missing;
    ``machine_partial_r`` needs the clip's log spectrogram ``log_energy`` [shape=(T, F), dB])."""
    out = map_focus(
        importance,
        anomaly_mask=anomaly_mask,
        level_db=level_db,
        events=events,
        log_energy=log_energy,
    ).to_dict()
    out["deviation_auc"] = math.nan
    if anomaly_mask is not None and np.isfinite(out["pixel_auc"]):
        out["deviation_auc"] = pixel_auc(map_deviation(importance), anomaly_mask)
    return {k: out[k] for k in LOCALISATION}


def faithfulness_measures(
    score_fn: ScoreFn,
    spec: torch.Tensor,
    importance: np.ndarray,
    *,
    steps: int = 50,
    bands: int = 34,
    top_fraction: float = 0.2,
    fill: str | torch.Tensor = "median",
    batch_size: int = 64,
) -> dict[str, float]:
    """The :data:`FAITHFULNESS` measures of one map (see the module docstring).

    Parameters
    ----------
    score_fn : the black box, Tensor [shape=(B, T, F)] -> Tensor [shape=(B,)], on ``spec``'s device
    spec : Tensor [shape=(T, F)], the explained input
    importance : np.ndarray [shape=(T, F)]
    steps : int, points of the deletion / insertion curves (minus one)
    bands : int, frequency bands of the band removal (bands of ``ceil(F / bands)`` bins)
    top_fraction : float in (0, 1), the kept share ``q`` of Average Drop / Increase
    fill : one of :data:`FILLS`, or a reference Tensor [shape=(T, F)] whose cells removed
        cells become (e.g. :func:`~asdxai.explain.reference.normal_reference`)
    batch_size : int, inputs per call of the black box

    Returns
    -------
    dict measure -> float; NaN for every ratio when the unmasked score is not positive.
    """
    if not 0.0 < top_fraction < 1.0:
        raise ConfigError(
            f"top_fraction must lie in (0, 1), got {top_fraction}", param="top_fraction"
        )
    x = spec.detach().to(torch.float32)
    importance = np.asarray(importance, dtype=np.float64)
    t, f = importance.shape
    if isinstance(fill, torch.Tensor):
        if fill.shape != x.shape:
            raise ConfigError(f"fill shape {tuple(fill.shape)} != spec shape {tuple(x.shape)}",
                              param="fill")  # fmt: skip
        reference = fill.detach().to(device=x.device, dtype=torch.float32)
    elif fill in FILLS:
        reference = median_frame(x) if fill == "median" else torch.zeros_like(x)
    else:
        raise ConfigError(f"fill must be one of {FILLS} or a (T, F) tensor, got {fill!r}",
                          param="fill")  # fmt: skip

    def filled(batch: torch.Tensor) -> torch.Tensor:  # the curves mark removed cells with NaN
        return score_fn(torch.where(torch.isnan(batch), reference, batch))

    kwargs = {"steps": steps, "fill": math.nan, "batch_size": batch_size, "device": x.device}
    with torch.no_grad():
        s = float(score_fn(x[None])[0])
    if not s > 0:
        return {k: math.nan for k in FAITHFULNESS}
    deletion = deletion_curve(filled, x, importance, **kwargs).auc / s
    insertion = insertion_curve(filled, x, importance, **kwargs).auc / s
    band = (t, -(-f // bands))
    band_del = (
        deletion_curve(filled, x, importance, cell=band, **{**kwargs, "steps": bands}).auc / s
    )
    keep = max(1, round(top_fraction * importance.size))
    top = np.zeros(importance.size, dtype=bool)
    top[np.argsort(-importance.ravel(), kind="stable")[:keep]] = True
    kept = torch.where(torch.as_tensor(top.reshape(t, f), device=x.device), x, reference)
    with torch.no_grad():
        s_q = float(score_fn(kept[None])[0])
    return {
        "deletion": deletion,
        "insertion": insertion,
        "ins_minus_del": insertion - deletion,
        "band_deletion": band_del,
        "average_drop": max(0.0, s - s_q) / s,
        "average_increase": float(s_q > s),
    }


def stability(a: np.ndarray, b: np.ndarray) -> float:
    """Seed-to-seed stability: Pearson correlation of two maps of one input (NaN if constant)."""
    return split_half_agreement(a, b)


def rank_agreement(
    rows: Sequence[dict], *, first: str = "pixel_auc", second: str = "ins_minus_del"
) -> float:
    """Spearman correlation between two measures across the methods of one clip and model.

    Parameters
    ----------
    rows : one dict per method (of one clip and model) holding both measures
    first, second : measure names

    Returns
    -------
    float in [-1, 1]; NaN with fewer than three finite pairs or a constant measure.
    """
    # scipy on first use: scipy.stats costs ~1/2 of torch's import (measured)
    from scipy.stats import spearmanr

    pairs = np.array([(r[first], r[second]) for r in rows], dtype=np.float64)
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    if len(pairs) < 3 or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
        return math.nan
    return float(spearmanr(pairs[:, 0], pairs[:, 1]).statistic)
