"""A non-editable install ships the recipes and the bundled models and can train and explain.

Slow (builds a wheel): ``python -m pytest -m slow tests/slow/test_wheel.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_installed_copy_has_recipes_and_bundled_models_and_trains(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        check=True, cwd=tmp_path,
    )  # fmt: skip
    assert not (target / "asdxai" / "__init__.py").is_symlink()
    env = {**os.environ, "PYTHONPATH": str(target), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    script = f"""
import asdxai, pathlib
from asdxai.recipes import list_recipes, Recipe
from asdxai.workflows.defaults import bundled_checkpoint
from asdxai.bundled.train_bundled import MODELS
assert pathlib.Path(asdxai.__file__).is_relative_to({str(target)!r}), asdxai.__file__
assert "synthetic-small-sc-adacos-attribute" in list_recipes()
Recipe.load("dcase2022-sc-adacos-attribute").net_config()
for name in MODELS:
    assert bundled_checkpoint(name).stat().st_size > 10_000
from asdxai.data.synth import PresetConfig, generate
tiny = PresetConfig("tiny", machines=("fan",), dev_sections=(0,), eval_sections=(3,),
                    duration_s=1.0, n_train_source=6, n_train_target=2, n_test=2)
generate({str(tmp_path / "data")!r}, tiny, seed=0, workers=1, progress=False)
"""
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path)
    train = [sys.executable, "-m", "asdxai", "train", "--data", str(tmp_path / "data"),
             "--recipe", "synthetic-small-compactness-none-spectrogram", "--epochs", "1",
             "--splits", "dev-train", "--batch-size", "4", "--trials", "1", "--device", "cpu",
             "--no-progress", "--out", str(tmp_path / "model.pt")]  # fmt: skip
    subprocess.run(train, check=True, env=env, cwd=tmp_path)
    clip = next((tmp_path / "data" / "dev_data" / "fan" / "test").glob("*anomaly*.wav"))
    rise = [
        sys.executable,
        "-m",
        "asdxai",
        "rise",
        "--checkpoint",
        str(tmp_path / "model.pt"),
        "--clip",
        str(clip),
        "--n-masks",
        "2000",
        "--no-progress",
        "--device",
        "cpu",
    ]
    subprocess.run(rise, check=True, env=env, cwd=tmp_path)
    assert list((tmp_path / "rise" / "fan").glob("*.h5"))
