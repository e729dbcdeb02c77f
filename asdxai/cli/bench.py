"""``asdxai bench <name>``: run a benchmark of :mod:`asdxai.benchmarks` and print its numbers.

The benchmark modules measure and return numbers; the options and the printing live here.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import logging
import shlex
import sys
from pathlib import Path

from ..constants import ARCHS, ESTIMATORS, PRECISIONS, SAMPLINGS, STUDY_MASKS
from ._common import add_device, add_seed, non_negative_int, positive_int


def _doc(name: str) -> str:
    """A benchmark module's docstring, read from its source (importing it would load torch,
    which ``--help`` must not wait for)."""
    spec = importlib.util.find_spec(f"asdxai.benchmarks.{name}")
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) or ""


def _register_train(sub: argparse._SubParsersAction) -> None:

    parser = sub.add_parser(
        "train",
        help="training clips/s of the dual-branch and spectrogram-only encoders",
        description=(
            "Time full training steps (features on the device, mixup, forward, SC-AdaCos, "
            "backward, Adam) on random clips for both encoders and print clips/s."
        ),
    )
    parser.add_argument(
        "--widths",
        default="1.0",
        help="comma-separated width multipliers to time (default: 1.0)",
    )
    parser.add_argument(
        "--archs", default="dual,spectrogram", help="encoders to time (default: both)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="clips per step (default: 64)")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="clip length in seconds (default: 10)"
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps (default: 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="autocast precision (default: fp32)",
    )
    parser.add_argument(
        "--device", default="auto", help="torch device: auto, cpu, cuda, cuda:N (default: auto)"
    )
    parser.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import torch

    from .._runtime import resolve_device
    from ..benchmarks import train as bench

    dev = resolve_device(args.device)
    name = (
        torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    )
    print(
        f"training throughput on {dev} ({name}), batch {args.batch_size}, "
        f"{args.duration:g} s clips, {args.precision}, {args.steps} timed steps"
    )
    for arch in [a.strip() for a in args.archs.split(",") if a.strip()]:
        for width in [float(w) for w in args.widths.split(",") if w.strip()]:
            rate = bench.bench_train_step(
                arch=arch, width=width, batch_size=args.batch_size, duration_s=args.duration,
                steps=args.steps, warmup=args.warmup,
                device=str(dev), precision=args.precision,
            )  # fmt: skip
            extra = ""
            if args.duration == 10.0:
                extra = f"  (~{42_000 / rate:.0f} s per DCASE2022 dev-train epoch of 42k clips)"
            print(f"{arch:12s} width {width:<5g} {rate:9.1f} clips/s{extra}", flush=True)
    return 0


def _register_score(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "score",
        help="k-means backend fit time and scoring throughput (clips/s)",
        description=_doc("score").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sections", type=positive_int, default=21, help="sections (default: 21)")
    parser.add_argument(
        "--source",
        type=positive_int,
        default=990,
        help="source embeddings per section (default: 990)",
    )
    parser.add_argument(
        "--target", type=int, default=10, help="target embeddings per section (default: 10)"
    )
    parser.add_argument("--k", type=positive_int, default=16, help="clusters (default: 16)")
    parser.add_argument(
        "--n-init", type=positive_int, default=5, help="k-means++ restarts (default: 5)"
    )
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="Gaussian-noise embeddings (slowest k-means convergence) instead of clustered ones",
    )
    parser.add_argument(
        "--clips", type=positive_int, default=64, help="clips scored end to end (default: 64)"
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="clip length in seconds (default: 10)"
    )
    parser.add_argument("--arch", choices=ARCHS, default="dual", help="encoder (default: dual)")
    parser.add_argument(
        "--width", type=float, default=1.0, help="encoder width multiplier (default: 1.0)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="clips per batch (default: 32)"
    )
    parser.add_argument(
        "--num-workers", type=int, default=0, help="DataLoader reader processes (default: 0)"
    )
    parser.add_argument("--skip-throughput", action="store_true", help="only time the backend fit")
    add_device(parser)
    add_seed(parser)
    parser.set_defaults(func=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    import torch

    from ..benchmarks import score as bench

    print(f"torch threads: {torch.get_num_threads()}")
    secs = bench.bench_backend_fit(
        sections=args.sections,
        n_source=args.source,
        n_target=args.target,
        dim=256,
        k=args.k,
        n_init=args.n_init,
        seed=args.seed,
        structured=not args.unstructured,
    )
    kind = "Gaussian" if args.unstructured else "clustered"
    print(
        f"k-means backend fit: {args.sections} sections x ({args.source} source + {args.target} "
        f"target) x 256 ({kind}), k={args.k}, n_init={args.n_init}: {secs:.2f} s "
        f"(goal < 5 s on 2 cores)"
    )
    if args.skip_throughput:
        return 0
    res = bench.bench_scoring(
        n_clips=args.clips,
        duration_s=args.duration,
        arch=args.arch,
        width=args.width,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.num_workers,
        seed=args.seed,
    )
    print(
        f"scoring on {res['device']} ({args.arch}, width {args.width}, {args.duration:g} s clips, "
        f"batch {args.batch_size}): end to end from wav {res['end_to_end_clips_per_s']:.1f} "
        f"clips/s; compute only {res['compute_clips_per_s']:.1f} clips/s"
    )
    return 0


def _register_rise(sub: argparse._SubParsersAction) -> None:
    from ..benchmarks import rise_quality as quality

    p = sub.add_parser(
        "rise",
        help="RISE masks/s vs the bare score function and a naive original-RISE reference",
        description=_doc("rise"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--frames", type=positive_int, default=311, help="T (default: 311)")
    p.add_argument("--bins", type=positive_int, default=513, help="F (default: 513)")
    p.add_argument("--width", type=float, default=1.0, help="encoder width (default: 1.0)")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="default: RISE's own (100 on CPU), 1024 on GPU",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch threads (default: torch's, one per physical core)",
    )
    p.add_argument(
        "--estimator", nargs="+", choices=ESTIMATORS, default=["plain"],
        help="estimator(s) of (b), one measurement each (default: plain)",
    )  # fmt: skip
    p.add_argument("--sampling", choices=SAMPLINGS, default="iid", help="mask sampling of (b)")
    p.add_argument(
        "--batches", type=positive_int, default=4, help="timed batches per method (default: 4)"
    )
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="interleaved repeats, best kept (3)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the scorer")
    p.add_argument("--no-naive", dest="naive", action="store_false", help="skip (c)")
    p.add_argument(
        "--default-malloc", action="store_true",
        help="keep glibc's default malloc thresholds (every asdxai command raises them so that "
        "large CPU buffers are reused; this measures what that gains)",
    )  # fmt: skip
    p.add_argument(
        "--out", default=None,
        help="results stem: writes <out>.json and <out>.md (speed, or quality with --quality)",
    )  # fmt: skip
    q = p.add_argument_group(
        "quality (--quality): forward passes each estimator needs to reach a converged map"
    )
    q.add_argument(
        "--quality",
        action="store_true",
        help="measure passes to r >= 0.99 / 0.995 with cached reference maps instead of speed",
    )
    q.add_argument("--data", default=None, help="data tree (default: the synthetic small tree)")
    q.add_argument(
        "--checkpoints",
        nargs="+",
        default=None,
        help="models (default: the two bundled spectrogram-only models)",
    )
    q.add_argument(
        "--clips", type=positive_int, default=quality.DEFAULT_CLIPS,
        help=f"clips (default: {quality.DEFAULT_CLIPS}, alternately anomalous and normal)",
    )  # fmt: skip
    q.add_argument(
        "--ref-masks", type=positive_int, default=quality.DEFAULT_REF_MASKS,
        help=f"masks of each reference map (default: {quality.DEFAULT_REF_MASKS:,})",
    )  # fmt: skip
    q.add_argument(
        "--study-refs", type=non_negative_int, default=0, metavar="K",
        help=f"also compute the map in the study's setting (plain estimator, {STUDY_MASKS:,} "
        "masks) for the first K clips, cached, and report every variant's r with it and "
        "its passes to r >= 0.99 with it (default: 0; ~12 min per clip of 'small' on an "
        "idle 2-core CPU)",
    )  # fmt: skip
    q.add_argument(
        "--max-passes", type=positive_int, default=quality.DEFAULT_MAX_PASSES,
        help=f"forward passes per variant (default: {quality.DEFAULT_MAX_PASSES:,})",
    )  # fmt: skip
    q.add_argument(
        "--block-size", type=positive_int, default=250, help="masks per block (default: 250)"
    )
    q.add_argument(
        "--variants", nargs="+", default=list(quality.DEFAULT_VARIANTS),
        help="<estimator>[+<sampling>] (default: %(default)s)",
    )  # fmt: skip
    p.set_defaults(func=_run_rise)


def _command_line() -> str:
    """The command as typed (shell-quoted), for a results file to name how it was made."""
    return "asdxai " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _run_rise_quality(args: argparse.Namespace) -> int:
    from ..benchmarks import rise_quality as quality
    from ..workflows.defaults import bundled_checkpoint, cache_dir, default_data_root

    root = args.data or default_data_root(splits=("dev",))
    checkpoints = args.checkpoints or [
        str(bundled_checkpoint(m)) for m in ("sc-adacos-attribute-spectrogram",
                                             "compactness-none-spectrogram")
    ]  # fmt: skip
    variants = [quality.Variant.parse(v) for v in args.variants]
    clips = quality.pick_clips(root, args.clips)
    settings = {
        "checkpoints": checkpoints, "clips": [str(c) for c in clips], "ref_masks": args.ref_masks,
        "max_passes": args.max_passes, "block_size": args.block_size,
        "variants": [v.name for v in variants], "study_refs": args.study_refs,
    }  # fmt: skip
    res = quality.run(
        checkpoints, clips, variants=variants, ref_masks=args.ref_masks,
        max_passes=args.max_passes, block_size=args.block_size, study_refs=args.study_refs,
        cache=cache_dir() / "rise-references", progress=True,
    )  # fmt: skip
    command = _command_line()
    print(quality.markdown(res, settings, command))
    if args.out:
        for path in quality.write(res, settings, args.out, command=command):
            print(f"wrote {path}")
    return 0


def _run_rise(args: argparse.Namespace) -> int:
    from ..benchmarks import rise as bench

    logging.getLogger("asdxai.explain.rise").setLevel(logging.WARNING)
    if args.quality:
        return _run_rise_quality(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runs = [
        bench.benchmark(
            shape=(args.frames, args.bins), width=args.width, batch_size=args.batch_size,
            n_batches=args.batches, device=args.device, precision=args.precision,
            compile=args.compile, naive=args.naive, repeats=args.repeats, estimator=estimator,
            sampling=args.sampling,
        )  # fmt: skip
        for estimator in args.estimator
    ]
    malloc = "glibc default" if args.default_malloc else _malloc_state()
    print(bench.report(runs, malloc=malloc))
    if args.out:
        for path in bench.write(runs, args.out, command=_command_line(), malloc=malloc):
            print(f"wrote {path}")
    return 0


def _malloc_state() -> str:
    from .._allocator import keep_large_buffers

    return "asdxai thresholds" if keep_large_buffers() else "unchanged (not glibc, or set by user)"


def _register_tsne(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "tsne",
        help="openTSNE vs scikit-learn TSNE: wall time, speed-up, kNN accuracy, trustworthiness",
        description=_doc("tsne"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=positive_int,
        default=[1000, 4200, 20000],
        metavar="N",
        help="numbers of points (default: 1000 4200 20000)",
    )
    parser.add_argument(
        "--dim", type=positive_int, default=256, help="embedding dimension (default: 256)"
    )
    add_seed(parser)
    parser.add_argument(
        "--n-jobs", type=positive_int, default=1, help="threads for both libraries (default: 1)"
    )
    parser.add_argument(
        "--no-sklearn", dest="sklearn", action="store_false", help="time openTSNE only"
    )
    parser.add_argument(
        "--sklearn-max-iter",
        type=positive_int,
        default=None,
        help="scikit-learn iterations in total (default: its own, 1000)",
    )
    parser.add_argument(
        "--method",
        choices=("auto", "bh", "fft"),
        default="auto",
        help="openTSNE gradient method: auto (Barnes-Hut below 10k points, FFT above), bh, fft "
        "(default: auto)",
    )
    parser.set_defaults(func=_run_tsne)


def _run_tsne(args: argparse.Namespace) -> int:
    from ..benchmarks import tsne as bench

    if getattr(args, "verbose", 0) < 2:  # openTSNE logs every method choice at INFO
        logging.getLogger("openTSNE").setLevel(logging.WARNING)
    rows = bench.benchmark(
        sizes=args.sizes,
        dim=args.dim,
        seed=args.seed,
        n_jobs=args.n_jobs,
        sklearn=args.sklearn,
        sklearn_max_iter=args.sklearn_max_iter,
        method=args.method,
    )
    its = sorted({r["sklearn_iter"] for r in rows if "sklearn_iter" in r})
    print(
        f"t-SNE of {args.dim}-D unit vectors, 42 clusters, {args.n_jobs} thread(s); "
        f"openTSNE ({args.method}) 250+500 iterations, scikit-learn {its} iterations"
    )
    print(bench.format_rows(rows))
    return 0


def _register_leakage(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "leakage",
        help="per-machine shortcut probes: do global clip statistics find the anomalies?",
        description=_doc("leakage").split("\n\n")[0] + " Prints a table per machine type.",
    )
    parser.add_argument(
        "--data", type=Path, default=None,
        help="DCASE-layout tree with a labelled dev-test split (default: the synthetic small "
        "tree, generated on first use)",
    )  # fmt: skip
    parser.add_argument(
        "--sections", nargs="+", default=None, metavar="NN",
        help="section numbers as in the file names, e.g. 00 (default: every dev section)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None,
        help="write <out>.md and <out>.json (default: print only)",
    )  # fmt: skip
    add_seed(parser, help="shuffles the cross-validation folds of the supervised probe "
             "(default: 0)")  # fmt: skip
    parser.set_defaults(func=_run_leakage)


def _run_leakage(args: argparse.Namespace) -> int:
    from ..benchmarks import leakage
    from ..workflows.defaults import default_data_root

    root = args.data or default_data_root(splits=("dev",))
    results = leakage.probe_tree(root, sections=args.sections, seed=args.seed)
    print(leakage.leakage_table(results))
    if args.out:
        command = _command_line()
        for path in leakage.write(results, args.out, command=command):
            print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="speed benchmarks (print numbers)",
        description="Speed benchmarks. Each prints throughput numbers for the current device.",
    )
    inner = parser.add_subparsers(dest="benchmark", metavar="<benchmark>", required=True)
    _register_train(inner)
    _register_score(inner)
    _register_rise(inner)
    _register_tsne(inner)
    _register_leakage(inner)
