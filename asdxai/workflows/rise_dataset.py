"""Explain a dataset's sections with RISE in one run and summarise where the maps look.

The job behind ``asdxai rise --data ROOT``: :func:`select_clips` picks clips from a DCASE-layout
tree (by default the first section of every machine type: section 00 of each of the demo's seven
machine types), :func:`explain_dataset` explains them with :func:`~.rise_run.run_rise` (the
per-clip files, resume and ``torchrun`` sharding exactly as for named clips) under one bar over
the clips, and :func:`summarise_maps` reads the saved ``.h5`` results back into one table per
run, ``<out>/rise_summary.{csv,md,tex,json}`` (:data:`asdxai.layout.RISE_SUMMARY`): per machine
type and over all clips, the clip count and the mean ± sample std of each measure of
:data:`SUMMARY_MEASURES` over the clips that have it (a measure needs the clip's ground truth:
the machine measures a synthetic clip's components, the pixel AUC an anomalous clip's mask).

The summary is built from the files, not from the run's memory, so it is the same after an
interrupted and resumed run, or a sharded one (rank 0 writes it once every rank has finished).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .._atomic import atomic_write_text, check_output_file
from .._checks import Integral, Interval, check_params
from .._io import json_default
from ..data.records import scan
from ..errors import ConfigError, DataError, ResultError
from ..explain.distributed import env_rank
from ..explain.result import load_result
from ..explain.rise import RISEExecution
from ..layout import RISE_SUMMARY, Layout, table_files
from ..metrics import MeanStd, write_tables
from .explain import ExplainedClip, MapSettings
from .rise_run import RunSettings, run_rise

log = logging.getLogger(__name__)

#: Measures of the summary, in column order: the map's machine focus, signed machine
#: correlation and correlation beyond energy, the energy map's focus and correlation (the
#: baseline), the pixel AUC of the map and of the energy map (anomalous clips with a mask).
SUMMARY_MEASURES = (
    "machine_focus", "energy_machine_focus", "machine_correlation",
    "energy_machine_correlation", "machine_partial_r", "pixel_auc", "energy_pixel_auc",
)  # fmt: skip
#: Row label of the summary's row over every clip.
ALL_ROW = "all"
_SECTION_NUMBER = re.compile(r"^\d{2}$")


def select_clips(
    root: str | os.PathLike,
    *,
    split: str = "dev-test",
    machines: Sequence[str] | None = None,
    sections: Sequence[str] | None = None,
    anomalous_only: bool = False,
    limit_per_section: int | None = None,
    limit: int | None = None,
) -> list[Any]:
    """The clips of a DCASE-layout tree to explain, as :class:`~asdxai.data.records.ClipRecord`.

    Parameters
    ----------
    root : dataset root (:func:`asdxai.data.records.scan`)
    split : ``dev-test``, ``eval-test``, ``dev-train`` or ``eval-train``
    machines : only these machine types (default: all)
    sections : section keys (``fan_section_00``) or two-digit numbers (``00``: that section of
        every selected machine type); default: the first section of every machine type (on
        the demo's tree, section 00 of each of its seven machine types)
    anomalous_only : only clips labelled anomalous
    limit_per_section : at most this many clips per section (the first by file name)
    limit : at most this many clips in all (the first in (machine, section, name) order)

    Returns
    -------
    list of ClipRecord, sorted by (machine, section, file name)

    Raises
    ------
    DataError
        A section that has no clips in the split (named, with the sections there), or an
        empty selection.
    """
    counts = {"limit_per_section": limit_per_section, "limit": limit}
    check_params({k: (Integral, Interval(1, None)) for k in counts},
                 **{k: v for k, v in counts.items() if v is not None})  # fmt: skip
    records = scan(root, split=split, machines=machines)
    present = sorted({r.section_key for r in records})
    by_machine: dict[str, list[str]] = {}
    for key in present:
        by_machine.setdefault(key.rsplit("_section_", 1)[0], []).append(key)
    if sections is None:
        wanted = [keys[0] for keys in by_machine.values()]
    else:
        wanted = []
        for s in sections:
            wanted += [f"{m}_section_{s}" for m in by_machine] if _SECTION_NUMBER.match(s) else [s]
        missing = [k for k in dict.fromkeys(wanted) if k not in present]
        if missing:
            raise DataError(
                f"{root}: no {split} clips of {', '.join(missing)}; the sections there: "
                f"{', '.join(present)}",
                param="sections",
            )
    keep = set(wanted)
    records = [r for r in records if r.section_key in keep]
    if anomalous_only:
        records = [r for r in records if r.label == "anomaly"]
    if limit_per_section is not None:
        count: dict[str, int] = {}
        picked = []
        for r in records:
            count[r.section_key] = count.get(r.section_key, 0) + 1
            if count[r.section_key] <= limit_per_section:
                picked.append(r)
        records = picked
    if limit is not None:
        records = records[:limit]
    if not records:
        raise DataError(f"{root}: no clips selected from split {split}")
    return records


@dataclass
class RiseSummary:
    """Where a run's maps look, per machine type: the rows of ``rise_summary``.

    Attributes
    ----------
    rows : one dict per machine type and a last one over all clips (:data:`ALL_ROW`):
        ``machine``, ``clips`` (results read), ``anomalous`` (clips with a pixel AUC) and, per
        measure of :data:`SUMMARY_MEASURES`, a :class:`~asdxai.metrics.MeanStd` over the clips
        that have it (a float for one clip, None for none)
    per_clip : the measures read from each result: ``{"clip", "machine", "h5", <measure>...}``
        (NaN where a clip lacks one)
    missing : results not on disk or not complete (their clips are left out of the rows)
    detector : name of the detector the maps explain (that of the first result)
    files : what :func:`summarise_maps` wrote (``csv``, ``md``, ``tex``, ``json``)
    """

    rows: list[dict[str, Any]]
    per_clip: list[dict[str, Any]]
    missing: list[Path] = field(default_factory=list)
    detector: str | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON types (``rise_summary.json``)."""

        def cell(value: Any) -> Any:
            if value is None or isinstance(value, (int, str)):
                return value
            if isinstance(value, float):
                return {"mean": value, "std": None, "n": 1}
            return {"mean": value.mean, "std": value.std, "n": value.n}

        return {
            "detector": self.detector,
            "measures": list(SUMMARY_MEASURES),
            "rows": [{k: cell(v) for k, v in row.items()} for row in self.rows],
            "missing": [str(p) for p in self.missing],
        }


def summary_files(out: str | os.PathLike) -> dict[str, Path]:
    """The files of a run's summary below ``out``: ``csv``, ``md``, ``tex`` and ``json``."""
    layout = Layout(out)
    csv_file, md_file, tex_file = table_files(layout.table(RISE_SUMMARY))
    return {"csv": csv_file, "md": md_file, "tex": tex_file, "json": layout.record(RISE_SUMMARY)}


def summarise_maps(
    records: Sequence[Any], out: str | os.PathLike, *, write: bool = True
) -> RiseSummary:
    """Read the ``.h5`` results of ``records`` below ``out`` and summarise them per machine type.

    Parameters
    ----------
    records : the explained clips (:class:`~asdxai.data.records.ClipRecord`; only ``path`` and
        ``machine`` are read), their results where :meth:`asdxai.layout.Layout.map_files` puts
        them
    out : the run's output folder
    write : also write :func:`summary_files` (atomically)

    Returns
    -------
    RiseSummary

    Raises
    ------
    ResultError
        No record has a complete result, or a result is damaged.
    """
    layout = Layout(out)
    per_clip, missing, detector = [], [], None
    for r in records:
        h5 = layout.map_files(r.path, plot=False)["map"]
        result = load_result(h5) if h5.is_file() else None
        if result is None or not result.complete or "measures" not in result.meta:
            missing.append(h5)
            continue
        detector = detector or result.meta.get("detector")
        measures = result.meta["measures"]
        values = {k: float(measures.get(k, math.nan)) for k in SUMMARY_MEASURES}
        per_clip.append({"clip": str(r.path), "machine": r.machine, "h5": str(h5), **values})
    if not per_clip:
        raise ResultError(f"{out}: none of the {len(records)} clips has a complete RISE result")
    if missing:
        log.warning("%d of %d clips have no complete result in %s; left out of the summary",
                    len(missing), len(records), out)  # fmt: skip
    machines = list(dict.fromkeys(c["machine"] for c in per_clip))
    rows = [_row(m, [c for c in per_clip if c["machine"] == m]) for m in machines]
    rows.append(_row(ALL_ROW, per_clip))
    summary = RiseSummary(rows, per_clip, missing, detector)
    if write:
        files = summary_files(out)
        for path in files.values():
            check_output_file(path)
        columns = ["machine", "clips", "anomalous", *SUMMARY_MEASURES]
        write_tables(rows, layout.table(RISE_SUMMARY), columns=columns, digits=3)
        text = json.dumps(summary.to_dict(), indent=2, default=json_default)
        atomic_write_text(files["json"], text + "\n")
        summary.files = files
    return summary


def _row(machine: str, clips: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary row: counts and the mean ± sample std of every measure over ``clips``."""
    anomalous = sum(bool(np.isfinite(c["pixel_auc"])) for c in clips)
    row: dict[str, Any] = {"machine": machine, "clips": len(clips), "anomalous": anomalous}
    for key in SUMMARY_MEASURES:
        v = np.array([c[key] for c in clips], dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            row[key] = None
        elif v.size == 1:
            row[key] = float(v[0])
        else:
            row[key] = MeanStd(float(v.mean()), float(v.std(ddof=1)), int(v.size))
    return row


def explain_dataset(
    detector: Any,
    records: Sequence[Any],
    out: str | os.PathLike,
    *,
    settings: MapSettings,
    execution: RISEExecution,
    run: RunSettings | None = None,
) -> RiseSummary | None:
    """Explain ``records`` with ``detector`` into ``out`` and write the run's summary table.

    Runs :func:`~.rise_run.run_rise` on the records' clips in their own sections, under one bar
    over the clips (each clip's mask count beside it; the clips' own mask bars stay hidden)
    when ``execution.progress``. Under ``torchrun`` the clips are shared among the ranks, the
    bar shows rank 0's share and rank 0 writes the summary (:func:`summarise_maps`) once every
    rank has finished; a re-run skips the finished clips and continues partial ones.

    Parameters
    ----------
    detector : detector spec or object (:func:`asdxai.detectors.load_detector`)
    records : the clips (:func:`select_clips`)
    out : output folder
    settings, execution : what map and how (:func:`~.rise_run.run_rise`); ``execution.progress``
        shows the bar over the clips
    run : what the run writes and reports (:class:`~.rise_run.RunSettings`; its ``section``
        must be None: each clip is explained in its own section). Its ``on_done`` (each
        finished :class:`~.explain.ExplainedClip`) and ``on_line`` (the projected time of the
        first clip, once) print above the bar.

    Returns
    -------
    RiseSummary, or None on a rank other than 0
    """
    run = run or RunSettings()
    if run.section is not None:
        raise ConfigError("a dataset run explains each clip in its own section; run.section "
                        f"must be None, got {run.section!r}", param="section")  # fmt: skip
    rank, world = env_rank()
    mine = len(records[rank::world])
    if rank == 0:
        for path in summary_files(out).values():
            check_output_file(path)
    desc = "clips" if world == 1 else f"clips of rank 0 (of {world})"
    show = execution.progress and rank == 0
    bar = tqdm(total=mine, desc=desc, unit="clip", disable=not show, dynamic_ncols=True)
    shown: list[str] = []

    def done(item: ExplainedClip) -> None:
        bar.update(1)
        state = "kept" if item.reused else f"{item.result.elapsed_s:.0f} s"
        bar.set_postfix_str(f"{item.clip.name}: {item.result.n_masks} masks, {state}")
        if run.on_done is not None:
            with tqdm.external_write_mode():
                run.on_done(item)

    def line(text: str) -> None:
        if run.on_line is not None and not shown:
            shown.append(text)
            with tqdm.external_write_mode():
                run.on_line(text)

    try:
        with logging_redirect_tqdm():  # each clip's log lines above the bar, not through it
            run_rise(
                detector, [r.path for r in records], out, settings=settings,
                execution=replace(execution, progress=False),
                run=replace(run, on_done=done, on_line=line),
                sections=[r.section_key for r in records],
            )  # fmt: skip
    finally:
        bar.close()
    return summarise_maps(records, out) if rank == 0 else None
