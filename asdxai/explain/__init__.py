"""Explanations of black-box anomaly scorers.

``RISE(score_fn).attribute(spec)`` computes an importance map (see
:mod:`asdxai.explain.rise`); :mod:`asdxai.explain.faithfulness` measures how
faithful a map is (deletion / insertion curves, localisation against a
ground-truth mask); :mod:`asdxai.explain.result` stores maps in ``.h5`` files.
"""

from .faithfulness import deletion_curve, insertion_curve, localisation, pixel_auc, pointing_game
from .masks import RISEMaskConfig, generate_masks, mask_second_moment
from .result import load_result, save_result
from .rise import RISE, RISEExecution, RISEResult, split_half_agreement

__all__ = [
    "RISE",
    "RISEExecution",
    "RISEMaskConfig",
    "RISEResult",
    "deletion_curve",
    "generate_masks",
    "insertion_curve",
    "load_result",
    "localisation",
    "mask_second_moment",
    "pixel_auc",
    "pointing_game",
    "save_result",
    "split_half_agreement",
]
