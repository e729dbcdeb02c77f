"""``asdxai demo``: the study's finding on the embedded synthetic data, in a few minutes on CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..constants import DEMO_PRESETS
from ._common import (
    add_device,
    add_progress,
    add_seed,
    positive_float,
    positive_int,
    probability,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="the study's finding on synthetic data: 2 models, scores, RISE maps, t-SNE views",
        description=(
            "Score a one-class model (IC compactness, no auxiliary classes) and a sub-cluster "
            "AdaCos model with attribute classes on the synthetic test clips, print the "
            "performance table, explain the clips the SC-AdaCos model finds most anomalous "
            "with RISE under both models (with the measures of where each map looks) and draw "
            "t-SNE views of both embedding spaces. Uses the bundled models (trained on the "
            "synthetic 'small' tree); --train trains the two models here first."
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("asdxai-demo"),
        help="output folder (default: ./asdxai-demo)",
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="train the two models (spectrogram-only encoders) instead of using the bundled ones",
    )
    parser.add_argument(
        "--preset",
        choices=DEMO_PRESETS,
        default="small",
        help="synthetic data: small (the bundled models' data) or mini (faster to train on with "
        "--train; too small for the study's ordering to show reliably) (default: small)",
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=10, help="with --train: epochs (default: 10)"
    )
    parser.add_argument(
        "--width",
        type=positive_float,
        default=0.25,
        help="with --train: encoder width; 1.0 = the study's channel counts (default: 0.25)",
    )
    parser.add_argument(
        "--clips", type=positive_int, default=2, help="anomalous clips to explain (default: 2)"
    )
    parser.add_argument(
        "--max-masks",
        type=positive_int,
        default=8_000,
        help="upper bound of RISE masks per map; a map that has not reached --agreement by then "
        "says so (default: 8000)",
    )
    parser.add_argument(
        "--agreement",
        type=probability,
        default=0.95,
        help="each RISE map stops once its split-half agreement reaches this (default: 0.95)",
    )
    add_device(parser)
    add_seed(parser)
    add_progress(parser)
    parser.set_defaults(func=run)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (data-generation workers), user +
    system."""
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def run(args: argparse.Namespace) -> int:
    import os
    import time

    from ..demo import DemoSettings, run_demo

    wall, cpu = time.perf_counter(), _cpu_seconds()

    if not args.train and args.preset != "small":
        from ..errors import ConfigError

        raise ConfigError("--preset mini needs --train (the bundled models know the small tree)")
    settings = DemoSettings(
        device=args.device, seed=args.seed, train=args.train, preset=args.preset,
        epochs=args.epochs, width=args.width, n_clips=args.clips, max_masks=args.max_masks,
        agreement=args.agreement, progress=args.progress,
    )  # fmt: skip
    res = run_demo(args.out, settings=settings)
    print("\nPerformance on dev-test (study protocol, harmonic means over sections):")
    print(res.table)
    print("\nWhere the RISE maps look (machine focus: 0.5 = ignores the machine; machine")
    print("correlation < 0: machine regions read as normal; event share > 1: drawn to background")
    print("events; pixel AUC against the planted anomaly; energy_*: the same measures of the")
    print("clip's log spectrogram, a map that knows nothing of the model -- the baseline):")
    for name, per_clip in res.summary.get("measures", {}).items():
        for clip, measures in per_clip.items():
            text = ", ".join(f"{k} {v:.3f}" for k, v in measures.items() if k != "masks")
            print(f"  {name}, {clip} ({measures['masks']} masks): {text}")
    for name, dist in res.summary.get("tsne_mean_nearest_normal", {}).items():
        print(f"t-SNE mean nearest-normal distance, {name}: {dist:.3f}")
    print(f"\nsynthetic data:   {res.data}")
    for name in res.checkpoints:
        print(f"model {name}:")
        print(f"  checkpoint      {res.checkpoints[name]} (scored, t-SNE)")
        if res.explained.get(name, res.checkpoints[name]) != res.checkpoints[name]:
            print(f"  explained by    {res.explained[name]} (its spectrogram-only twin, RISE)")
        print(f"  scores/tables   {res.scores[name]}")
        for path in res.rise_maps.get(name, []):
            print(f"  RISE map        {path}")
        print(f"  t-SNE result    {res.tsne[name]}")
    print(f"performance table {res.table_file}")
    for fig in res.figures:
        print(f"figure            {fig}")
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    print(f"\ndemo: {wall:.0f} s wall ({wall / 60:.1f} min), {cpu:.0f} CPU-seconds, on "
          f"{os.cpu_count()} CPU cores with load {os.getloadavg()[0]:.1f} at the end "
          "(1-minute average; other jobs slow it down)")  # fmt: skip
    return 0
