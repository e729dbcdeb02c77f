"""Workflows: one function per job a user runs, shared by the CLI, the demo, the figure scripts
and the examples (which add only argument parsing and printing).

* :mod:`.defaults` -- default data root, bundled checkpoints, cache folder;
* :mod:`.training` -- train a recipe and fit its backend;
* :mod:`.evaluate` -- fit a backend from disk, score a checkpoint on a split;
* :mod:`.explain` -- RISE maps of clips (inputs, binding, resume, measures, files);
* :mod:`.embedding` -- embed and project a split with t-SNE.
"""

from .defaults import bundled_checkpoint, default_checkpoint, default_data_root
from .evaluate import ScoreReport, fit_backend, score_checkpoint
from .explain import ExplainedClip, Explainer, MapSettings, explain_clips, output_stem
from .training import train_recipe

__all__ = [
    "ExplainedClip",
    "Explainer",
    "MapSettings",
    "ScoreReport",
    "bundled_checkpoint",
    "default_checkpoint",
    "default_data_root",
    "explain_clips",
    "fit_backend",
    "output_stem",
    "score_checkpoint",
    "train_recipe",
]
