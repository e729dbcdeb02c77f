"""``asdxai rise``: RISE importance maps of clips, as ``.h5`` results and PNG figures.

Parses the options and calls :func:`asdxai.workflows.explain.explain_clips` (one pipeline for
any detector, :mod:`asdxai.detectors`: a checkpoint, ``--detector`` an ONNX file or a Python
factory; ``--domain input`` masks the detector's own input, for a dual-branch checkpoint with
the whole-clip spectrum held fixed, ``--domain signal`` the clip's STFT, resynthesised). Results
go to ``<out>/<machine>/<clip>.h5`` and ``.png`` (``<out>/<clip>.*`` for a clip outside the DCASE
layout); an existing result is continued when its settings match and refused otherwise.

By default a map is computed until it has converged (centred estimator, split-half agreement
0.99, at most 640,000 masks); ``--study`` gives the study's exact setting (plain estimator,
exactly 640,000 masks). Under ``torchrun --nproc-per-node N -m asdxai rise ...`` one clip's mask
blocks, or many clips, are shared among the ranks; the maps equal single-process maps.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..constants import DOMAINS, ESTIMATORS, MASK_MODES, PRECISIONS, SPLITS, STUDY_MASKS
from ._common import (
    add_device,
    add_out,
    add_progress,
    add_seed,
    non_negative_float,
    percent,
    positive_int,
    probability,
)

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rise",
        help="RISE importance maps (which time-frequency regions look normal / anomalous)",
        description=(
            "Explain the anomaly score of clips with RISE: random separable time x frequency "
            "masks (binary cells, linearly up-sampled, randomly shifted), importance = sum of "
            "score x mask / (N E[M]). Writes <out>/<machine>/<clip>.h5 and .png per clip. By "
            "default each map runs until it has converged (centred estimator, split-half "
            "agreement 0.99, at most 640000 masks); --study gives the study's exact setting. "
            "Runs under torchrun to share the work among processes / GPUs. Any detector (wav "
            "in, score out) can be explained with --detector: an ONNX file or a Python factory."
        ),
    )
    model = p.add_mutually_exclusive_group()
    model.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="PT",
        help="model.pt with a fitted backend (default: $ASDXAI_CHECKPOINT, else the bundled "
        "SC-AdaCos model)",
    )
    model.add_argument(
        "--detector",
        default=None,
        metavar="SPEC",
        help="any detector instead of a checkpoint: a checkpoint *.pt, an ONNX file *.onnx "
        "(waveform (B, L) in, (B,) scores out; needs asdxai[onnx]) or a Python factory "
        "package.module:function returning a detector (see docs/INTERFACES.md)",
    )
    p.add_argument(
        "--domain",
        choices=DOMAINS,
        default=None,
        help="input: mask the detector's own time-frequency input (a dual-branch checkpoint's "
        "spectrum held fixed); signal: mask the clip's complex STFT (n_fft 1024, hop 512), "
        "resynthesise and score the waveform (a dual-branch model explained as it is used) "
        "(default: input where the detector has one, else signal)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--clip", type=Path, nargs="+", metavar="WAV", help="clips to explain")
    src.add_argument("--data", type=Path, metavar="ROOT", help="DCASE-layout dataset root")
    p.add_argument("--split", choices=SPLITS, default="dev-test", help="with --data (dev-test)")
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
    add_out(p, "rise")
    p.add_argument(
        "--study",
        action="store_true",
        help="the study's exact setting: plain estimator, exactly --n-masks (640000) masks, no "
        "early stop (on a 2-core CPU: hours per clip)",
    )
    p.add_argument(
        "--n-masks",
        type=positive_int,
        default=STUDY_MASKS,
        help="masks per map, exactly; an upper bound while --until-agreement is in force "
        "(default: 640000, as in the study)",
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
        choices=tuple(PRECISIONS),
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
        choices=tuple(MASK_MODES),
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
        choices=ESTIMATORS,
        default=None,
        help="plain (study) or centered (scores minus a pilot mean, added back: same "
        "expectation, less noise) (default: centered; plain with --study)",
    )
    p.add_argument(
        "--until-agreement",
        type=probability,
        default=None,
        metavar="R",
        help="stop once the split-half agreement (correlation of even / odd block maps) "
        "reaches R; --n-masks is then the upper bound (default: 0.99; off with --study)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        metavar="K",
        help="write the partial sums to the .h5 every K masks (a re-run continues from them)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing results in --out (default: continue a partial result with the "
        "same settings, skip a complete one, refuse one with other settings)",
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


def _settings(args: argparse.Namespace):
    from ..errors import ConfigError
    from ..explain import RISEMaskConfig
    from ..workflows.explain import MapSettings

    masks = RISEMaskConfig(
        time_cells=args.time_cells, freq_cells=args.freq_cells, p_keep=args.p_keep,
        mode=args.mask_mode, fill=args.fill, block_size=args.block_size,
    )  # fmt: skip
    if args.study:
        if args.estimator not in (None, "plain") or args.until_agreement is not None:
            raise ConfigError("--study is the plain estimator without --until-agreement")
        return MapSettings(masks, args.n_masks, args.seed, "plain", None)
    return MapSettings(
        masks, args.n_masks, args.seed, args.estimator or "centered",
        0.99 if args.until_agreement is None else args.until_agreement,
    )  # fmt: skip


def _clips(args: argparse.Namespace) -> tuple[list[Path], list[str | None]]:
    """The clips to explain and their section keys (None = from the file name)."""
    from ..data.records import scan
    from ..errors import ConfigError
    from ._common import data_root

    if args.clip:
        for path in args.clip:
            if not path.is_file():
                raise ConfigError(f"--clip {path}: no such file")
        return list(args.clip), [args.section] * len(args.clip)
    root = data_root(args.data, (args.split,))
    records = scan(root, args.split, machines=args.machines)
    if args.anomalous_only:
        records = [r for r in records if r.label == "anomaly"]
    if args.limit:
        records = records[: args.limit]
    if not records:
        raise ConfigError(f"--data {root}: no clips selected from split {args.split}")
    return [Path(r.path) for r in records], [args.section or r.section_key for r in records]


def memory_limit(device) -> int:
    """Bytes of memory the run may use: the GPU's total memory, else the machine's RAM."""
    import os

    import torch

    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 2**40


def check_memory(settings, batch_size: int | None, shape: tuple[int, int], device) -> None:
    """Refuse --block-size / --batch-size values whose memory cannot exist, before allocating.

    Counted (a lower bound of what the run allocates): one block of random cells, drawn whole
    on the CPU (``block_size`` x the cells of one mask, float32), and one forward pass's
    masked inputs and masks (``batch`` x T x F float32 each; the batch never exceeds the
    masks of the run).
    """
    from ..errors import ConfigError

    masks = settings.mask_config
    t, f = shape
    use_t, use_f = masks.random_axes
    if masks.dense:
        cells = masks.time_cells * masks.freq_cells + 2
    else:
        cells = (masks.time_cells + 1) * use_t + (masks.freq_cells + 1) * use_f
    block_bytes = masks.block_size * max(cells, 1) * 4
    ram = memory_limit("cpu")
    if block_bytes > ram:
        raise ConfigError(
            f"{masks.block_size} masks per block need {block_bytes / 2**30:.1f} GiB of random "
            f"cells, more than the {ram / 2**30:.1f} GiB of memory of this machine",
            param="block_size",
        )
    if batch_size is not None:
        batch = min(batch_size, max(settings.n_masks, masks.block_size))
        batch_bytes = batch * t * f * 4 * 2
        limit = memory_limit(device)
        if batch_bytes > limit:
            raise ConfigError(
                f"{batch_size} masked inputs of {t} x {f} per forward pass need at least "
                f"{batch_bytes / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB of "
                f"{device}",
                param="batch_size",
            )


def _check_outputs(out: Path, clips: list[Path], *, plot: bool, listen: bool) -> None:
    """Every file the run will write can be written (checked before the first mask)."""
    from .._atomic import check_output_file
    from ..layout import Layout

    layout = Layout(out)
    for clip in clips:
        files = layout.map_files(clip, plot=plot)
        if listen:
            files |= Layout(files["map"].parent).listen_files(files["map"].stem)
        for path in files.values():
            check_output_file(path)


def _print_done(item) -> None:
    res = item.result
    extra = "".join(f", {k} {v:.3f}" for k, v in item.measures.items())
    state = "already complete, kept" if item.reused else f"{res.elapsed_s:.1f} s"
    print(
        f"{item.h5}: {res.n_masks} masks ({state}), split-half agreement {res.agreement:.4f}, "
        f"clip score {item.score:.4f}{extra}",
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from .._atomic import ensure_writable_dir
    from .._runtime import resolve_device
    from ..errors import ConfigError, DataError
    from ..explain import RISEExecution
    from ..explain import distributed as D
    from ..workflows.explain import Explainer, explain_clips
    from ._common import checkpoint_path

    settings = _settings(args)
    spec = args.detector if args.detector is not None else checkpoint_path(args.checkpoint)
    out = ensure_writable_dir(args.out)  # fail before any work, not when the first map is saved
    device = D.local_device(resolve_device(args.device))
    ctx = D.init_from_env(device)
    try:
        explainer = Explainer(spec, device=device, domain=args.domain)
        known = explainer.sections
        if args.section is not None and known and args.section not in known:
            raise DataError(
                f"--section {args.section!r} is not in the detector's sections; available: "
                f"{', '.join(known[:30])}"
            )
        clips, sections = _clips(args)
        check_memory(settings, args.batch_size, explainer.map_shape(clips[0]), device)
        _check_outputs(out, clips, plot=args.plot, listen=args.listen is not None)
        if getattr(explainer.detector, "arch", None) == "dual":
            log.warning(
                "dual-branch checkpoint: %s",
                "explaining the spectrogram; the whole-clip spectrum input is held fixed at the "
                "clip's own spectrum (--domain signal explains it as it is used)"
                if explainer.domain == "input"
                else "signal domain: both inputs recomputed from the masked signal",
            )

        def projected(rate: float) -> None:
            bound = "at most " if settings.until_agreement is not None else ""
            minutes = settings.n_masks / max(rate, 1e-9) / 60
            stop = (
                f", stops earlier at split-half agreement {settings.until_agreement}"
                if settings.until_agreement is not None
                else ""
            )
            print(
                f"RISE on {device}: {rate:.0f} masks/s measured; {bound}{settings.n_masks} masks "
                f"per map = {bound}{minutes:.1f} min per clip{stop}",
                flush=True,
            )

        execution = RISEExecution(
            batch_size=args.batch_size, precision=args.precision, compile=args.compile,
            progress=args.progress, checkpoint_every=args.checkpoint_every, distributed=ctx,
            on_first_batch=projected,
        )  # fmt: skip
        done = explain_clips(
            explainer, clips, out, sections=sections, settings=settings, execution=execution,
            overwrite=args.overwrite, plot=args.plot, on_done=_print_done,
        )  # fmt: skip
        if args.listen is not None:
            from ..listen_report import listen_to_map

            for item in done:
                if item.h5 is not None:
                    print(listen_to_map(item.h5, args.listen, detector=explainer.detector,
                                        device=device).summary())  # fmt: skip
    except torch.cuda.OutOfMemoryError as exc:
        raise ConfigError(f"out of GPU memory even at batch size 1 ({exc})") from None
    finally:
        D.shutdown(ctx)
    print(f"wrote results to {out}")
    return 0
