"""``asdxai synth OUT``: write a synthetic tree in the DCASE2022 Task 2 layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..constants import SYNTH_PRESETS
from ._common import add_progress, add_seed, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "synth",
        help="write synthetic data in the DCASE2022 layout",
        description=(
            "Write a synthetic anomalous-sound tree in the exact DCASE2022 Task 2 layout "
            "(dev_data/, eval_data/, attributes_XX.csv, organisers' ground-truth CSVs), plus "
            "anomaly_masks.h5 (ground-truth time-frequency mask of every anomalous clip) and "
            "synth.json. Machine sounds carry the labels; a loud, diverse factory background "
            "carries none. Presets: " + ", ".join(SYNTH_PRESETS) + " (machine types, sections, "
            "clip length and counts of each: the README's preset table, and synth.json once "
            "written)."
        ),
    )
    parser.add_argument("out", type=Path, help="output directory (created if missing)")
    parser.add_argument(
        "--preset",
        choices=SYNTH_PRESETS,
        default="mini",
        help="size of the tree (default: mini; see above)",
    )
    add_seed(parser)
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="worker processes (default: up to 2); the files written do not depend on it",
    )
    add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synth import PRESETS, generate

    start = time.perf_counter()
    out = generate(
        args.out, preset=args.preset, seed=args.seed, workers=args.workers, progress=args.progress
    )
    elapsed = time.perf_counter() - start
    cfg = PRESETS[args.preset]
    counts = cfg.counts()
    splits = ("dev-train", "dev-test", "eval-train", "eval-test")
    print(f"synthetic '{cfg.name}' tree (seed {args.seed}) written to {out} in {elapsed:.1f} s")
    print(f"{'machine':10s}" + "".join(f"{s:>11s}" for s in splits))
    for machine, c in counts.items():
        print(f"{machine:10s}" + "".join(f"{c[s]:11d}" for s in splits))
    total = sum(sum(c.values()) for c in counts.values())
    print(
        f"{total} clips of {cfg.duration_s:g} s at 16 kHz; ground-truth masks (anomaly_masks.h5) "
        f"and settings (synth.json) in {out}"
    )
    return 0
