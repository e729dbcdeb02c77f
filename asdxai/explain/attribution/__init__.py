"""RISE against the standard attribution methods (Captum) on one black box.

:func:`compute_map` makes one method's ``(T, F)`` map of a spectrogram with its cost
(:mod:`~asdxai.explain.attribution.methods`); :mod:`~asdxai.explain.attribution.measures`
measures a map's localisation against the synthetic ground truth and its faithfulness to the
black box; :func:`compare_methods` does both for a list of methods on one input.
"""

from .measures import (
    FAITHFULNESS,
    FILLS,
    LOCALISATION,
    faithfulness_measures,
    localisation_measures,
    rank_agreement,
    stability,
)
from .methods import (
    METHODS,
    MethodMap,
    MethodSettings,
    cell_ids,
    compute_map,
    median_frame,
    stft_resynthesis,
)
from .runner import COST, MeasureSettings, MethodResult, compare_methods

__all__ = [
    "COST",
    "FAITHFULNESS",
    "FILLS",
    "LOCALISATION",
    "METHODS",
    "MeasureSettings",
    "MethodMap",
    "MethodResult",
    "MethodSettings",
    "cell_ids",
    "compare_methods",
    "compute_map",
    "faithfulness_measures",
    "localisation_measures",
    "median_frame",
    "rank_agreement",
    "stability",
    "stft_resynthesis",
]
