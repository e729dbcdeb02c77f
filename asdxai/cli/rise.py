"""``asdxai rise``: RISE importance maps of clips, as ``.h5`` results and PNG figures.

For every clip: read the wav, compute the model input (linear magnitude
spectrogram; for a dual-branch checkpoint also the whole-clip spectrum, which is
then held fixed), bind the checkpoint's anomaly scorer to the clip's section and
run :class:`asdxai.explain.RISE`. Writes ``<out>/<clip>.h5`` (map, input, running
sums, settings, provenance) and ``<out>/<clip>.png`` (log spectrogram | map).
With ``--data`` the files go to ``<out>/<machine>/``. Where the clip has a
ground-truth anomaly mask (``anomaly_masks.h5`` of a synthetic tree), the pixel
AUC and pointing game are stored and printed.

Under ``torchrun --nproc-per-node N -m asdxai rise ...`` one clip's mask blocks,
or many clips, are shared among the ranks; the maps equal single-process maps.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import (
    add_device,
    add_progress,
    add_seed,
    non_negative_float,
    percent,
    positive_int,
    probability,
)

log = logging.getLogger(__name__)

_SPLITS = ("dev-train", "dev-test", "eval-train", "eval-test")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rise",
        help="RISE importance maps (which time-frequency regions look normal / anomalous)",
        description=(
            "Explain the anomaly score of clips with RISE: random separable time x frequency "
            "masks (binary cells, linearly up-sampled, randomly shifted), importance = sum of "
            "score x mask / (N E[M]). Writes <clip>.h5 and <clip>.png per clip. Runs under "
            "torchrun to share the work among processes / GPUs."
        ),
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="PT",
        help="model.pt with a fitted backend (default: $ASDXAI_CHECKPOINT, else the bundled "
        "asdxai/bundled/model.pt)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--clip", type=Path, nargs="+", metavar="WAV", help="clips to explain")
    src.add_argument("--data", type=Path, metavar="ROOT", help="DCASE-layout dataset root")
    p.add_argument("--split", choices=_SPLITS, default="dev-test", help="with --data (dev-test)")
    p.add_argument("--machines", nargs="+", default=None, help="with --data: only these machines")
    p.add_argument(
        "--anomalous-only", action="store_true", help="with --data: only clips labelled anomalous"
    )
    p.add_argument("--limit", type=positive_int, default=None, help="with --data: first N clips")
    p.add_argument(
        "--section",
        default=None,
        metavar="KEY",
        help="section key such as fan_section_00 (required when a clip's name or folder does "
        "not follow the DCASE layout <machine>/<train|test>/section_XX_...wav)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument(
        "--n-masks",
        type=positive_int,
        default=640_000,
        help="masks per map, rounded up to whole blocks (default: 640000, as in the study)",
    )
    add_seed(p)
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="masked inputs per forward pass (default: from free GPU memory; 100 on CPU)",
    )
    add_device(p)
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="autocast precision of the forward pass (default: fp32)",
    )
    p.add_argument("--time-cells", type=positive_int, default=20, help="time cells (default: 20)")
    p.add_argument("--freq-cells", type=positive_int, default=34, help="freq. cells (default: 34)")
    p.add_argument(
        "--p-keep",
        type=probability,
        default=0.75,
        help="probability that a cell is kept, i.e. not masked (default: 0.75)",
    )
    p.add_argument(
        "--mask-mode",
        choices=("separable", "time", "freq", "grid"),
        default="separable",
        help="separable t x f masks (study), time-only (whole frames), freq-only (whole bins, "
        "as FreqRISE) or grid (original 2-D RISE cells; dense masks, more memory per batch) "
        "(default: separable)",
    )
    p.add_argument(
        "--fill",
        type=non_negative_float,
        default=0.0,
        help="value of masked-out cells of the linear magnitude input (default: 0 = silence)",
    )
    p.add_argument(
        "--block-size",
        type=positive_int,
        default=1000,
        help="masks per reproducible block (default: 1000)",
    )
    p.add_argument(
        "--estimator",
        choices=("plain", "centered"),
        default="plain",
        help="plain (study) or centered (scores minus a pilot mean, added back: same "
        "expectation, less noise) (default: plain)",
    )
    p.add_argument(
        "--until-agreement",
        type=probability,
        default=None,
        metavar="R",
        help="stop once the split-half agreement (correlation of even / odd block maps) "
        "reaches R, e.g. 0.99; --n-masks is then the upper bound",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        metavar="K",
        help="write the partial sums to the .h5 every K masks (for --resume)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue partial .h5 results in --out (settings must match); skip finished ones",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the scorer")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="do not write PNGs")
    p.add_argument(
        "--listen",
        type=percent,
        nargs="?",
        const=10.0,
        default=None,
        metavar="PERCENT",
        help="also write <clip>_flagged/_rest/_original.wav and <clip>_overlay.png from the "
        "top PERCENT%% of the map (default 10) and score them, as `asdxai listen` does",
    )
    add_progress(p)
    p.set_defaults(func=run)


@dataclass
class _Job:
    path: Path
    section: str
    out_stem: Path  # output path without suffix


def _checkpoint_path(arg: Path | None) -> Path:
    from ._common import default_checkpoint

    return arg if arg is not None else default_checkpoint()


def _section_for(path: Path, section: str | None, sections: list[str]) -> str:
    from ..data.records import parse_name
    from ..errors import ConfigError, DataError

    if section is not None:
        return section
    try:
        number = parse_name(path.name)["section"]
    except DataError:
        raise ConfigError(
            f"{path}: file name does not follow the DCASE naming; pass --section KEY "
            f"(one of: {', '.join(sections[:20])})"
        ) from None
    machine = path.resolve().parent.parent.name
    key = f"{machine}_section_{number}"
    if key in sections:
        return key
    matches = [s for s in sections if s.endswith(f"_section_{number}")]
    if len(matches) == 1:
        return matches[0]
    raise ConfigError(
        f"{path}: cannot tell the section ({key!r} is not in the checkpoint); pass --section KEY "
        f"(one of: {', '.join(sections[:20])})"
    )


def _jobs(args: argparse.Namespace, sections: list[str]) -> list[_Job]:
    from ..errors import ConfigError

    out = Path(args.out)
    jobs: list[_Job] = []
    if args.clip:
        for path in args.clip:
            if not path.is_file():
                raise ConfigError(f"--clip {path}: no such file")
            jobs.append(_Job(path, _section_for(path, args.section, sections), out / path.stem))
        stems = [j.out_stem for j in jobs]
        if len(set(stems)) != len(stems):
            raise ConfigError("--clip: two clips share a file name; explain them in separate --out")
        return jobs
    from ..data.records import scan
    from .score import data_root

    root = data_root(args.data)
    records = scan(root, args.split, machines=args.machines)
    if args.anomalous_only:
        records = [r for r in records if r.label == "anomaly"]
    if args.limit:
        records = records[: args.limit]
    if not records:
        raise ConfigError(f"--data {root}: no clips selected from split {args.split}")
    for r in records:
        section = args.section or r.section_key
        jobs.append(_Job(Path(r.path), section, out / r.machine / Path(r.name).stem))
    return jobs


def run(args: argparse.Namespace) -> int:
    import torch

    from .._atomic import ensure_writable_dir
    from .._runtime import resolve_device
    from ..checkpoint import load_checkpoint
    from ..errors import ConfigError, DataError
    from ..explain import RISEMaskConfig
    from ..explain import distributed as D
    from ..explain.result import sha256_file
    from ..scoring import AnomalyScorer

    ckpt_path = _checkpoint_path(args.checkpoint)
    ensure_writable_dir(args.out)  # fail before any work, not when the first map is saved
    device = D.local_device(resolve_device(args.device))
    ctx = D.init_from_env(device)
    try:
        ckpt = load_checkpoint(ckpt_path)
        scorer = AnomalyScorer.from_checkpoint(ckpt, device)
        sections = list(scorer.sections)
        if args.section is not None and args.section not in sections:
            raise DataError(
                f"--section {args.section!r} is not in the checkpoint's backend; available: "
                f"{', '.join(sections[:30])}"
            )
        jobs = _jobs(args, sections)
        for job in jobs:
            if job.section not in sections:
                raise DataError(
                    f"{job.path}: section {job.section!r} is not in the checkpoint's backend "
                    f"(available: {', '.join(sections[:30])})"
                )
        mask_cfg = RISEMaskConfig(
            time_cells=args.time_cells, freq_cells=args.freq_cells, p_keep=args.p_keep,
            mode=args.mask_mode, fill=args.fill, block_size=args.block_size,
        )  # fmt: skip
        sha = sha256_file(ckpt_path)
        shard_blocks = ctx is not None and len(jobs) == 1
        mine = jobs if shard_blocks else D.shard(jobs, ctx)
        writer = ctx is None or not shard_blocks or ctx.is_main
        if ckpt.net.arch == "dual":
            log.warning(
                "dual-branch checkpoint: explaining the spectrogram; the whole-clip spectrum "
                "input is held fixed at the clip's own spectrum"
            )
        for job in mine:
            _explain(
                job, args, ckpt, ckpt_path, sha, scorer, mask_cfg, device,
                ctx if shard_blocks else None, writer,
            )  # fmt: skip
        if ctx is not None:
            ctx.barrier()
    except torch.cuda.OutOfMemoryError as exc:
        raise ConfigError(f"out of GPU memory even at batch size 1 ({exc})") from None
    finally:
        D.shutdown(ctx)
    return 0


def _explain(job, args, ckpt, ckpt_path, sha, scorer, mask_cfg, device, ctx, writer) -> None:
    """Explain one clip and (on the writing rank) save its .h5 and .png."""
    import torch

    from .._atomic import atomic_path
    from .._runtime import provenance
    from ..data.anomaly_masks import load_anomaly_mask
    from ..data.audio import read_clip
    from ..explain import RISE
    from ..explain.faithfulness import localisation
    from ..explain.result import check_resumable, load_result, save_result
    from ..features import log_spectrogram
    from ..nets import encoder_inputs

    feat = ckpt.features
    h5_path = job.out_stem.with_suffix(".h5")
    png_path = job.out_stem.with_suffix(".png")
    meta: dict[str, Any] = {
        "clip": str(job.path.resolve()),
        "section": job.section,
        "checkpoint": str(Path(ckpt_path).resolve()),
        "checkpoint_sha256": sha,
        "feature_config": feat.to_dict(),
        "arch": ckpt.net.arch,
        "spectrum_held_fixed": ckpt.net.arch == "dual",
    }
    resume_from = None
    if args.resume and h5_path.is_file():
        prev = load_result(h5_path)
        check_resumable(
            prev, mask_cfg, args.seed, args.estimator,
            {k: meta[k] for k in ("clip", "section", "checkpoint_sha256")}, h5_path,
        )  # fmt: skip
        if prev.complete and (prev.n_masks >= args.n_masks or prev.stopped_early):
            print(f"{h5_path}: already complete ({prev.n_masks} masks), skipped")
            return
        resume_from = prev
    wave = torch.from_numpy(read_clip(job.path, feat))[None].to(device)
    inputs = encoder_inputs(wave, feat, ckpt.net.arch)
    spec = inputs["spec"][0]  # (T, F)
    score_fn = scorer.bind(job.section, spectrum=inputs["spectrum"])
    prov = provenance(device)

    def save_partial(res):
        res.meta.update(meta)
        save_result(h5_path, res, log_spectrogram=logspec, provenance=prov)
        log.info("%s: checkpoint at %d masks", h5_path, res.n_masks)

    logspec = log_spectrogram(spec).cpu().numpy()
    res = RISE(score_fn, mask_cfg).attribute(
        spec, n_masks=args.n_masks, seed=args.seed, batch_size=args.batch_size, device=device,
        precision=args.precision, estimator=args.estimator, until_agreement=args.until_agreement,
        checkpoint=save_partial if writer else None, checkpoint_every=args.checkpoint_every,
        resume_from=resume_from, progress=args.progress and writer, compile=args.compile,
        distributed=ctx,
    )  # fmt: skip
    res.meta.update(meta)
    with torch.no_grad():
        res.meta["clip_score"] = float(score_fn(spec[None])[0])
    gt = load_anomaly_mask(job.path)
    if gt is not None and gt.shape == res.importance.shape and gt.any() and not gt.all():
        res.meta.update(localisation(res.importance, gt))
    if not writer:
        return
    save_result(h5_path, res, log_spectrogram=logspec, provenance=prov)
    if args.plot:
        from ..plots.rise import plot_importance

        fig = plot_importance(
            logspec, res.importance, feat,
            title=f"{job.path.name} ({job.section}), score {res.meta['clip_score']:.3f}",
        )  # fmt: skip
        with atomic_path(png_path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    extra = ""
    if "pixel_auc" in res.meta:
        extra = f", pixel AUC {res.meta['pixel_auc']:.3f}, pointing {res.meta['pointing_game']:.0f}"
    print(
        f"{h5_path}: {res.n_masks} masks, {res.elapsed_s:.1f} s, split-half agreement "
        f"{res.agreement:.4f}{extra}"
    )
    if args.listen is not None:
        from ..listen_report import listen_to_map

        print(listen_to_map(h5_path, args.listen, checkpoint=ckpt_path, device=device).summary())
