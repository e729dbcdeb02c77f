"""Regenerate every figure and table of the study on one shared work folder.

Runs, in this order, ``fig4_rise`` (two spectrogram-only models), ``fig5_tsne`` (six models)
and ``table3_tsne_distance`` (the same six), ``fig2_losses_mixup``, ``fig3_losses_no_mixup`` and
``table2_performance`` (every recipe; eight of its models are already trained by then), all with
the same options. Trained checkpoints, scores, t-SNE results and RISE maps are cached in the work
folder (``<out>/_work``), so a second run, or a run after an interruption, only computes what is
missing. The wall time of every script goes to ``<out>/make_all.json``.

    python figures/make_all.py [--data ROOT] [--out DIR] [--device cpu] [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from asdxai.layout import Layout

sys.path.insert(0, str(Path(__file__).resolve().parent))

SCRIPTS = (
    "fig4_rise",
    "fig5_tsne",
    "table3_tsne_distance",
    "fig2_losses_mixup",
    "fig3_losses_no_mixup",
    "table2_performance",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Run every figure/table script on one work folder (other options are passed "
        "through: --data --out --work --device --quick --trials --epochs --width --seed "
        "--no-progress)",
    )
    p.add_argument("--only", nargs="+", choices=SCRIPTS, default=None, help="only these scripts")
    p.add_argument("--out", type=Path, default=Path("figures/output"), help="output folder")
    args, rest = p.parse_known_args(argv)
    rest = ["--out", str(args.out), *rest]
    timings, cpu = {}, {}
    t0, c0 = time.perf_counter(), time.process_time()
    for name in args.only or SCRIPTS:
        print(f"\n=== {name} {' '.join(rest)}", flush=True)
        t, c = time.perf_counter(), time.process_time()
        code = importlib.import_module(name).main(list(rest))
        timings[name] = round(time.perf_counter() - t, 1)
        cpu[name] = round(time.process_time() - c, 1)
        print(f"=== {name}: {timings[name]:.0f} s wall, {cpu[name]:.0f} s CPU", flush=True)
        if code:
            return code
    total = round(time.perf_counter() - t0, 1)
    total_cpu = round(time.process_time() - c0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    info = {"argv": rest, "wall_s": timings, "cpu_s": cpu, "total_wall_s": total,
            "total_cpu_s": total_cpu}  # fmt: skip
    Layout(args.out).record("make_all").write_text(json.dumps(info, indent=2) + "\n")
    print(f"\nall done in {total:.0f} s wall ({total_cpu:.0f} s CPU): {timings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
