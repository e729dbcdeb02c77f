"""A bundled model re-trained with its command matches the shipped one.

Slow (one training run on the synthetic ``small`` tree, minutes on a CPU):
``python -m pytest -m slow tests/slow/test_bundled.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
def test_retrained_bundled_model_scores_like_the_shipped_one(tmp_path):
    from asdxai.bundled.train_bundled import MODELS
    from asdxai.checkpoint import load_checkpoint
    from asdxai.data.records import scan
    from asdxai.recipes import Recipe
    from asdxai.workflows.defaults import bundled_checkpoint, default_data_root
    from asdxai.workflows.evaluate import ScoreSettings, score_checkpoint
    from asdxai.workflows.training import train_recipe

    name = "compactness-none-spectrogram"
    data = default_data_root()
    test = scan(data, split="dev-test")
    fresh = train_recipe(Recipe.load(MODELS[name]), data, seed=0, device="cpu", progress=False)
    shipped = load_checkpoint(bundled_checkpoint(name))
    scores = []
    for ckpt in (fresh, shipped):
        with tempfile.TemporaryDirectory() as out:
            settings = ScoreSettings(protocols=("study",), device="cpu", progress=False)
            report = score_checkpoint(ckpt, test, None, out_dir=Path(out), settings=settings)
        scores.append(report.scores)
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-3, atol=1e-4)
