"""``asdxai compare-explainers``: RISE against Captum's attribution methods on ground truth.

Parses the options and calls :func:`asdxai.workflows.compare.compare_explainers`; prints one
line per map and the Markdown summary, and writes the tables and the figure to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..constants import FILLS, METHODS, NORMAL_FILLS
from ._common import (
    add_data,
    add_device,
    add_out,
    add_progress,
    add_seed,
    percent,
    positive_int,
)

#: The defaults: a quick look, and the study-sized run of ``--full``.
QUICK = {"n_clips": 1, "budget": 500}
FULL = {"n_clips": 6, "budget": 2000}


def _pair(text: str) -> tuple[int, int]:
    """argparse type: ``AxB`` -> (A, B), both positive integers."""
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form AxB (e.g. 20x34)") from None
    if a <= 0 or b <= 0:
        raise argparse.ArgumentTypeError(f"both sizes must be positive, got {text}")
    return a, b


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare-explainers",
        help="compare RISE with Captum's attribution methods on synthetic ground truth",
        description=(
            "Explain synthetic test clips with RISE (separable plain / centred, time, freq, grid "
            "masks, and FreqRISE-style masks on the complex STFT), Captum's Occlusion, "
            "FeatureAblation, Saliency, IntegratedGradients, GradientShap and KernelShap, a "
            "random map and the energy map; measure each map's "
            "localisation (pixel AUC, pointing game, machine focus, event share), faithfulness "
            "(deletion / insertion, frequency-band removal, Average Drop / Increase), cost and "
            "seed-to-seed stability. Writes rows.csv (after every map: an interrupted run keeps "
            "what is done, and a re-run into the same --out computes only the missing rows), "
            "summary.csv/.md/.tex and maps.png. The defaults are a quick look "
            f"({QUICK['n_clips']} clips, {QUICK['budget']} masks per map); --full is the "
            "study-sized run."
        ),
    )
    model = p.add_mutually_exclusive_group()
    model.add_argument(
        "--checkpoint", type=Path, nargs="+", default=None, metavar="PT",
        help="checkpoints with a fitted backend (default: the bundled spectrogram-only "
        "SC-AdaCos and compactness models, the study's Fig. 4 pair)",
    )  # fmt: skip
    model.add_argument(
        "--detector", nargs="+", default=None, metavar="SPEC",
        help="any detectors instead: *.pt, *.onnx or package.module:function (a waveform "
        "detector is explained on its STFT; see docs/INTERFACES.md)",
    )  # fmt: skip
    p.add_argument(
        "--clip",
        type=Path,
        nargs="+",
        default=None,
        metavar="WAV",
        help="clips to explain (default: --n-clips anomalous dev-test clips of --data)",
    )
    add_data(p)
    p.add_argument("--n-clips", type=positive_int, default=None,
                   help="without --clip: this many anomalous clips, one per machine type first "
                   f"(default: {QUICK['n_clips']}; {FULL['n_clips']} with --full)")  # fmt: skip
    p.add_argument(
        "--full",
        action="store_true",
        help=f"the study-sized run: {FULL['n_clips']} clips, {FULL['budget']} masks per map "
        "(hours on a CPU)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=list(METHODS),
        metavar="METHOD",
        help=f"methods (default: all): {', '.join(METHODS)}",
    )
    p.add_argument(
        "--budget",
        type=positive_int,
        default=None,
        help="masks per RISE map and coalitions per KernelShap map "
        f"(default: {QUICK['budget']}; {FULL['budget']} with --full)",
    )
    p.add_argument("--cells", type=_pair, default=(20, 34), metavar="TxF",
                   help="RISE grid, also the features of FeatureAblation / KernelShap "
                   "(default: 20x34)")  # fmt: skip
    p.add_argument(
        "--occlusion-window",
        type=_pair,
        default=(8, 32),
        metavar="TxF",
        help="Occlusion window in frames x bins (default: 8x32)",
    )
    p.add_argument(
        "--occlusion-stride",
        type=_pair,
        default=(4, 16),
        metavar="TxF",
        help="Occlusion stride in frames x bins (default: 4x16)",
    )
    p.add_argument(
        "--ig-steps", type=positive_int, default=32, help="IntegratedGradients steps (default: 32)"
    )
    p.add_argument(
        "--shap-samples", type=positive_int, default=32, help="GradientShap samples (default: 32)"
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=64, help="inputs per forward pass (default: 64)"
    )
    p.add_argument(
        "--top-percent",
        type=percent,
        default=20.0,
        help="kept share of Average Drop / Increase, in percent (default: 20)",
    )
    p.add_argument(
        "--fill",
        choices=(*FILLS, *NORMAL_FILLS),
        default="median",
        help="what a removed cell becomes in the faithfulness measures: the clip's "
        "median frame (default), silence (zero), or normal content from the normal training "
        "clips of the clip's section in its DCASE tree: their cell-wise mean spectrogram "
        "(normal-mean) or the one nearest to the clip (normal-nearest)",
    )
    p.add_argument(
        "--no-stability",
        dest="stability",
        action="store_false",
        help="skip the second-seed maps (halves the cost of the stochastic methods)",
    )
    add_seed(p)
    add_device(p)
    add_progress(p)
    add_out(p, "compare-explainers")
    # library parameters -> the options that set them (for error lines)
    p.set_defaults(
        func=run,
        param_flags={
            "clips": "clip",
            "n_masks": "budget",
            "kernel_samples": "budget",
            "top_fraction": "top_percent",
        },
    )


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..explain.attribution import MeasureSettings, MethodSettings
    from ..workflows.compare import compare_explainers, default_checkpoints, default_clips
    from ._common import data_root

    size = FULL if args.full else QUICK
    budget = args.budget or size["budget"]
    checkpoints = args.detector or args.checkpoint or default_checkpoints()
    clips = args.clip or default_clips(
        data_root(args.data, ("dev-test",)), n=args.n_clips or size["n_clips"]
    )
    settings = MethodSettings(
        n_masks=budget, cells=args.cells, occlusion_window=args.occlusion_window,
        occlusion_stride=args.occlusion_stride, ig_steps=args.ig_steps,
        shap_samples=args.shap_samples, kernel_samples=budget, batch_size=args.batch_size,
    )  # fmt: skip

    def report(model: str, clip: Path, r) -> None:
        m = r.measures
        tqdm.write(f"{model} | {clip.parent.parent.name}/{clip.name} | {r.method}: pixel AUC "
                   f"{m['pixel_auc']:.3f}, ins-del {m['ins_minus_del']:.3f}, "
                   f"{m['seconds']:.1f} s")  # fmt: skip

    result = compare_explainers(
        checkpoints, clips, out=args.out, methods=args.methods, settings=settings,
        measures=MeasureSettings(with_stability=args.stability,
                                 top_fraction=args.top_percent / 100, fill=args.fill),
        seed=args.seed, device=args.device, on_result=report, progress=args.progress,
    )  # fmt: skip
    print(result.markdown())
    print(f"wrote {', '.join(str(p) for p in result.files.values())}")
    return 0
