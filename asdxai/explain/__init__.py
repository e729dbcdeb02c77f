"""Explanations of black-box anomaly scorers.

``RISE(score_fn).attribute(spec)`` computes an importance map (see
:mod:`asdxai.explain.rise`); :mod:`asdxai.explain.faithfulness` measures how
faithful a map is (deletion / insertion curves, localisation against a
ground-truth mask); :mod:`asdxai.explain.focus` measures where a map looks (machine
vs background vs background events); :mod:`asdxai.explain.reference` builds a normal
reference for masking; :mod:`asdxai.explain.result` stores maps in
``.h5`` files.
"""

from .faithfulness import deletion_curve, insertion_curve, localisation, pixel_auc, pointing_game
from .focus import (
    FocusResult,
    event_share,
    machine_contrast,
    machine_correlation,
    machine_focus,
    machine_partial_correlation,
    map_deviation,
    map_focus,
)
from .masks import RISEMaskConfig, generate_masks, mask_second_moment
from .reference import normal_reference
from .result import load_result, save_result
from .rise import RISE, RISEExecution, RISEResult, split_half_agreement

__all__ = [
    "FocusResult",
    "RISE",
    "RISEExecution",
    "RISEMaskConfig",
    "RISEResult",
    "deletion_curve",
    "event_share",
    "generate_masks",
    "insertion_curve",
    "load_result",
    "localisation",
    "machine_contrast",
    "machine_correlation",
    "machine_focus",
    "machine_partial_correlation",
    "map_deviation",
    "map_focus",
    "mask_second_moment",
    "normal_reference",
    "pixel_auc",
    "pointing_game",
    "save_result",
    "split_half_agreement",
]
