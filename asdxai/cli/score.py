"""``asdxai score``: anomaly scores, the organisers' result files and the performance table.

For each checkpoint: score every clip of the split with the black-box scorer
(encoder + fitted k-means backend), write the organisers' per-section files
``anomaly_score_<machine>_section_<xx>_test.csv`` and
``decision_result_<machine>_section_<xx>_test.csv``, and where labels are known
(file names of the dev set, or ``--ground-truth`` for the eval set) compute AUC /
pAUC per section and domain and their harmonic means (``--protocol``).

Decision threshold: per section, the ``--threshold-percentile`` (default 90th)
percentile of the anomaly scores of that section's *training* clips (all normal;
source and target), so the matching train split (dev-train for dev-test,
eval-train for eval-test) is scored too. Without training clips no decision
files are written.

Outputs in ``--out`` (one checkpoint) or ``--out/<label>/`` (several):
the organisers' CSVs, ``results_<protocol>.{csv,md,tex}`` (per section + harmonic
mean) and ``score.json`` (settings, summary, provenance). With several
checkpoints, ``--out/summary_<protocol>.{csv,md,tex}`` has one row per
checkpoint; with ``--trials`` also a ``mean ± std`` row over them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from pathlib import Path

from ..constants import ON_ERROR, PROTOCOLS, SPLITS
from ..layout import Layout, safe_name, table_files
from ._common import (
    add_backend,
    add_data,
    add_device,
    add_loading,
    add_out,
    add_progress,
    add_seed,
    checkpoint_path,
    data_root,
    number_in,
    positive_int,
)

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "score",
        help="anomaly scores, the organisers' CSV files and the AUC/pAUC performance table",
        description=(
            "Score every clip of a split with each checkpoint's encoder and fitted k-means "
            "backend, write the DCASE organisers' anomaly_score_*/decision_result_* files and, "
            "where labels are known, AUC / pAUC per section and domain with harmonic means "
            "(printed, and saved as CSV / Markdown / LaTeX). The decision threshold is a "
            "percentile of the section's training-clip scores, so the matching train split is "
            "scored too."
        ),
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument(
        "--detector",
        default=None,
        metavar="SPEC",
        help="score any detector instead of checkpoints: an ONNX file *.onnx, a Python factory "
        "package.module:function, or a checkpoint *.pt (see docs/INTERFACES.md); thresholds "
        "from its training-clip scores",
    )
    model.add_argument(
        "--checkpoint",
        nargs="+",
        default=None,
        type=Path,
        metavar="PT",
        help="one or more checkpoints (model.pt) with a fitted backend (default: "
        "$ASDXAI_CHECKPOINT, else the bundled SC-AdaCos model)",
    )
    add_data(parser)
    parser.add_argument(
        "--split",
        default="dev-test",
        choices=SPLITS,
        help="clips to score (default: dev-test)",
    )
    add_out(parser, "score")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of another checkpoint or split in --out (default: refuse; "
        "the same checkpoint and split are re-scored in place)",
    )
    parser.add_argument(
        "--protocol",
        choices=(*PROTOCOLS, "both"),
        default="both",
        help="study: a domain's AUC/pAUC from that domain's normal and anomalous clips; dcase: "
        "the organisers' evaluator (a domain's AUC from its normals + all anomalies of the "
        "section, one pAUC per section, official score); both (default: both)",
    )
    parser.add_argument(
        "--ground-truth",
        type=Path,
        default=None,
        metavar="DIR",
        help="the organisers' ground truth (ground_truth_data/ + ground_truth_domain/ folders) "
        "to label eval clips; without labels only the score files are written "
        "(default: <data>/ground_truth if present)",
    )
    parser.add_argument(
        "--threshold-percentile",
        type=number_in(0, 100),
        default=90.0,
        help="decision threshold = this percentile of each section's training-clip scores "
        "(default: 90)",
    )
    parser.add_argument(
        "--machines",
        nargs="+",
        default=None,
        metavar="TYPE",
        help="only these machine types (default: all)",
    )
    parser.add_argument(
        "--trials",
        action="store_true",
        help="treat the checkpoints as trials of one model: add a mean ± std row over them "
        "to the summary table (the layout of the study's Table II)",
    )
    parser.add_argument(
        "--labels",
        nargs="+",
        default=None,
        metavar="LABEL",
        help="one label per checkpoint for folder names and table rows (default: file names)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="row label of the mean ± std row with --trials (default: the first label without "
        "its _trialN suffix)",
    )
    parser.add_argument(
        "--fit-backend",
        action="store_true",
        help="fit the k-means backend on the training split when a checkpoint has none "
        "(kept in memory only; `asdxai fit-backend` stores it)",
    )
    parser.add_argument(
        "--k",
        type=positive_int,
        default=16,
        help="k-means clusters per section with --fit-backend (default: 16)",
    )
    add_backend(parser, " fitted with --fit-backend")
    add_seed(parser)
    add_device(parser)
    add_loading(parser)
    parser.add_argument(
        "--on-error",
        choices=ON_ERROR,
        default="raise",
        help="an unreadable clip stops the run with its error (raise), or is left out of the "
        "scores, thresholds and metrics with a warning, counted and listed in score.json "
        "(skip) (default: raise)",
    )
    parser.add_argument(
        "--digits", type=int, choices=range(13), default=4, metavar="{0..12}",
        help="decimals in tables (default: 4)",
    )  # fmt: skip
    add_progress(parser)
    parser.set_defaults(func=run)


@contextlib.contextmanager
def _naming(checkpoint: Path):
    """Prefix a non-finite error (raised naming a clip) with the checkpoint that produced it."""
    from ..errors import NonFiniteError

    try:
        yield
    except NonFiniteError as exc:
        raise NonFiniteError(f"checkpoint {checkpoint}: {exc}", param=exc.param) from None


def _check_outputs(
    out: Path,
    labels: list[str],
    *,
    single: bool,
    trials: bool,
    sections: set[str],
    protocols: tuple[str, ...],
) -> None:
    """Every file the run will write can be written (checked before any clip is scored)."""
    from .._atomic import check_output_file

    layout = Layout(out)
    files = []
    for label in labels:
        target = _target(layout, label, single=single)
        files.append(target.score_record())
        files += [f(key) for key in sorted(sections) for f in (target.score_file,
                                                                target.decision_file)]  # fmt: skip
        files += [f for p in protocols for f in table_files(target.results(p))]
    if not single or trials:
        files += [f for p in protocols for f in table_files(layout.summary(p))]
    for path in files:
        check_output_file(path)


def _target(layout: Layout, label: str, *, single: bool) -> Layout:
    """Where one checkpoint's results go: the root for one checkpoint, else ``<root>/<label>``."""
    return layout if single else layout.model(label)


def _labels(paths: list[Path], given: list[str] | None) -> list[str]:
    from ..errors import ConfigError

    if given is not None:
        if len(given) != len(paths):
            raise ConfigError(f"--labels: {len(given)} labels for {len(paths)} checkpoints")
        labels = list(given)
    else:
        labels = [p.stem for p in paths]
        if len(set(labels)) != len(labels):
            labels = [f"{p.parent.name}_{p.stem}" if p.parent.name else p.stem for p in paths]
        if len(set(labels)) != len(labels):
            labels = [f"{p.stem}_{i}" for i, p in enumerate(paths)]
    if len({safe_name(x) for x in labels}) != len(labels):
        raise ConfigError("--labels must give distinct folder names")
    return labels


def _refuse_other_results(target: Layout, path: Path, sha: str, split: str) -> None:
    """Refuse to write into a folder that holds the results of another checkpoint or split."""
    from ..errors import ConfigError

    previous = target.score_record()
    if not previous.is_file():
        return
    try:
        old = json.loads(previous.read_text())
        # a detector's run names its fingerprint; a checkpoint's (and older detector runs) the sha
        done = old.get("detector_fingerprint") or old.get("checkpoint_sha256")
        same = done == sha and old.get("split") == split
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        raise ConfigError(
            f"{target.root} holds the results of another run ({previous}); choose another --out or "
            "pass --overwrite"
        )


def run(args: argparse.Namespace) -> int:
    from .. import metrics
    from .._atomic import ensure_writable_dir
    from .._io import sha256_file
    from .._runtime import resolve_device
    from ..checkpoint import load_checkpoint
    from ..data.records import scan
    from ..errors import CheckpointError, DataError
    from ..workflows.evaluate import (
        PROTOCOLS,
        ScoreSettings,
        score_checkpoint,
        train_split_for,
        write_score_record,
        write_summary_tables,
    )

    if args.detector is not None and Path(args.detector).suffix.lower() != ".pt":
        return _run_detector(args)
    if args.detector is not None:
        args.checkpoint = [Path(args.detector)]
    paths = (
        [checkpoint_path(p) for p in args.checkpoint]
        if args.checkpoint
        else [checkpoint_path(None)]
    )
    root = data_root(args.data, (args.split, train_split_for(args.split)))
    device = resolve_device(args.device)
    out = ensure_writable_dir(args.out)
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    labels = _labels(paths, args.labels)
    ckpts = [load_checkpoint(p) for p in paths]  # fail early on a bad file
    for path, ckpt in zip(paths, ckpts, strict=True):
        if ckpt.backend is None and not args.fit_backend:
            raise CheckpointError(
                f"{path}: checkpoint has no fitted backend; run `asdxai fit-backend "
                f"--checkpoint {path}` first, or pass --fit-backend"
            )

    test_records = scan(
        root, split=args.split, ground_truth=args.ground_truth, machines=args.machines
    )
    train_split = train_split_for(args.split)
    if train_split == args.split:
        train_records = test_records
    else:
        try:
            train_records = scan(root, split=train_split, machines=args.machines)
        except DataError as exc:  # a missing train split only disables the decision files
            log.warning("%s: %s; decision files need training clips", train_split, exc)
            train_records = None
    _check_outputs(out, labels, single=len(paths) == 1, trials=args.trials,
                   sections={r.section_key for r in test_records}, protocols=protocols)  # fmt: skip
    shas = [sha256_file(p) for p in paths]
    if not args.overwrite:
        for path, label, sha in zip(paths, labels, shas, strict=True):
            _refuse_other_results(_target(Layout(out), label, single=len(paths) == 1), path,
                                  sha, args.split)  # fmt: skip
    log.info(
        "scoring %d %s clips (%d %s clips for thresholds) on %s",
        len(test_records),
        args.split,
        len(train_records or []),
        train_split,
        device,
    )

    settings = ScoreSettings(
        protocols=protocols, threshold_percentile=args.threshold_percentile, device=str(device),
        batch_size=args.batch_size, num_workers=args.num_workers, progress=args.progress,
        fit_missing_backend=args.fit_backend, k=args.k, seed=args.seed,
        backend_variant=args.backend, digits=args.digits, on_error=args.on_error,
    )  # fmt: skip
    single = len(ckpts) == 1
    reports = {}
    for path, label, ckpt, sha in zip(paths, labels, ckpts, shas, strict=True):
        target = _target(Layout(out), label, single=single)
        log.info("%s -> %s", path, target.root)
        with _naming(path):
            res = score_checkpoint(ckpt, test_records, train_records, out_dir=target.root,
                                   settings=settings)  # fmt: skip
        about = {"checkpoint": str(path), "checkpoint_sha256": sha, "label": label,
                 "data": str(root), "ground_truth": _text(args.ground_truth)}  # fmt: skip
        record = write_score_record(res, target.root, about=about, settings=settings,
                                    split=args.split)  # fmt: skip
        gone = set(res.skipped)
        n_test = sum(str(r.path) not in gone for r in test_records)
        print(f"\n{label}: {n_test} clips scored -> {target.root}")
        if gone:
            print(
                f"skipped {len(gone)} unreadable clip(s), {len(res.skipped_train)} of them "
                f"training clips (listed in {record}), e.g. {res.skipped[0]}"
            )
        _print_evaluations(res, args.digits)
        reports[label] = res

    if not single or args.trials:
        trials_name = (args.name or "") if args.trials else None
        tables = write_summary_tables(reports, out, trials_name=trials_name, digits=args.digits)
        for p, (table, written) in tables.items():
            print(f"\n[{p} protocol, harmonic means over sections] -> {written[0].with_suffix('')}")
            print(metrics.format_terminal(table, digits=args.digits), end="")
    print(f"\nwrote results to {out}")
    return 0


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _print_evaluations(res, digits: int) -> None:
    from .. import metrics

    for p, ev in res.evaluations.items():
        print(f"\n[{p} protocol]")
        print(metrics.format_terminal(ev.table_rows(), digits=digits), end="")
        if p == "dcase":
            print(ev.official_lines(digits=digits))


def _run_detector(args: argparse.Namespace) -> int:
    """``asdxai score --detector SPEC`` for a detector that is not an asdxai checkpoint."""
    from .._atomic import ensure_writable_dir
    from .._runtime import resolve_device
    from ..data.records import scan
    from ..detectors import CheckedDetector, load_detector
    from ..errors import ConfigError, DataError
    from ..workflows.evaluate import (
        PROTOCOLS,
        ScoreSettings,
        score_detector,
        train_split_for,
        write_score_record,
    )

    for flag, bad in (("--fit-backend", args.fit_backend), ("--trials", args.trials),
                      ("--labels", args.labels)):  # fmt: skip
        if bad:
            raise ConfigError(f"{flag} applies to checkpoints, not to --detector")
    device = resolve_device(args.device)
    detector = CheckedDetector(load_detector(args.detector, device=device))
    root = data_root(args.data, (args.split, train_split_for(args.split)))
    out = ensure_writable_dir(args.out)
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    test_records = scan(
        root, split=args.split, ground_truth=args.ground_truth, machines=args.machines
    )
    train_split = train_split_for(args.split)
    try:
        train_records = scan(root, split=train_split, machines=args.machines)
    except DataError as exc:  # a missing train split only disables the decision files
        log.warning("%s: %s; decision files need training clips", train_split, exc)
        train_records = None
    _check_outputs(out, [detector.name], single=True, trials=False,
                   sections={r.section_key for r in test_records}, protocols=protocols)  # fmt: skip
    if not args.overwrite:
        _refuse_other_results(Layout(out), Path(args.detector), detector.fingerprint, args.split)
    settings = ScoreSettings(protocols=protocols, threshold_percentile=args.threshold_percentile,
                             device=str(device), batch_size=args.batch_size,
                             progress=args.progress, digits=args.digits,
                             on_error=args.on_error)  # fmt: skip
    res = score_detector(detector, test_records, train_records, out_dir=out, settings=settings)
    about = {"detector": detector.name, "detector_spec": str(args.detector),
             "detector_fingerprint": detector.fingerprint,
             "detector_describe": detector.describe(),
             "data": str(root), "ground_truth": _text(args.ground_truth)}  # fmt: skip
    write_score_record(res, out, about=about, settings=settings, split=args.split, fitted=False)
    print(f"\n{detector.name}: {len(res.records)} clips scored -> {out}")
    _print_evaluations(res, args.digits)
    print(f"\nwrote results to {out}")
    return 0
