"""AUC / pAUC, harmonic means, performance tables and the DCASE organisers' result files.

Definitions
-----------
``auc``
    Area under the ROC curve, ``sklearn.metrics.roc_auc_score(y, s)``; label 1 =
    anomaly, higher score = more anomalous; tied scores count one half.
``pauc``
    Partial AUC over false-positive rates 0..``max_fpr`` (0.1), exactly
    ``sklearn.metrics.roc_auc_score(y, s, max_fpr=0.1)``: the ROC curve is cut at
    ``max_fpr`` (linear interpolation of the last segment), integrated with the
    trapezoidal rule, and *McClish-standardised*,
    ``0.5 * (1 + (A - max_fpr**2 / 2) / (max_fpr - max_fpr**2 / 2))``, so chance is
    0.5 and a perfect detector 1.0 (the raw area would be 0.005 and 0.1). This is
    what the DCASE organisers' evaluators (``nttcslab/dcase2023_task2_evaluator``,
    ``dcase2023_task2_evaluator.py``: ``metrics.roc_auc_score(y_true, y_pred,
    max_fpr=MAX_FPR)`` with ``MAX_FPR = 0.1``) and the study report.
``harmonic_mean``
    ``scipy.stats.hmean`` of the values clipped below at machine epsilon, as the
    organisers' evaluator does (``numpy.maximum(x, sys.float_info.epsilon)``), so a
    0.0 gives a tiny mean instead of an error.

Protocols (:func:`evaluate`)
----------------------------
``"study"``
    Per section and domain (source / target), AUC and pAUC from that domain's
    normal *and anomalous* test clips only; also AUC / pAUC over the whole
    section ("all"). Harmonic means over sections of every column.
``"dcase"``
    The organisers' evaluator (checked against ``dcase2023_task2_evaluator.py``):
    a domain's AUC uses that domain's normal clips plus **all** anomalous clips
    of the section (``(y_domain == d) | (y_true != 0)``); one pAUC per section
    over both domains (all clips of the section); AUC over the whole section.
    The official score is the harmonic mean of the list [AUC-source of every
    section, AUC-target of every section, pAUC of every section], each value
    clipped at machine epsilon. The organisers' per-domain summaries
    ("harmonic mean (source)" / "(target)") are the clipped harmonic means over
    sections, reported here as ``hmean_auc_source`` / ``hmean_auc_target``. Their
    overall figures, "harmonic mean over all machine types, sections, and domains"
    and "arithmetic mean over all machine types, sections, and domains", are taken
    over the list [AUC-source and AUC-target of every section] (AUC) and over the
    pAUC of every section (pAUC): ``overall_hmean_auc``, ``overall_hmean_pauc``,
    ``overall_amean_auc``, ``overall_amean_pauc``. They differ from the "AUC all"
    column's harmonic mean, which is over whole-section AUCs (one AUC of all the
    section's clips), not an organisers' figure; :meth:`Evaluation.official_lines`
    prints them under the organisers' names.
    The organisers match score rows to ground truth by sorted file name; here
    the matching is done by the records (see ``asdxai.data.records.scan``'s
    ``ground_truth``).

Result files
------------
The organisers' per-section files, one ``file,value`` row per clip, no header:
``anomaly_score_<machine>_section_<xx>_test.csv`` (float score) and
``decision_result_<machine>_section_<xx>_test.csv`` (0 = normal, 1 = anomaly).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.stats
from sklearn.metrics import roc_auc_score

from ._atomic import atomic_write_text, ensure_writable_dir
from .constants import PROTOCOLS
from .errors import ConfigError, DataError, ResultError
from .layout import Layout, table_files

logger = logging.getLogger(__name__)

MAX_FPR = 0.1  # pAUC false-positive-rate limit used by the study and the organisers

# Metric columns of each protocol, in table order.
STUDY_COLUMNS = ("auc_source", "auc_target", "pauc_source", "pauc_target", "auc_all", "pauc_all")
DCASE_COLUMNS = ("auc_source", "auc_target", "pauc", "auc_all")

# Human-readable column headings.
HEADINGS = {
    "section": "section",
    "model": "model",
    "auc_source": "AUC source",
    "auc_target": "AUC target",
    "pauc_source": "pAUC source",
    "pauc_target": "pAUC target",
    "auc_all": "AUC all",
    "pauc_all": "pAUC all",
    "pauc": "pAUC",
    "official_score": "official score",
    "overall_hmean_auc": "AUC h-mean over all machine types, sections, and domains",
    "overall_hmean_pauc": "pAUC h-mean over all machine types, sections, and domains",
    "overall_amean_auc": "AUC a-mean over all machine types, sections, and domains",
    "overall_amean_pauc": "pAUC a-mean over all machine types, sections, and domains",
}

#: The organisers' overall lines (``dcase`` protocol): their name, then (metric, summary key) pairs.
OFFICIAL_LINES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("official score", (("", "official_score"),)),
    (
        "harmonic mean over all machine types, sections, and domains",
        (("AUC", "overall_hmean_auc"), ("pAUC", "overall_hmean_pauc")),
    ),
    (
        "arithmetic mean over all machine types, sections, and domains",
        (("AUC", "overall_amean_auc"), ("pAUC", "overall_amean_pauc")),
    ),
    ("harmonic mean (source)", (("AUC", "hmean_auc_source"),)),
    ("harmonic mean (target)", (("AUC", "hmean_auc_target"),)),
)


# --------------------------------------------------------------------------- scalar metrics


def _binary_inputs(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise DataError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if y.dtype.kind not in "biu":
        raise DataError(f"labels must be 0 (normal) / 1 (anomaly) integers or bools, got {y.dtype}")
    y = y.astype(np.int64)
    if not np.isin(y, (0, 1)).all():
        raise DataError("labels must be 0 (normal) or 1 (anomaly)")
    if not np.isfinite(s).all():
        raise DataError("scores contain NaN or infinity")
    n_anom = int(y.sum())
    if n_anom == 0 or n_anom == y.size:
        raise DataError(
            f"AUC needs normal and anomalous clips, got {y.size - n_anom} normal, "
            f"{n_anom} anomalous"
        )
    return y, s


def auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve.

    Parameters
    ----------
    y_true : array-like [shape=(N,)], int or bool
        1 = anomalous, 0 = normal.
    scores : array-like [shape=(N,)], float
        Anomaly scores, higher = more anomalous.

    Returns
    -------
    float
        ``sklearn.metrics.roc_auc_score(y_true, scores)`` in [0, 1].

    Raises
    ------
    DataError
        Mismatched lengths, non-binary labels, non-finite scores, or only one class.
    """
    y, s = _binary_inputs(y_true, scores)
    return float(roc_auc_score(y, s))


def pauc(y_true: Any, scores: Any, *, max_fpr: float = MAX_FPR) -> float:
    """McClish-standardised partial AUC over false-positive rates 0..``max_fpr``.

    Identical to ``sklearn.metrics.roc_auc_score(y_true, scores, max_fpr=max_fpr)``
    and to the DCASE organisers' evaluator (see the module docstring): 0.5 = chance,
    1.0 = perfect.

    Parameters
    ----------
    y_true : array-like [shape=(N,)], int or bool
        1 = anomalous, 0 = normal.
    scores : array-like [shape=(N,)], float
        Anomaly scores, higher = more anomalous.
    max_fpr : float
        Upper false-positive rate, in (0, 1]; 1 gives the plain AUC.

    Returns
    -------
    float
    """
    if not 0.0 < max_fpr <= 1.0:
        raise ConfigError(f"max_fpr must lie in (0, 1], got {max_fpr}")
    y, s = _binary_inputs(y_true, scores)
    return float(roc_auc_score(y, s, max_fpr=max_fpr))


def harmonic_mean(values: Any, *, eps: float = float(np.finfo(float).eps)) -> float:
    """Harmonic mean of ``values`` clipped below at ``eps`` (the organisers' rule).

    Parameters
    ----------
    values : array-like [shape=(n,)], float
        Non-empty; NaN propagates (a NaN input gives NaN).
    eps : float
        Lower clip, machine epsilon by default.

    Returns
    -------
    float
        ``scipy.stats.hmean(numpy.maximum(values, eps))``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise DataError("harmonic mean of an empty list")
    if np.isnan(v).any():
        return float("nan")
    return float(scipy.stats.hmean(np.maximum(v, eps)))


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """Per-section metrics and their harmonic means for one set of scores.

    Attributes
    ----------
    protocol : str
        ``"study"`` or ``"dcase"`` (see the module docstring).
    columns : tuple of str
        Metric columns of ``rows`` in table order.
    rows : list of dict
        One dict per section: ``{"section": section_key, <column>: float, ...,
        "n_normal_source", "n_anomaly_source", "n_normal_target", "n_anomaly_target"}``.
    summary : dict
        ``hmean_<column>`` for every column (clipped harmonic mean over sections),
        plus, for the ``dcase`` protocol, ``official_score`` and the organisers'
        overall figures ``overall_{hmean,amean}_{auc,pauc}`` (module docstring).
    """

    protocol: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)

    def table_rows(self) -> list[dict[str, Any]]:
        """Section rows plus a final ``harmonic mean`` row, ready for the table writers."""
        out = [{"section": r["section"], **{c: r[c] for c in self.columns}} for r in self.rows]
        out.append(
            {"section": "harmonic mean", **{c: self.summary[f"hmean_{c}"] for c in self.columns}}
        )
        return out

    def official_lines(self, *, digits: int = 4) -> str:
        """The organisers' overall figures under their names, one line each (``dcase`` only).

        Returns
        -------
        str
            Lines such as ``harmonic mean over all machine types, sections, and domains: AUC
            0.8301, pAUC 0.7012`` (:data:`OFFICIAL_LINES`); empty for the ``study`` protocol.
        """
        if self.protocol != "dcase":
            return ""
        lines = []
        for name, values in OFFICIAL_LINES:
            cells = ", ".join(
                f"{metric} {self.summary[key]:.{digits}f}".strip() for metric, key in values
            )
            lines.append(f"{name}: {cells}")
        return "\n".join(lines) + "\n"


def _safe(fn, y: np.ndarray, s: np.ndarray, what: str) -> float:
    try:
        return fn(y, s)
    except DataError as exc:
        logger.warning("%s: %s; reported as NaN", what, exc)
        return float("nan")


def evaluate(records: Sequence[Any], scores: Any, *, protocol: str = "study") -> Evaluation:
    """AUC / pAUC per section and domain, and harmonic means over sections.

    Parameters
    ----------
    records : sequence of ClipRecord [length N]
        Test clips with known ``label`` ("normal"/"anomaly") and ``domain``
        ("source"/"target"); grouped by ``section_key``.
    scores : array-like [shape=(N,)], float
        Anomaly score of every record, higher = more anomalous.
    protocol : {"study", "dcase"}
        How domain metrics are formed (module docstring).

    Returns
    -------
    Evaluation
        Sections in sorted order. A metric that is undefined (a group without
        normal or anomalous clips) is NaN, with a warning.

    Raises
    ------
    DataError
        Length mismatch, or a record without a label or domain.
    ConfigError
        Unknown protocol.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    s_all = np.asarray(scores, dtype=np.float64).ravel()
    if len(records) != s_all.size:
        raise DataError(f"{len(records)} records but {s_all.size} scores")
    unlabeled = [r for r in records if r.label is None or r.domain is None]
    if unlabeled:
        raise DataError(
            f"{len(unlabeled)} clips have no label or domain (e.g. {unlabeled[0].path}); "
            "pass the organisers' ground truth to evaluate them",
            param="ground_truth",
        )
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.section_key, []).append(i)

    columns = STUDY_COLUMNS if protocol == "study" else DCASE_COLUMNS
    rows = []
    for key in sorted(groups):
        idx = np.asarray(groups[key])
        y = np.array([records[i].label == "anomaly" for i in idx], dtype=np.int64)
        dom = np.array([records[i].domain for i in idx])
        s = s_all[idx]
        row: dict[str, Any] = {"section": key}
        row["auc_all"] = _safe(auc, y, s, f"{key} AUC (all)")
        if protocol == "study":
            row["pauc_all"] = _safe(pauc, y, s, f"{key} pAUC (all)")
        else:
            row["pauc"] = _safe(pauc, y, s, f"{key} pAUC")
        for d in ("source", "target"):
            in_dom = dom == d
            if protocol == "study":
                m = in_dom
                row[f"auc_{d}"] = _safe(auc, y[m], s[m], f"{key} AUC ({d})")
                row[f"pauc_{d}"] = _safe(pauc, y[m], s[m], f"{key} pAUC ({d})")
            else:  # the domain's normals plus every anomaly of the section
                m = in_dom | (y == 1)
                row[f"auc_{d}"] = _safe(auc, y[m], s[m], f"{key} AUC ({d})")
            row[f"n_normal_{d}"] = int((in_dom & (y == 0)).sum())
            row[f"n_anomaly_{d}"] = int((in_dom & (y == 1)).sum())
        rows.append(row)
    if not rows:
        raise DataError("no records to evaluate")

    summary = {f"hmean_{c}": harmonic_mean([r[c] for r in rows]) for c in columns}
    if protocol == "dcase":
        aucs = [r["auc_source"] for r in rows] + [r["auc_target"] for r in rows]
        paucs = [r["pauc"] for r in rows]
        summary["official_score"] = harmonic_mean(aucs + paucs)
        summary["overall_hmean_auc"] = harmonic_mean(aucs)
        summary["overall_hmean_pauc"] = harmonic_mean(paucs)
        summary["overall_amean_auc"] = float(np.mean(aucs))
        summary["overall_amean_pauc"] = float(np.mean(paucs))
    return Evaluation(protocol=protocol, columns=columns, rows=rows, summary=summary)


# --------------------------------------------------------------------------- trials


class MeanStd(NamedTuple):
    """Mean and standard deviation of one metric over trials."""

    mean: float
    std: float
    n: int

    def format(self, *, digits: int = 4) -> str:
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def __str__(self) -> str:
        return self.format()


def trials_table(summaries: Sequence[Mapping[str, float]], *, ddof: int = 0) -> dict[str, MeanStd]:
    """Mean ± standard deviation of every summary value over trials.

    Parameters
    ----------
    summaries : sequence of dict
        One :attr:`Evaluation.summary` per trial (same keys in every one).
    ddof : int
        Delta degrees of freedom of the standard deviation; 0 (population std,
        ``numpy.std``'s default) unless told otherwise.

    Returns
    -------
    dict
        ``key -> MeanStd(mean, std, n)`` in the key order of the first summary.
    """
    if not summaries:
        raise DataError("trials_table needs at least one summary")
    keys = list(summaries[0])
    for i, s in enumerate(summaries[1:], start=1):
        if set(s) != set(keys):
            raise DataError(f"trial {i} has metrics {sorted(s)}, trial 0 has {sorted(keys)}")
    out = {}
    for k in keys:
        v = np.array([s[k] for s in summaries], dtype=np.float64)
        std = float(v.std(ddof=ddof)) if v.size > ddof else float("nan")
        out[k] = MeanStd(float(v.mean()), std, int(v.size))
    return out


def performance_row(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the study's performance table: ``{"model": name, <metric>: value}``.

    ``values`` is an :attr:`Evaluation.summary` or a :func:`trials_table` result;
    the ``hmean_`` prefix is dropped from the keys.
    """
    row: dict[str, Any] = {"model": name}
    for k, v in values.items():
        row[k.removeprefix("hmean_")] = v
    return row


# --------------------------------------------------------------------------- table writers


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    return cols


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, MeanStd):
        return value.format(digits=digits)
    if isinstance(value, float | np.floating):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return "" if value is None else str(value)


def format_csv(rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str] | None = None) -> str:
    """CSV text with a header; floats at full precision, a ``MeanStd`` as two columns."""
    cols = _columns(rows, columns)
    header: list[str] = []
    for c in cols:
        header.append(c)
        if any(isinstance(r.get(c), MeanStd) for r in rows):
            header.append(f"{c}_std")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        line: list[Any] = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, MeanStd):
                line += [repr(v.mean), repr(v.std)]
            elif f"{c}_std" in header:
                line += [repr(float(v)) if isinstance(v, float) else v, ""]
            else:
                line.append(repr(float(v)) if isinstance(v, float | np.floating) else v)
        w.writerow(line)
    return buf.getvalue()


def format_markdown(
    rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str] | None = None, digits: int = 4
) -> str:
    """GitHub Markdown table."""
    cols = _columns(rows, columns)
    lines = ["| " + " | ".join(HEADINGS.get(c, c) for c in cols) + " |"]
    lines.append("|" + "|".join(":---" if i == 0 else "---:" for i in range(len(cols))) + "|")
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c), digits) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("#", r"\#"),
    ):
        text = text.replace(a, b)
    return text


def format_latex(
    rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str] | None = None, digits: int = 4
) -> str:
    """LaTeX ``tabular`` (booktabs rules); ``MeanStd`` cells as ``$m \\pm s$``."""
    cols = _columns(rows, columns)

    def cell(v: Any) -> str:
        if isinstance(v, MeanStd):
            return f"${v.mean:.{digits}f} \\pm {v.std:.{digits}f}$"
        return _tex_escape(_cell(v, digits))

    lines = [r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", r"\toprule"]
    lines.append(" & ".join(_tex_escape(HEADINGS.get(c, c)) for c in cols) + r" \\")
    lines.append(r"\midrule")
    for r in rows:
        lines.append(" & ".join(cell(r.get(c)) for c in cols) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def format_terminal(
    rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str] | None = None, digits: int = 4
) -> str:
    """Plain fixed-width table for the terminal."""
    cols = _columns(rows, columns)
    cells = [[HEADINGS.get(c, c) for c in cols]]
    cells += [[_cell(r.get(c), digits) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]

    def line(row: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out) + "\n"


def write_tables(
    rows: Sequence[Mapping[str, Any]],
    stem: str | Path,
    *,
    columns: Sequence[str] | None = None,
    digits: int = 4,
) -> list[Path]:
    """Write ``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex`` atomically; return the paths."""
    texts = (format_csv(rows, columns=columns),
             format_markdown(rows, columns=columns, digits=digits),
             format_latex(rows, columns=columns, digits=digits))  # fmt: skip
    return [atomic_write_text(path, text)
            for path, text in zip(table_files(stem), texts, strict=True)]  # fmt: skip


# --------------------------------------------------------------------------- organisers' files


def _rows_text(rows: Sequence[tuple[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(rows)
    return buf.getvalue()


def write_dcase_files(
    out_dir: str | Path,
    records: Sequence[Any],
    scores: Any,
    *,
    thresholds: Mapping[str, float] | None = None,
) -> list[Path]:
    """Write the organisers' score (and decision) files, one pair per section.

    Parameters
    ----------
    out_dir : path
        Created if needed; the files are named by :meth:`asdxai.layout.Layout.score_file` and
        :meth:`~asdxai.layout.Layout.decision_file`.
    records : sequence of ClipRecord [length N]
        Clips scored; rows are written in the records' order under their file name.
    scores : array-like [shape=(N,)], float
        Anomaly scores (written with full float precision).
    thresholds : dict section_key -> float, optional
        Decision = 1 (anomaly) where ``score > threshold``. Without it no decision
        files are written.

    Returns
    -------
    list of Path
        Written files, sections in sorted order (score file first).
    """
    layout = Layout(ensure_writable_dir(out_dir))
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(records) != s.size:
        raise DataError(f"{len(records)} records but {s.size} scores")
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.section_key, []).append(i)
    written = []
    for key in sorted(groups):
        idx = groups[key]
        names = [records[i].name for i in idx]
        path = layout.score_file(key)
        atomic_write_text(
            path, _rows_text([(n, repr(float(s[i]))) for n, i in zip(names, idx, strict=True)])
        )
        written.append(path)
        if thresholds is not None:
            if key not in thresholds:
                raise DataError(f"no decision threshold for section {key}")
            t = float(thresholds[key])
            path = layout.decision_file(key)
            atomic_write_text(
                path, _rows_text([(n, int(s[i] > t)) for n, i in zip(names, idx, strict=True)])
            )
            written.append(path)
    return written


def read_dcase_file(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read an organisers' ``file,value`` CSV (score, decision or ground-truth file).

    Returns
    -------
    names : list of str [length N]
        File names in file order.
    values : np.ndarray [shape=(N,)], float64
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ResultError(f"{path}: cannot read ({exc.strerror})") from None
    names, values = [], []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        if len(row) < 2:
            raise ResultError(f"{path}:{lineno}: expected 'file,value', got {','.join(row)!r}")
        try:
            values.append(float(row[1]))
        except ValueError:
            raise ResultError(f"{path}:{lineno}: {row[1]!r} is not a number") from None
        names.append(row[0])
    return names, np.asarray(values, dtype=np.float64)
