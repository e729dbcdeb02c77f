"""``asdxai tsne``: t-SNE views of a model's embedding space and nearest-normal distances.

Embeds every clip of a split with each checkpoint's encoder (cached), projects the
embeddings to 2-D with openTSNE, measures how far anomalous clips lie from the
closest normal clip (Table III of the study) and draws Fig. 5-style scatter plots.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..constants import SPLITS
from ..layout import TSNE_PANELS, TSNE_TABLE, Layout, safe_name
from ._common import (
    add_data,
    add_device,
    add_out,
    add_progress,
    add_seed,
    checkpoint_path,
    data_root,
    positive_float,
    positive_int,
)

log = logging.getLogger(__name__)

_COLOR_BY = {"label": None, "machine": "machine", "domain": "domain", "section": "section"}


def _learning_rate(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "tsne",
        help="t-SNE views of the embedding space + nearest-normal distances (Fig. 5, Table III)",
        description=(
            "Embed every clip of a split with each checkpoint, project the embeddings to 2-D "
            "with openTSNE and measure, for every anomalous clip, the distance to the closest "
            "normal clip (in 2-D, Euclidean, as in the study's Table III; and in the embedding "
            "space, cosine). Writes <label>.h5, <label>.png, <label>_distances.csv and "
            "<label>_report.csv per checkpoint, tsne_panels.png for several checkpoints and "
            "table3.csv/.md with --trials."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        nargs="+",
        default=None,
        type=Path,
        metavar="PT",
        help="one or more checkpoints (model.pt); several give a multi-panel figure (default: "
        "$ASDXAI_CHECKPOINT, else the bundled SC-AdaCos model)",
    )
    parser.add_argument(
        "--labels",
        nargs="+",
        default=None,
        metavar="LABEL",
        help="one label per checkpoint (per group with --trials); used in file names and "
        "titles (default: the checkpoint file / folder names)",
    )
    add_data(parser)
    parser.add_argument(
        "--split",
        default="dev-test",
        choices=SPLITS,
        help="which clips to embed; needs normal/anomaly labels (default: dev-test)",
    )
    parser.add_argument(
        "--machines",
        nargs="+",
        default=None,
        metavar="TYPE",
        help="only these machine types (default: all in the split)",
    )
    add_out(parser, "tsne")
    parser.add_argument(
        "--color-by",
        choices=tuple(_COLOR_BY),
        default="label",
        help="colour of the points: label = normal/anomalous only; machine, domain or section "
        "= colour by group, marker by normal/anomalous (default: label)",
    )
    parser.add_argument(
        "--perplexity",
        type=positive_float,
        default=30.0,
        help="t-SNE perplexity, the effective number of neighbours (default: 30)",
    )
    parser.add_argument(
        "--n-iter",
        type=int,
        default=500,
        help="t-SNE iterations after the 250 early-exaggeration iterations (default: 500)",
    )
    parser.add_argument(
        "--early-exaggeration-iter",
        type=int,
        default=250,
        help="t-SNE early-exaggeration iterations (default: 250)",
    )
    parser.add_argument(
        "--learning-rate",
        type=_learning_rate,
        default="auto",
        help="t-SNE learning rate or 'auto' (= N / 12) (default: auto)",
    )
    parser.add_argument(
        "--init",
        choices=("pca", "random", "spectral"),
        default="pca",
        help="t-SNE initialisation (default: pca)",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="threads for the t-SNE neighbour search and gradients, capped at the machine's "
        "cores (-1 = all cores) (default: 1)",
    )
    add_seed(parser)
    add_device(parser)
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=64,
        help="clips per forward pass when embedding (default: 64)",
    )
    parser.add_argument(
        "--transform",
        type=Path,
        default=None,
        metavar="REF.h5",
        help="place the clips into the projection stored in this earlier result (openTSNE "
        "transform) instead of computing a new one; only meaningful for the same model's "
        "embedding space",
    )
    parser.add_argument(
        "--trials",
        action="store_true",
        help="treat the checkpoints as consecutive groups of --group-size trials (one --labels "
        "entry per group) and write Table III (mean ± std over trials)",
    )
    parser.add_argument(
        "--group-size",
        type=positive_int,
        default=5,
        help="trials per group with --trials (default: 5, as in the study)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache file (default: <out>/embedding_cache.h5)",
    )
    parser.add_argument(
        "--no-cache",
        dest="use_cache",
        action="store_false",
        help="always re-embed; do not read or write the embedding cache",
    )
    add_progress(parser)
    parser.set_defaults(func=run)


def _default_labels(paths: list[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    named = [f"{p.parent.name}_{p.stem}" if p.parent.name else p.stem for p in paths]
    if len(set(named)) == len(named):
        return named
    return [f"{s}_{i}" for i, s in enumerate(stems)]


def _plan(args: argparse.Namespace) -> list[tuple[str, list[tuple[str, Path]]]]:
    """Groups of (row label, [(file label, checkpoint), ...])."""
    from ..errors import ConfigError

    ckpts: list[Path] = [checkpoint_path(p) for p in args.checkpoint or [None]]
    if args.trials:
        if len(ckpts) % args.group_size:
            raise ConfigError(
                f"--trials: {len(ckpts)} checkpoints is not a multiple of --group-size "
                f"{args.group_size}"
            )
        groups = [ckpts[i : i + args.group_size] for i in range(0, len(ckpts), args.group_size)]
        labels = args.labels or _default_labels([g[0] for g in groups])
        if len(labels) != len(groups):
            raise ConfigError(
                f"--labels: {len(labels)} labels for {len(groups)} groups of {args.group_size} "
                "trials; give one label per group"
            )
        plan = [
            (lab, [(f"{lab}_trial{k + 1}", p) for k, p in enumerate(g)])
            for lab, g in zip(labels, groups, strict=True)
        ]
    else:
        labels = args.labels or _default_labels(ckpts)
        if len(labels) != len(ckpts):
            raise ConfigError(
                f"--labels: {len(labels)} labels for {len(ckpts)} checkpoints; give one per "
                "checkpoint"
            )
        plan = [(lab, [(lab, p)]) for lab, p in zip(labels, ckpts, strict=True)]
    files = [safe_name(f) for _, g in plan for f, _ in g]
    if len(set(files)) != len(files):
        raise ConfigError("--labels: labels must be distinct (they name the output files)")
    return plan


def _check_outputs(out: Path, plan, *, cache: Path | None, trials: bool) -> None:
    """Every file the run will write can be written (checked before any clip is embedded)."""
    from .._atomic import check_output_file

    layout = Layout(out)
    files = [f for _, group in plan for label, _ in group
             for f in layout.tsne_files(label).values()]  # fmt: skip
    if len(plan) > 1:
        files.append(layout.figure(TSNE_PANELS))
    if trials:
        files += [layout.csv(TSNE_TABLE), layout.markdown(TSNE_TABLE)]
    if cache is not None:
        files.append(cache)
    for path in files:
        check_output_file(path)


def _reference(path: Path) -> tuple[Any, Any]:
    """The t-SNE result in ``path`` and its projection to place new points into.

    Any damage (wrong types, shapes, entries) is one ResultError naming the file.
    """
    import numpy as np

    from ..embed import load_result, reference_embedding
    from ..errors import AsdxaiError, ResultError

    try:
        ref = load_result(path)
        emb, proj = np.asarray(ref.embeddings), np.asarray(ref.projection)
        if (emb.dtype.kind not in "fiu" or proj.dtype.kind not in "fiu" or emb.ndim != 2
                or proj.shape != (emb.shape[0], 2) or emb.shape[0] < 2):  # fmt: skip
            raise ResultError(
                f"{path}: damaged t-SNE result (embeddings {emb.shape} and projection "
                f"{proj.shape} do not belong together)"
            )
        if not (np.isfinite(emb).all() and np.isfinite(proj).all()):
            raise ResultError(f"{path}: damaged t-SNE result (NaN or inf values)")
        if not isinstance(ref.checkpoint, dict) or not isinstance(ref.name, str):
            raise ResultError(f"{path}: damaged t-SNE result (checkpoint entry is not an object)")
        return ref, reference_embedding(emb, proj, cfg=ref.config)
    except AsdxaiError as exc:
        if str(path) in str(exc):
            raise
        raise ResultError(f"{path}: unusable t-SNE reference ({exc})") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OSError) as exc:
        raise ResultError(f"{path}: damaged t-SNE result ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None  # fmt: skip


def run(args: argparse.Namespace) -> int:

    from .._atomic import ensure_writable_dir
    from .._runtime import provenance, resolve_device
    from ..checkpoint import load_checkpoint
    from ..data.records import scan
    from ..embed import (
        TSNEConfig,
        anomaly_mask,
        format_report,
        records_meta,
        save_result,
        write_distances_csv,
        write_report_csv,
    )
    from ..embedding_cache import EmbeddingCache
    from ..errors import NonFiniteError
    from ..plots.tsne import plot_tsne, plot_tsne_panels, save_figure
    from ..workflows.embedding import project_split, write_trials_table

    plan = _plan(args)
    cfg = TSNEConfig(
        perplexity=args.perplexity,
        learning_rate=args.learning_rate,
        n_iter=args.n_iter,
        early_exaggeration_iter=args.early_exaggeration_iter,
        initialization=args.init,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )
    root = data_root(args.data, (args.split,))
    records = scan(root, split=args.split, machines=args.machines)
    meta = records_meta(records)
    anomaly_mask(meta["label"])  # fail now, not after embedding: no labels / no anomalies
    out = ensure_writable_dir(args.out)
    device = resolve_device(args.device)
    prov = provenance(device)
    cache_file = args.cache or Layout(out).embedding_cache()
    cache = EmbeddingCache(cache_file) if args.use_cache else None
    color_key = _COLOR_BY[args.color_by]

    _check_outputs(out, plan, cache=cache_file if args.use_cache else None, trials=args.trials)
    reference = None
    ref_info: dict[str, Any] = {}
    ref_points = None
    if args.transform is not None:
        ref, reference = _reference(args.transform)
        ref_points = ref.projection
        ref_info = {
            "path": str(args.transform),
            "name": ref.name,
            "checkpoint": ref.checkpoint.get("path", ""),
            "checkpoint_sha256": ref.checkpoint.get("sha256", ""),
        }
    print(
        f"{len(records)} clips of {args.split} in {root} "
        f"({int((meta['label'] == 'anomaly').sum())} anomalous); device {device}"
    )

    panels = []
    per_group: dict[str, list[Any]] = {}
    for row_label, group in plan:
        for file_label, ckpt_path in group:
            ckpt = load_checkpoint(ckpt_path)
            try:
                result = project_split(
                    ckpt_path, records, config=cfg, device=device, batch_size=args.batch_size,
                    cache=cache, reference=reference, name=file_label, progress=args.progress,
                    ckpt=ckpt,
                )  # fmt: skip
            except NonFiniteError as exc:
                raise NonFiniteError(f"checkpoint {ckpt_path}: {exc}") from None
            if ref_info.get("checkpoint_sha256") not in (None, "", result.checkpoint["sha256"]):
                log.warning(
                    "%s: a different checkpoint than the reference %s; the two embedding "
                    "spaces are not aligned, so positions are not comparable",
                    ckpt_path,
                    args.transform,
                )
            result.provenance = {**prov, "split": args.split, "data": str(root)}
            result.reference = ref_info
            files = Layout(out).tsne_files(file_label)
            save_result(result, files["result"])
            write_distances_csv(result, files["distances"])
            write_report_csv(result.report, files["report"])
            color_by = result.meta[color_key] if color_key else None
            fig = plot_tsne(
                result.projection,
                result.is_anomaly,
                color_by=color_by,
                title=file_label,
                background=ref_points,
            )
            save_figure(fig, files["figure"])
            print(
                f"\n{file_label} ({ckpt_path}): mean nearest-normal distance "
                f"{result.mean_distance:.3f} (2-D)"
            )
            print(format_report(result.report))
            per_group.setdefault(row_label, []).append(result)
        first = per_group[row_label][0]
        panels.append(
            (
                first.projection,
                first.is_anomaly,
                row_label,
                first.meta[color_key] if color_key else None,
            )
        )

    if len(panels) > 1:
        save_figure(plot_tsne_panels(panels, ncols=3), Layout(out).figure(TSNE_PANELS))
    if args.trials:
        _, md = write_trials_table(per_group, Layout(out))
        print("\nTable III (mean ± std over trials of the mean nearest-normal distance)")
        print(md)
    print(f"\nwrote results to {out}")
    return 0
