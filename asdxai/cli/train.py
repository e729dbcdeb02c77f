"""``asdxai train``: train an embedding model on a DCASE-layout tree and write ``model.pt``.

Settings come from (highest first) the command line, a recipe (``--recipe NAME_OR_PATH``, a JSON
file in ``asdxai/recipes/``) and the study's defaults (:class:`asdxai.train.TrainConfig`,
:class:`asdxai.nets.NetConfig`). The k-means backend is fitted on the training clips at the end,
so the checkpoint can be scored and explained at once (``--no-backend`` skips it).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..constants import (
    ARCHS,
    BATCH_NORMS,
    LOSSES,
    ON_ERROR,
    PRECISIONS,
    RESIDUALS,
    SPECTRUM_PADDINGS,
    TASKS,
    THETA_MEDS,
    TRAIN_SPLITS,
)
from ._common import (
    add_backend,
    add_data,
    add_device,
    add_progress,
    add_seed,
    data_root,
    non_negative_float,
    positive_float,
    positive_int,
    save_checkpoint_file,
)

log = logging.getLogger(__name__)

_SPLITS = TRAIN_SPLITS


def _splits(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in _SPLITS]
    if not parts or bad:
        raise argparse.ArgumentTypeError(
            f"splits must be a comma-separated subset of {', '.join(_SPLITS)}, got {text!r}"
        )
    return parts


def _checkpoint_file(text: str) -> Path:
    """argparse type: a checkpoint file name, not a folder (``newdir/`` would lose its slash)."""
    if text.endswith(("/", os.sep)):  # an existing folder is refused with the other outputs
        raise argparse.ArgumentTypeError(
            f"{text!r} is a folder; name the checkpoint file, e.g. {text.rstrip('/')}/model.pt"
        )
    return Path(text)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train an embedding model (one of the four losses on an auxiliary task)",
        description=(
            "Train the bias-free encoder on the training clips of a DCASE-layout tree with an "
            "auxiliary classification task and write a checkpoint (weights, settings, class "
            "map, per-epoch losses). Options given here override the recipe's; unset options "
            "take the study's defaults (sc-adacos, attribute classes, 10 epochs, batch 64, "
            "Adam 1e-3, mixup, 16 sub-clusters, dual-branch encoder)."
        ),
    )
    add_data(parser)
    parser.add_argument(
        "--out", type=_checkpoint_file, default=Path("model.pt"),
        help="checkpoint file to write (default: model.pt)",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        help="recipe name in asdxai/recipes/ (e.g. dcase2022-sc-adacos-attribute, synthetic-small-"
        "sc-adacos-attribute) or path to a recipe .json; 'list' prints the recipes",
    )
    parser.add_argument("--loss", choices=LOSSES, default=None, help="training loss")
    parser.add_argument(
        "--classes",
        choices=TASKS,
        default=None,
        help="auxiliary classes: none (1), machine types, machine+section, "
        "machine+section+attributes (default: attribute)",
    )
    parser.add_argument(
        "--per-section",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train one model per section with a single class each (default: off)",
    )
    parser.add_argument(
        "--splits",
        type=_splits,
        default=None,
        help="training splits, comma-separated: dev-train, eval-train (default: dev-train; the "
        "study's class counts, e.g. 42 sections, need dev-train,eval-train)",
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs (default: 10)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=None, help="clips per step (default: 64)"
    )
    parser.add_argument(
        "--lr", type=positive_float, default=None, help="Adam learning rate (default: 1e-3)"
    )
    parser.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=None,
        help="additive weight-decay term factor, loss + wd * sum ||w||^2 (default: 1e-5)",
    )
    parser.add_argument(
        "--mixup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixup with a uniform coefficient per clip (default: on; sc-adacos needs it)",
    )
    parser.add_argument(
        "--sub-clusters",
        type=positive_int,
        default=None,
        help="sub-clusters per class for sc-adacos (default: 16)",
    )
    parser.add_argument(
        "--arch",
        choices=ARCHS,
        default=None,
        help="encoder: dual (spectrogram + spectrum, D=256) or spectrogram only (D=128) "
        "(default: dual)",
    )
    parser.add_argument(
        "--width",
        type=positive_float,
        default=None,
        help="channel-width multiplier; 1.0 = the study's sizes (default: 1.0)",
    )
    parser.add_argument(
        "--embed-dim",
        type=positive_int,
        default=None,
        help="embedding dimension (default: 256 dual / 128 spectrogram)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="autocast precision of the encoder forward (default: fp32)",
    )
    parser.add_argument(
        "--spectrum-padding",
        choices=SPECTRUM_PADDINGS,
        default=None,
        help="spectrum branch convolutions: same (the reference code; every bin reaches the "
        "output) or valid (no padding) (default: same)",
    )
    parser.add_argument(
        "--residual",
        choices=RESIDUALS,
        default=None,
        help="residual units: preact or reference (the author's code's wiring) (default: preact)",
    )
    parser.add_argument(
        "--batch-norm",
        choices=BATCH_NORMS,
        default=None,
        help="batch norm: plain (no scale / shift: bias-free, as the paper) or keras (trainable "
        "scale and shift, Keras momentum and eps, as the author's code) (default: plain)",
    )
    parser.add_argument(
        "--theta-med",
        choices=THETA_MEDS,
        default=None,
        help="adaptive scale under mixup: closest (the paper's mixed-up angle) or reference (the "
        "author's code's expression) (default: closest)",
    )
    parser.add_argument(
        "--attribute-domain",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="append the domain to attribute classes, as the author's code does (default: off)",
    )
    add_backend(parser, " fitted after training")
    add_seed(
        parser,
        None,
        "random seed, 0 to 2^32 - 1; trial i uses seed + i (default: the recipe's, else 0)",
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        default=None,
        help="independent trials with seeds S..S+N-1; N > 1 writes OUT_trial{i}.pt (default: 1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="wav-decoding worker processes (default: 0 on CPU, min(8, cores) on a GPU)",
    )
    parser.add_argument(
        "--on-error",
        choices=ON_ERROR,
        default="raise",
        help="an unreadable clip stops training with its error (raise), or is left out with a "
        "warning and counted (skip); skipped paths are stored in the checkpoint (default: raise)",
    )
    parser.add_argument(
        "--no-backend",
        dest="fit_backend",
        action="store_false",
        help="do not fit the k-means backend on the training clips after training (fit it "
        "later with `asdxai fit-backend`)",
    )
    add_device(parser)
    add_progress(parser)
    parser.set_defaults(func=run)


#: Options that override a recipe's settings (argparse dest = recipe key).
_OVERRIDES = (
    "loss", "classes", "per_section", "splits", "epochs", "batch_size", "lr", "weight_decay",
    "mixup", "sub_clusters", "arch", "width", "embed_dim", "precision", "seed", "trials",
    "spectrum_padding", "residual", "batch_norm", "theta_med", "attribute_domain", "backend",
)  # fmt: skip


def _recipe(args: argparse.Namespace):
    """Command line > recipe > defaults, as one :class:`asdxai.recipes.Recipe`."""
    from ..recipes import Recipe

    recipe = Recipe.load(args.recipe) if args.recipe else Recipe()
    return recipe.with_overrides(
        **{key: getattr(args, key) for key in _OVERRIDES if getattr(args, key) is not None}
    )


def run(args: argparse.Namespace) -> int:
    from .._atomic import check_output_file
    from .._runtime import available_cores, resolve_device
    from ..recipes import list_recipes
    from ..workflows.training import train_recipe, training_records, trial_paths

    if args.recipe == "list":
        for name, description in list_recipes().items():
            print(f"{name:45s} {description}")
        return 0
    recipe = _recipe(args)
    outs = trial_paths(args.out, recipe.trials)
    for out in outs:  # fail now, not after hours of training
        check_output_file(out)
    data = data_root(args.data, recipe.splits)
    device = resolve_device(args.device)
    workers = args.workers
    if workers is None:
        workers = 0 if device.type == "cpu" else min(8, available_cores())
    records = training_records(data, recipe.splits)

    def on_epoch(key: str, epoch: int, stats: dict) -> None:
        from ..train import format_stats

        print(f"[{key}] epoch {epoch}/{recipe.train_config().epochs}: {format_stats(stats)}",
              flush=True)  # fmt: skip

    for trial, out in enumerate(outs):
        seed = recipe.seed + trial
        if len(outs) > 1:
            print(f"trial {trial + 1}/{len(outs)} (seed {seed})", flush=True)
        ckpt = train_recipe(
            recipe, data, seed=seed, device=device, fit_backend=args.fit_backend,
            num_workers=workers, progress=args.progress, on_epoch=on_epoch,
            on_error=args.on_error, records=records,
        )  # fmt: skip
        save_checkpoint_file(ckpt, out)
        skipped = ckpt.provenance.get("skipped_clips", [])
        if skipped:
            print(f"skipped {len(skipped)} unreadable clip(s), e.g. {skipped[0]}", flush=True)
        fitted = "with its fitted backend" if ckpt.backend is not None else "without a backend"
        print(f"wrote {out} ({fitted})", flush=True)
    return 0
