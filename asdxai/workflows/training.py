"""Train the model a recipe describes and fit its backend: the body of ``asdxai train``, the
figure scripts' cached models, the demo's ``--train`` path and the bundled models.

A checkpoint written here is a complete black box (encoder + fitted k-means backend), so every
other command can score and explain it at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .._runtime import resolve_device
from ..data.records import scan
from ..recipes import Recipe
from ..train import train_model
from .evaluate import fit_backend as fit

log = logging.getLogger(__name__)


def training_records(data: str | os.PathLike, splits: tuple[str, ...]) -> list:
    """The clip records of the training ``splits`` of the tree at ``data``."""
    records: list = []
    for split in splits:
        records += scan(data, split=split)
    return records


def train_recipe(
    recipe: Recipe,
    data: str | os.PathLike,
    *,
    seed: int | None = None,
    device: str | torch.device = "auto",
    fit_backend: bool = True,
    num_workers: int = 0,
    progress: bool = True,
    on_epoch: Callable[[str, int, dict], Any] | None = None,
    on_error: str = "raise",
    records: list | None = None,
):
    """Train one trial of ``recipe`` on the tree at ``data`` and fit its backend.

    Parameters
    ----------
    recipe : :class:`asdxai.recipes.Recipe`
    data : dataset root (DCASE layout)
    seed : the trial's seed (default: the recipe's)
    device : torch device or ``"auto"``
    fit_backend : fit the k-means backend on the training clips afterwards (the recipe's
        ``backend`` variant), so the checkpoint can be scored and explained at once
    num_workers : wav-decoding worker processes
    progress : tqdm bars
    on_epoch : ``on_epoch(model_key, epoch, stats)`` after every epoch
    on_error : "raise" or "skip" unreadable clips (skipped paths go into the provenance)
    records : the training records, if the caller has scanned them already

    Returns
    -------
    Checkpoint
    """
    dev = resolve_device(device)
    if records is None:
        records = training_records(data, recipe.splits)
    cfg = recipe.train_config(seed=seed, num_workers=num_workers)
    ckpt = train_model(
        records, net_cfg=recipe.net_config(), train_cfg=cfg, device=dev, progress=progress,
        callback=on_epoch, on_error=on_error,
    )  # fmt: skip
    if fit_backend:
        skipped = set(ckpt.provenance.get("skipped_clips", []))
        usable = [r for r in records if str(r.path) not in skipped]
        ckpt = fit(ckpt, usable, device=dev, seed=cfg.seed, progress=progress,
                   num_workers=num_workers, variant=recipe.backend)  # fmt: skip
    return ckpt


def trial_paths(out: str | os.PathLike, trials: int) -> list[Path]:
    """Checkpoint paths of ``trials`` trials: ``out`` itself, or ``<stem>_trial<i>.pt``."""
    out = Path(out)
    if trials == 1:
        return [out]
    return [out.with_name(f"{out.stem}_trial{i}{out.suffix or '.pt'}") for i in range(trials)]
