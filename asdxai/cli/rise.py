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

from ..constants import (
    DEFAULT_STOP_AGREEMENT,
    DOMAINS,
    ESTIMATORS,
    MASK_MODES,
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
        help="plain (study), centered (scores minus a pilot mean, added back) or cv (minus a "
        "cross-fitted linear surrogate of the score in the mask cells, added back): the same "
        "expectation, less noise (default: centered; plain with --study)",
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
        help="stop once the split-half agreement (correlation of even / odd block maps) "
        "reaches R; --n-masks is then the upper bound (default: "
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

    masks = RISEMaskConfig(
        time_cells=args.time_cells, freq_cells=args.freq_cells, p_keep=args.p_keep,
        mode=args.mask_mode, fill=args.fill, block_size=args.block_size, sampling=args.sampling,
    )  # fmt: skip
    if args.study:
        if args.estimator not in (None, "plain") or args.until_agreement is not None:
            raise ConfigError("--study is the plain estimator without --until-agreement")
        return MapSettings(masks, args.n_masks, args.seed, "plain", None)
    return MapSettings(
        masks, args.n_masks, args.seed, args.estimator or "centered",
        DEFAULT_STOP_AGREEMENT if args.until_agreement is None else args.until_agreement,
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
    records = scan(root, split=args.split, machines=args.machines)
    if args.anomalous_only:
        records = [r for r in records if r.label == "anomaly"]
    if args.limit:
        records = records[: args.limit]
    if not records:
        raise ConfigError(f"--data {root}: no clips selected from split {args.split}")
    return [Path(r.path) for r in records], [args.section or r.section_key for r in records]


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
    from ..explain import RISEExecution
    from ..workflows.rise_run import RunSettings, run_rise
    from ._common import checkpoint_path

    settings = _settings(args)
    spec = args.detector if args.detector is not None else checkpoint_path(args.checkpoint)
    clips, sections = _clips(args)
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
    run_rise(spec, clips, args.out, settings=settings, execution=execution, run=run,
             sections=sections)  # fmt: skip
    print(f"wrote results to {args.out}")
    return 0
