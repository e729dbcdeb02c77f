"""Workflows: one function per job a user runs, shared by the CLI, the demo, the figure scripts
and the examples (which add only argument parsing and printing).

* :mod:`.defaults` -- default data root, bundled checkpoints, cache folder;
* :mod:`.training` -- train a recipe and fit its backend;
* :mod:`.evaluate` -- fit a backend from disk, score a checkpoint on a split;
* :mod:`.explain` -- RISE maps of clips (inputs, binding, resume, measures, files);
* :mod:`.rise_run` -- one ``asdxai rise`` run (process group, memory and output checks, maps,
  listening);
* :mod:`.rise_dataset` -- ``asdxai rise --data``: a dataset's sections explained in one run, and
  the run's summary table read back from the ``.h5`` files;
* :mod:`.listen_report` -- make a map listenable and score the versions;
* :mod:`.figure4` -- the study's Fig. 4 (rank, pick, explain under several models, draw);
* :mod:`.embedding` -- embed and project a split with t-SNE.

Where results go is decided by :mod:`asdxai.layout` (``output_stem`` is re-exported here).
"""

from .defaults import bundled_checkpoint, default_checkpoint, default_data_root
from .evaluate import ScoreReport, ScoreSettings, fit_backend, score_checkpoint
from .explain import ExplainedClip, Explainer, MapSettings, explain_clips, output_stem
from .listen_report import ListenReport, listen_to_map
from .rise_dataset import RiseSummary, explain_dataset, select_clips, summarise_maps
from .rise_run import RunSettings, run_rise
from .training import train_recipe

__all__ = [
    "ExplainedClip",
    "Explainer",
    "ListenReport",
    "MapSettings",
    "RiseSummary",
    "RunSettings",
    "ScoreReport",
    "ScoreSettings",
    "bundled_checkpoint",
    "default_checkpoint",
    "default_data_root",
    "explain_clips",
    "explain_dataset",
    "fit_backend",
    "listen_to_map",
    "output_stem",
    "run_rise",
    "score_checkpoint",
    "select_clips",
    "summarise_maps",
    "train_recipe",
]
