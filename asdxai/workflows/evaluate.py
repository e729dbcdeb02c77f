"""Score a checkpoint, or any detector, on a split: backend fitting from disk, anomaly scores,
decision thresholds, the organisers' files and the metric tables.

The library body of ``asdxai score`` and ``asdxai fit-backend``, also used by ``asdxai train``
(which fits the backend of every model it writes), the demo and the figure scripts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics
from .._atomic import atomic_write_text
from .._runtime import provenance
from ..constants import PROTOCOLS
from ..data.audio import clip_duration, read_clip
from ..detectors import CheckedDetector
from ..errors import AudioError, CheckpointError, DataError, NonFiniteError
from ..explain.signal import signal_grid
from ..features import FeatureConfig
from ..inference import embed_records, score_records
from ..layout import Layout
from ..scoring import AnomalyScorer, KMeansBackend, backend_from_embeddings

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ScoreReport:
    """What scoring a checkpoint on a split produced.

    Attributes
    ----------
    records : the scored clips (unreadable ones left out with ``on_error="skip"``)
    scores : np.ndarray [shape=(N,)], anomaly score per record (higher = more anomalous)
    evaluations : protocol -> :class:`asdxai.metrics.Evaluation` (labelled sections only)
    thresholds : section -> decision threshold, or None without training clips
    files : every file written
    backend_fitted_here : True when the backend was fitted in memory for this run
    skipped : paths of clips left out as unreadable (training and test)
    skipped_train : the training clips among ``skipped``
    """

    records: list
    scores: np.ndarray
    evaluations: dict[str, Any]
    thresholds: dict[str, float] | None
    files: list[Path]
    backend_fitted_here: bool = False
    skipped: list[str] = dataclasses.field(default_factory=list)
    skipped_train: list[str] = dataclasses.field(default_factory=list)


def fit_backend(
    ckpt: Any,
    records: Sequence[Any],
    *,
    device: Any = "auto",
    k: int = 16,
    seed: int = 0,
    n_init: int = 5,
    batch_size: int = 64,
    progress: bool = True,
    num_workers: int = 0,
    **backend_options: Any,
) -> Any:
    """Embed training clips from disk, fit the k-means backend, return the checkpoint with it.

    Parameters
    ----------
    ckpt : Checkpoint
    records : sequence of ClipRecord
        Training clips (``subset == "train"``, e.g. ``scan(root, split="dev-train")``); normal
        source-domain clips feed k-means, target-domain clips are kept as references. Test
        clips and anomalous clips are ignored.
    device, batch_size, progress, num_workers
        Passed to :func:`asdxai.inference.embed_records`.
    k, seed, n_init, backend_options
        :func:`asdxai.scoring.backend_from_embeddings` settings.

    Returns
    -------
    Checkpoint
        A copy of ``ckpt`` with ``backend`` set (the input is not modified).
    """
    train = [r for r in records if r.subset == "train" and r.label in (None, "normal")]
    if not train:
        raise DataError("no training clips to fit the backend on (use a *-train split)")
    emb = embed_records(
        ckpt,
        train,
        device=device,
        batch_size=batch_size,
        progress=progress,
        num_workers=num_workers,
    )
    backend = backend_from_embeddings(train, emb, k=k, seed=seed, n_init=n_init, **backend_options)
    return dataclasses.replace(ckpt, backend=backend.to_dict())


def train_split_for(split: str) -> str:
    """The training split whose scores set the thresholds of ``split``."""
    return split.split("-")[0] + "-train"


@dataclasses.dataclass(frozen=True)
class ScoreSettings:
    """How :func:`score_checkpoint` scores and evaluates (every option of a scoring run)."""

    protocols: tuple[str, ...] = PROTOCOLS  # metric protocols (``study``, ``dcase``)
    threshold_percentile: float = 90.0  # decision threshold: this percentile of training scores
    device: Any = "auto"  # torch device or its name ("auto": CUDA if available)
    batch_size: int = 64  # clips per forward pass
    num_workers: int = 0  # clip-loading processes
    progress: bool = True  # tqdm progress bars
    fit_missing_backend: bool = False  # fit a missing backend in memory (else refuse)
    k: int = 16  # k-means clusters of a backend fitted here
    seed: int = 0  # seed of a backend fitted here
    backend_variant: str | None = None  # variant of a backend fitted here (None: the default)
    digits: int = 4  # decimals of the metric tables
    on_error: str = "raise"  # an unreadable clip: "raise", or "skip" (left out, listed)


def score_checkpoint(
    ckpt: Any,
    test_records: list,
    train_records: list | None,
    *,
    out_dir: Path,
    settings: ScoreSettings | None = None,
) -> ScoreReport:
    """Score test clips with one checkpoint and write the organisers' files and metric tables.

    With ``settings.on_error="skip"`` unreadable clips are left out of the thresholds, the
    files and the metrics, and listed in the report. A checkpoint without a backend is refused
    unless ``settings.fit_missing_backend`` (then it is fitted in memory on ``train_records``,
    with ``settings.k``, ``seed`` and ``backend_variant``).
    """
    opts = settings or ScoreSettings()
    device, batch_size, num_workers = opts.device, opts.batch_size, opts.num_workers
    progress, on_error, k, seed = opts.progress, opts.on_error, opts.k, opts.seed
    fitted_here = False
    train_scores = None
    skipped: list[str] = []
    skipped_train: list[str] = []
    test_sections = {r.section_key for r in test_records}
    if train_records:
        # only the sections being scored; the checkpoint must know them
        train_records = [r for r in train_records if r.section_key in test_sections]
    if train_records:
        emb = embed_records(
            ckpt, train_records, device=device, batch_size=batch_size, progress=progress,
            num_workers=num_workers, on_error=on_error,
        )  # fmt: skip
        ok = ~np.isnan(emb).any(axis=1)
        skipped_train = [str(r.path) for r, good in zip(train_records, ok, strict=True) if not good]
        skipped += skipped_train
        if not ok.all():
            train_records = [r for r, good in zip(train_records, ok, strict=True) if good]
            emb = emb[ok]
        if ckpt.backend is None and opts.fit_missing_backend:
            backend = backend_from_embeddings(
                train_records, emb, k=k, seed=seed, variant=opts.backend_variant
            )
            ckpt = dataclasses.replace(ckpt, backend=backend.to_dict())
            fitted_here = True
            log.info("fitted the k-means backend in memory (k=%d, seed=%d)", k, seed)
        if ckpt.backend is not None:
            backend = KMeansBackend.from_dict(ckpt.backend)
            train_scores = np.empty(len(train_records), dtype=np.float32)
            by_sec: dict[str, list[int]] = {}
            for i, r in enumerate(train_records):
                by_sec.setdefault(r.section_key, []).append(i)
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                for key, idx in by_sec.items():
                    train_scores[idx] = backend.score(emb[idx], key)
            bad = np.flatnonzero(~np.isfinite(train_scores))
            if bad.size:  # an error, never an "unreadable" clip
                raise NonFiniteError(
                    f"{train_records[bad[0]].path}: the checkpoint's backend gives non-finite "
                    f"anomaly scores (NaN or inf) for {bad.size} training clip(s); its means "
                    "overflow float32"
                )
    elif ckpt.backend is None and opts.fit_missing_backend:
        raise DataError("fitting the backend needs training clips, but there are none")
    if ckpt.backend is None:
        raise CheckpointError(
            "checkpoint has no fitted backend; fit one on the training clips first (or let "
            "scoring fit it in memory)"
        )
    scorer = AnomalyScorer.from_checkpoint(ckpt, device=device)
    scores = score_records(
        scorer, ckpt, test_records, batch_size=batch_size, progress=progress,
        num_workers=num_workers, on_error=on_error,
    )  # fmt: skip
    ok = ~np.isnan(scores)
    if not ok.all():
        skipped += [str(r.path) for r, good in zip(test_records, ok, strict=True) if not good]
        test_records = [r for r, good in zip(test_records, ok, strict=True) if good]
        scores = scores[ok]
        test_sections = {r.section_key for r in test_records}

    report = _report(test_records, scores, train_records, train_scores, out_dir, settings=opts)
    return dataclasses.replace(report, backend_fitted_here=fitted_here,
                               skipped=list(dict.fromkeys(skipped)),
                               skipped_train=skipped_train)  # fmt: skip


def detector_scores(
    detector: Any,
    records: Sequence[Any],
    *,
    batch_size: int = 16,
    progress: bool = True,
    on_error: str = "raise",
) -> np.ndarray:
    """Anomaly scores of clips by any detector, read from disk at its rate, by section.

    Parameters
    ----------
    detector : a :class:`~asdxai.detectors.Detector` (checked by
        :class:`~asdxai.detectors.CheckedDetector`); an asdxai checkpoint's clips are padded /
        trimmed to its clip length, other detectors get each clip as long as it is (clips of
        different lengths go in different batches)
    records : sequence of ClipRecord [length N]
    batch_size : clips per ``score`` call
    progress : show a tqdm bar
    on_error : ``"raise"`` (an unreadable clip stops the run) or ``"skip"`` (its score is NaN)

    Returns
    -------
    np.ndarray [shape=(N,)] float32, higher = more anomalous, in record order
    """

    det = CheckedDetector(detector)
    own = getattr(det.inner, "features", None)
    out = np.full(len(records), np.nan, dtype=np.float32)
    pending: dict[tuple[str, int], list[tuple[int, np.ndarray]]] = {}

    def flush(key: tuple[str, int]) -> None:
        rows = pending.pop(key, [])
        if rows:
            waves = torch.from_numpy(np.stack([w for _, w in rows]))
            with torch.no_grad():
                out[[i for i, _ in rows]] = det.score(waves, key[0]).float().cpu().numpy()

    skipped = []
    for i, r in enumerate(tqdm(records, desc="score", unit="clip", disable=not progress)):
        try:
            if isinstance(own, FeatureConfig):
                cfg = own
            else:
                n = max(int(round(clip_duration(r.path) * det.sample_rate)), 1)
                cfg = signal_grid(det.sample_rate, n)
            wave = read_clip(r.path, cfg)
        except AudioError:
            if on_error != "skip":
                raise
            skipped.append(str(r.path))
            continue
        key = (r.section_key, len(wave))
        pending.setdefault(key, []).append((i, wave))
        if len(pending[key]) >= batch_size:
            flush(key)
    for key in list(pending):
        flush(key)
    if skipped:
        log.warning("score: skipped %d of %d clips as unreadable (first: %s)", len(skipped),
                    len(records), skipped[0])  # fmt: skip
    return out


def score_detector(
    detector: Any,
    test_records: list,
    train_records: list | None,
    *,
    out_dir: Path,
    settings: ScoreSettings | None = None,
) -> ScoreReport:
    """:func:`score_checkpoint` for any detector: the organisers' files and metric tables.

    Test and training clips are scored by :func:`detector_scores`; the decision threshold of a
    section is the ``settings.threshold_percentile`` percentile of its training clips' scores
    (of ``settings`` only the protocols, threshold, batch size, progress, digits and
    ``on_error`` apply: a detector brings its own device and backend).
    """
    opts = settings or ScoreSettings()
    batch_size, progress, on_error = opts.batch_size, opts.progress, opts.on_error
    skipped: list[str] = []
    skipped_train: list[str] = []
    test_sections = {r.section_key for r in test_records}
    train_scores = None
    if train_records:
        train_records = [r for r in train_records if r.section_key in test_sections]
    if train_records:
        train_scores = detector_scores(detector, train_records, batch_size=batch_size,
                                       progress=progress, on_error=on_error)  # fmt: skip
        ok = np.isfinite(train_scores)
        skipped_train = [str(r.path) for r, good in zip(train_records, ok, strict=True) if not good]
        train_records = [r for r, good in zip(train_records, ok, strict=True) if good]
        train_scores = train_scores[ok]
        skipped += skipped_train
    scores = detector_scores(detector, test_records, batch_size=batch_size, progress=progress,
                             on_error=on_error)  # fmt: skip
    ok = np.isfinite(scores)
    skipped += [str(r.path) for r, good in zip(test_records, ok, strict=True) if not good]
    test_records = [r for r, good in zip(test_records, ok, strict=True) if good]
    scores = scores[ok]
    report = _report(test_records, scores, train_records, train_scores, out_dir, settings=opts)
    return dataclasses.replace(report, skipped=list(dict.fromkeys(skipped)),
                               skipped_train=skipped_train)  # fmt: skip


def _report(
    test_records: list,
    scores: np.ndarray,
    train_records: list | None,
    train_scores: np.ndarray | None,
    out_dir: Path,
    *,
    settings: ScoreSettings,
) -> ScoreReport:
    """Thresholds from the training scores, the organisers' files and the metric tables of
    scored test clips, as a :class:`ScoreReport` of them (nothing skipped yet)."""
    test_sections = {r.section_key for r in test_records}
    thresholds = None
    if train_scores is not None:
        thresholds = {}
        for key in sorted(test_sections):
            s = train_scores[[i for i, r in enumerate(train_records) if r.section_key == key]]
            if s.size:
                thresholds[key] = float(np.percentile(s, settings.threshold_percentile))
        missing = sorted(test_sections - set(thresholds))
        if missing:
            log.warning(
                "no training clips for %s; no decision files written", ", ".join(missing[:5])
            )
            thresholds = None
    else:
        log.info("no training clips: writing anomaly scores without decision files")
    files = metrics.write_dcase_files(out_dir, test_records, scores, thresholds=thresholds)

    evaluations = {}
    labelled = {
        key
        for key in test_sections
        if all(r.label and r.domain for r in test_records if r.section_key == key)
    }
    if labelled:
        if labelled != test_sections:
            log.warning(
                "%d section(s) have unlabeled clips and are left out of the metrics "
                "(no ground truth for them): %s",
                len(test_sections - labelled),
                ", ".join(sorted(test_sections - labelled)[:5]),
            )
        keep = [i for i, r in enumerate(test_records) if r.section_key in labelled]
        recs = [test_records[i] for i in keep]
        for protocol in settings.protocols:
            ev = metrics.evaluate(recs, scores[keep], protocol=protocol)
            evaluations[protocol] = ev
            files += metrics.write_tables(
                ev.table_rows(), Layout(out_dir).results(protocol), digits=settings.digits
            )
    else:
        log.info("no labels for the %s clips: wrote the score files only", len(test_records))
    return ScoreReport(records=list(test_records), scores=scores, evaluations=evaluations,
                       thresholds=thresholds, files=files)  # fmt: skip


def write_score_record(
    report: ScoreReport,
    folder: str | os.PathLike,
    *,
    about: Mapping[str, Any],
    settings: ScoreSettings,
    split: str,
    fitted: bool = True,
) -> Path:
    """Write ``score.json`` of one scored model into ``folder`` (:meth:`Layout.score_record`).

    ``about`` says which model and data (checkpoint or detector, its SHA-256, label, data
    root, ground truth); the record adds the thresholds and where they came from, the skipped
    clips, the summary of every protocol, the provenance and, with ``fitted`` (an asdxai
    checkpoint), whether the backend was fitted for this run and with which ``k`` and seed.
    """
    record = {
        **about, "split": split,
        "threshold_percentile": settings.threshold_percentile,
        "threshold_source": f"{train_split_for(split)} clip scores per section",
        "thresholds": report.thresholds, "on_error": settings.on_error,
        "skipped_clips": report.skipped, "skipped_training_clips": report.skipped_train,
    }  # fmt: skip
    if fitted:
        record |= {"backend_fitted_here": report.backend_fitted_here,
                   "k_if_fitted_here": settings.k if report.backend_fitted_here else None,
                   "seed": settings.seed}  # fmt: skip
    record |= {"summary": {p: ev.summary for p, ev in report.evaluations.items()},
               "provenance": provenance(settings.device)}  # fmt: skip
    path = Layout(folder).score_record()
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def write_summary_tables(
    reports: Mapping[str, ScoreReport],
    out: str | os.PathLike,
    *,
    trials_name: str | None = None,
    digits: int = 4,
) -> dict[str, tuple[list[dict[str, Any]], list[Path]]]:
    """One table per protocol with a row per model (``summary_<protocol>``, :mod:`.metrics`).

    Parameters
    ----------
    reports : row label -> the model's :class:`ScoreReport`
    out : folder of the tables
    trials_name : the models are trials of one recipe: add their mean ± std row under this
        name ("" = the first label without its ``_trial<k>`` suffix, plus the number of trials)
    digits : decimals of the markdown / LaTeX tables

    Returns
    -------
    dict protocol -> (rows, written paths)
    """
    layout, tables = Layout(out), {}
    protocols = dict.fromkeys(p for r in reports.values() for p in r.evaluations)
    for p in protocols:
        summaries = {k: r.evaluations[p].summary for k, r in reports.items() if p in r.evaluations}
        rows = [metrics.performance_row(label, s) for label, s in summaries.items()]
        if trials_name is not None:
            stem = re.sub(r"_trial\d+$", "", next(iter(summaries)))  # `asdxai train --trials`
            name = trials_name or f"{stem} (mean ± std, {len(summaries)} trials)"
            rows.append(
                metrics.performance_row(name, metrics.trials_table(list(summaries.values())))
            )
        tables[p] = (rows, metrics.write_tables(rows, layout.summary(p), digits=digits))
    return tables
