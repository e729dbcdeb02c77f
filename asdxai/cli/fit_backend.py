"""``asdxai fit-backend``: fit the per-section k-means backend and store it in the checkpoint.

Embeds the training clips with the checkpoint's encoder(s), runs k-means (k = 16)
on each section's source-domain normal embeddings, keeps the target-domain
embeddings, and writes the checkpoint (atomically) with its ``backend`` filled in.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..constants import TRAIN_SPLITS
from ._common import (
    add_backend,
    add_data,
    add_device,
    add_loading,
    add_progress,
    add_seed,
    data_root,
    positive_int,
    save_checkpoint_file,
)

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "fit-backend",
        help="fit the k-means backend (per section) and store it in the checkpoint",
        description=(
            "Embed the training clips, fit k-means (k clusters) per section on the "
            "source-domain normal embeddings, keep the target-domain embeddings, and write the "
            "checkpoint with the fitted backend (atomically; in place unless --out is given)."
        ),
    )
    parser.add_argument(
        "--checkpoint", type=Path, required=True, metavar="PT", help="trained checkpoint (model.pt)"
    )
    add_data(parser)
    parser.add_argument(
        "--split",
        nargs="+",
        default=None,
        choices=TRAIN_SPLITS,
        help="training split(s) to fit on (default: dev-train, plus eval-train when the tree "
        "has eval_data/, so that evaluation sections can be scored too)",
    )
    parser.add_argument(
        "--machines",
        nargs="+",
        default=None,
        metavar="TYPE",
        help="only these machine types (default: all)",
    )
    parser.add_argument(
        "--k", type=positive_int, default=16, help="k-means clusters per section (default: 16)"
    )
    add_backend(parser)
    parser.add_argument(
        "--n-init",
        type=positive_int,
        default=5,
        help="k-means++ restarts per section, best inertia kept (default: 5)",
    )
    add_seed(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="PT",
        help="where to write the checkpoint (default: overwrite --checkpoint)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a backend the checkpoint already has (default: refuse)",
    )
    add_device(parser)
    add_loading(parser)
    add_progress(parser)
    parser.set_defaults(func=run)


def _default_splits(root: Path) -> list[str]:
    splits = ["dev-train"]
    if (root / "eval_data").is_dir():
        splits.append("eval-train")
    return splits


def _fit(ckpt, usable, args: argparse.Namespace, device, fit_backend):
    return fit_backend(
        ckpt,
        usable,
        device=device,
        k=args.k,
        seed=args.seed,
        variant=args.backend,
        n_init=args.n_init,
        batch_size=args.batch_size,
        progress=args.progress,
        num_workers=args.num_workers,
    )


def run(args: argparse.Namespace) -> int:
    from .._atomic import check_output_file
    from .._runtime import resolve_device
    from ..checkpoint import load_checkpoint
    from ..data.records import scan
    from ..errors import AsdxaiError, ConfigError, NonFiniteError
    from ..scoring import KMeansBackend
    from ..workflows.evaluate import fit_backend

    out = args.out or args.checkpoint
    check_output_file(out)  # fail before the embedding pass, not after
    root = data_root(args.data, tuple(args.split or ("dev-train", "eval-train")))
    device = resolve_device(args.device)
    ckpt = load_checkpoint(args.checkpoint)
    if ckpt.backend is not None and not args.force:
        raise ConfigError(
            f"{args.checkpoint} already has a fitted backend; pass --force to replace it"
        )
    splits = args.split or _default_splits(root)
    records = []
    for split in splits:
        records += scan(root, split=split, machines=args.machines)
    # per-section checkpoints have encoders only for the sections they were trained on
    usable, skipped = [], set()
    for r in records:
        try:
            ckpt.model_key_for(r.section_key)
        except AsdxaiError:
            skipped.add(r.section_key)
            continue
        usable.append(r)
    if skipped:
        log.warning(
            "the checkpoint has no encoder for %d section(s), left out: %s",
            len(skipped),
            ", ".join(sorted(skipped)),
        )
    log.info("fitting the backend on %d clips of %s on %s", len(usable), "+".join(splits), device)
    try:
        ckpt = _fit(ckpt, usable, args, device, fit_backend)
    except NonFiniteError as exc:
        raise NonFiniteError(f"checkpoint {args.checkpoint}: {exc}") from None
    save_checkpoint_file(ckpt, out)
    backend = KMeansBackend.from_dict(ckpt.backend)
    ks = sorted(set(backend.k_.values()))
    print(
        f"fitted the k-means backend on {len(backend.sections)} sections "
        f"(k = {', '.join(map(str, ks))}; seed {args.seed}) -> {out}"
    )
    return 0
