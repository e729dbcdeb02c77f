"""``asdxai rise``: RISE importance maps of clips, as ``.h5`` results and PNG figures.

Parses the options and calls :func:`asdxai.workflows.explain.explain_clips` (one pipeline for
any detector, :mod:`asdxai.detectors`: a checkpoint, ``--detector`` an ONNX file or a Python
factory; ``--domain input`` masks the detector's own input, for a dual-branch checkpoint with
the whole-clip spectrum held fixed, ``--domain signal`` the clip's STFT, resynthesised). Results
go to ``<out>/<machine>/<clip>.h5`` and ``.png`` (``<out>/<clip>.*`` for a clip outside the DCASE
layout); an existing result is continued when its settings match and refused otherwise.

By default a map is computed until it has converged: the control-variate estimator ``cv``
(``centered`` for ``--mask-mode grid``, :func:`asdxai.constants.default_estimator`), stopped at
the first block boundary, after at least 4 blocks, where the split-half agreement reaches 0.961
(an estimated correlation of 0.99 with the converged map), at most 640,000 masks; ``--study``
gives the study's exact setting (plain estimator, exactly 640,000 masks). Under
``torchrun --nproc-per-node N -m asdxai rise ...`` one clip's mask blocks, or many clips, are
shared among the ranks; the maps equal single-process maps (for every estimator).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..constants import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_ESTIMATOR,
    DEFAULT_STOP_AGREEMENT,
    DENSE_ESTIMATOR,
    DOMAINS,
    ESTIMATORS,
    MASK_MODES,
    NORMAL_FILLS,
    PRECISIONS,
    SAMPLINGS,
    SPLITS,
    STUDY_MASKS,
)
from ._common import (
    add_device,
    add_out,
    add_progress,
    add_seed,
    count_int,
    non_negative_float,
    percent,
    positive_int,
    probability,
)

log = logging.getLogger(__name__)


def _fill(text: str) -> float | str:
    """argparse type of ``--fill``: a non-negative number or one of the normal fills."""
    if text in NORMAL_FILLS:
        return text
    try:
        return non_negative_float(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; or one of {', '.join(NORMAL_FILLS)}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rise",
        help="RISE importance maps (which time-frequency regions look normal / anomalous)",
        description=(
            "Explain the anomaly score of clips with RISE: random separable time x frequency "
            "masks (binary cells, linearly up-sampled, randomly shifted), importance = sum of "
            "score x mask / (N E[M]). Writes <out>/<machine>/<clip>.h5 and .png per clip. By "
            f"default each map runs until it has converged ({DEFAULT_ESTIMATOR} estimator, "
            f"{DENSE_ESTIMATOR} for grid masks; stopped once the split-half agreement reaches "
            f"{DEFAULT_STOP_AGREEMENT}, an estimated r of 0.99 with the converged map; at most "
            "640000 masks); --study gives the study's exact setting. "
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
    src.add_argument(
        "--data",
        type=Path,
        metavar="ROOT",
        help="explain the clips of a DCASE-layout dataset root (by default the first section of "
        "every machine type: section 00 of each of the demo's 7 machine types, 700 clips of the "
        "synthetic 'small' tree's dev-test) and write one summary table, "
        "<out>/rise_summary.csv/.md/.tex/.json: per machine type and over all clips, the clip "
        "count and mean +- std of the machine focus, machine correlation and correlation beyond "
        "energy, the energy map's (baseline) focus and correlation, and the pixel AUC of "
        "anomalous clips; built from the .h5 files, so a re-run skips finished clips and "
        "rewrites it",
    )
    p.add_argument(
        "--split", choices=SPLITS, default="dev-test", help="with --data: the split (dev-test)"
    )
    p.add_argument("--machines", nargs="+", default=None, help="with --data: only these machines")
    p.add_argument(
        "--sections",
        nargs="+",
        default=None,
        metavar="SECTION",
        help="with --data: these sections, as keys (fan_section_00) or two-digit numbers (00: "
        "that section of every selected machine type) (default: the first section of every "
        "machine type)",
    )
    p.add_argument(
        "--anomalous-only", action="store_true", help="with --data: only clips labelled anomalous"
    )
    p.add_argument(
        "--limit-per-section",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --data: the first N clips (by file name) of each section",
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
        type=count_int,
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
        type=_fill,
        default=0.0,
        metavar="{VALUE," + ",".join(NORMAL_FILLS) + "}",
        help="what masked-out cells of the linear magnitude input become: a value (default: 0 "
        "= silence, the study) or normal content from the normal training clips of the clip's "
        "machine type and section (and domain) in the DCASE tree around it: normal-mean their "
        "cell-wise mean spectrogram, normal-nearest the one nearest to the clip (input domain "
        "only)",
    )
    p.add_argument(
        "--block-size",
        type=positive_int,
        default=DEFAULT_BLOCK_SIZE,
        help="masks per reproducible block; a map stops only at a block boundary, after at "
        f"least 4 blocks (default: {DEFAULT_BLOCK_SIZE})",
    )
    p.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default=None,
        help="plain (study), centered (scores minus a pilot mean, added back) or cv (minus a "
        "cross-fitted quadratic surrogate of the score in the mask's pooled time and frequency "
        "profiles, added back): the same "
        f"expectation, less noise (default: {DEFAULT_ESTIMATOR}; {DENSE_ESTIMATOR} with "
        "--mask-mode grid, where cv is refused; plain with --study). A result is continued "
        "only with the estimator it was made with",
    )
    p.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        default="iid",
        help="mask sampling: iid (study) or antithetic pairs / Latin hypercubes of the cells "
        "and shifts (every mask distributed as in the study) (default: iid)",
    )
    p.add_argument(
        "--until-agreement",
        type=probability,
        default=None,
        metavar="R",
        help="stop at the first block boundary, after at least 4 blocks, where the split-half "
        "agreement (correlation of even / odd block maps) reaches R; --n-masks is then the "
        "upper bound (default: "
        f"{DEFAULT_STOP_AGREEMENT}, an estimated r of 0.99 with the converged map; off with "
        "--study)",
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

    normal = args.fill if args.fill in NORMAL_FILLS else None
    masks = RISEMaskConfig(
        time_cells=args.time_cells, freq_cells=args.freq_cells, p_keep=args.p_keep,
        mode=args.mask_mode, fill=0.0 if normal else args.fill, block_size=args.block_size,
        sampling=args.sampling,
    )  # fmt: skip
    if args.study:
        if args.estimator not in (None, "plain") or args.until_agreement is not None:
            raise ConfigError("--study is the plain estimator without --until-agreement")
        return MapSettings(masks, args.n_masks, args.seed, "plain", None, normal_fill=normal)
    return MapSettings(
        masks, args.n_masks, args.seed, args.estimator,
        DEFAULT_STOP_AGREEMENT if args.until_agreement is None else args.until_agreement,
        normal_fill=normal,
    )  # fmt: skip


#: Options that select clips of --data (refused with --clip).
_DATA_ONLY = {
    "machines": "--machines",
    "sections": "--sections",
    "anomalous_only": "--anomalous-only",
    "limit_per_section": "--limit-per-section",
    "limit": "--limit",
}


def _clips(args: argparse.Namespace) -> list[Path]:
    """The clips of --clip (checked to exist); refuses the options of --data beside them."""
    from ..errors import ConfigError

    given = [flag for key, flag in _DATA_ONLY.items() if getattr(args, key) not in (None, False)]
    if given:
        raise ConfigError(f"{', '.join(given)} select clips of --data; not with --clip")
    for path in args.clip:
        if not path.is_file():
            raise ConfigError(f"--clip {path}: no such file")
    return list(args.clip)


def _records(args: argparse.Namespace) -> list:
    """The clips of --data: :func:`asdxai.workflows.rise_dataset.select_clips`."""
    from ..workflows.rise_dataset import select_clips
    from ._common import data_root

    return select_clips(
        data_root(args.data, (args.split,)), split=args.split, machines=args.machines,
        sections=args.sections, anomalous_only=args.anomalous_only,
        limit_per_section=args.limit_per_section, limit=args.limit,
    )  # fmt: skip


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
    from ..errors import ConfigError
    from ..explain import RISEExecution
    from ..workflows.rise_run import RunSettings
    from ._common import checkpoint_path

    settings = _settings(args)
    spec = args.detector if args.detector is not None else checkpoint_path(args.checkpoint)
    execution = RISEExecution(
        device=args.device, batch_size=args.batch_size, precision=args.precision,
        compile=args.compile, progress=args.progress, checkpoint_every=args.checkpoint_every,
    )  # fmt: skip
    run = RunSettings(
        section=args.section, domain=args.domain, plot=args.plot, overwrite=args.overwrite,
        listen_percent=args.listen, on_done=_print_done,
        on_line=lambda line: print(line, flush=True),
        on_listened=lambda report: print(report.summary()),
    )  # fmt: skip
    if args.clip:
        from ..workflows.rise_run import run_rise

        clips = _clips(args)
        run_rise(spec, clips, args.out, settings=settings, execution=execution, run=run,
                 sections=[args.section] * len(clips))  # fmt: skip
    else:
        from ..metrics import format_terminal
        from ..workflows.rise_dataset import SUMMARY_MEASURES, explain_dataset

        if args.section is not None:
            raise ConfigError(
                "--section names the section of --clip files; with --data each "
                "clip's section is its own (choose them with --sections)"
            )
        records = _records(args)
        print(f"explaining {len(records)} clips of {len({r.section_key for r in records})} "
              f"sections ({args.split})", flush=True)  # fmt: skip
        summary = explain_dataset(spec, records, args.out, settings=settings,
                                  execution=execution, run=run)  # fmt: skip
        if summary is not None:  # rank 0
            columns = ["machine", "clips", "anomalous", *SUMMARY_MEASURES]
            print("\n" + format_terminal(summary.rows, columns=columns, digits=3), end="")
            print(f"summary: {summary.files['md']} (.csv, .tex, .json)")
    print(f"wrote results to {args.out}")
    return 0
