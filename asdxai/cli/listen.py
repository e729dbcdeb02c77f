"""``asdxai listen``: hear what the detector flags in a clip (from a RISE result)."""

from __future__ import annotations

import argparse

from ._common import add_device, add_seed, non_negative_float, non_negative_int, percent


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "listen",
        help="resynthesise the flagged / unflagged parts of a clip from a RISE map",
        description=(
            "Read a RISE result (.h5 written by `asdxai rise`), select the top-q% most "
            "anomalous time-frequency cells with a soft mask, and write three 16 kHz wav files "
            "next to the map: <stem>_flagged.wav (only those regions), <stem>_rest.wav "
            "(everything else) and <stem>_original.wav, plus an overlay PNG. All three are "
            "scored with the same black box; removing the flagged part should lower the "
            "anomaly score the most."
        ),
    )
    parser.add_argument("--map", required=True, help="RISE result file (.h5) from `asdxai rise`")
    parser.add_argument(
        "--top-percent",
        type=percent,
        default=10.0,
        help="share of time-frequency cells counted as flagged, in percent (default: 10)",
    )
    parser.add_argument(
        "--smooth",
        type=non_negative_float,
        default=1.0,
        help="Gaussian smoothing of the mask in cells, against musical noise "
        "(default: 1; 0 = hard; at most the map's longer side)",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="detector to score the versions with: a checkpoint *.pt, an ONNX file *.onnx or "
        "package.module:function (default: the one recorded in the map)",
    )
    parser.add_argument("--out", default=None, help="output folder (default: next to the map)")
    parser.add_argument(
        "--random",
        type=non_negative_int,
        default=5,
        metavar="N",
        help="random regions of the same size removed as a baseline (default: 5)",
    )
    add_seed(parser)
    add_device(parser)
    # library parameters -> the options that set them (for error lines)
    parser.set_defaults(
        func=run,
        param_flags={
            "smooth_cells": "smooth",
            "n_random": "random",
            "map_path": "map",
            "out_dir": "out",
        },
    )


def run(args: argparse.Namespace) -> int:
    from ..workflows.listen_report import listen_to_map

    report = listen_to_map(
        args.map,
        top_percent=args.top_percent,
        smooth_cells=args.smooth,
        checkpoint=args.checkpoint,
        out_dir=args.out,
        device=args.device,
        seed=args.seed,
        n_random=args.random,
    )
    print(report.summary())
    return 0
