"""Nearest-normal distances (Table III), in the projection and in the embedding space."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .projection import _check_matrix

#: Metadata columns of a result, one string per clip ("" where unknown).
META_COLUMNS = ("path", "machine", "section", "domain", "label")
#: Grouping columns of the distance report.
GROUP_COLUMNS = ("machine", "section", "domain")


def _mask(is_anomaly: np.ndarray, n: int) -> np.ndarray:
    mask = np.asarray(is_anomaly)
    if mask.shape != (n,):
        raise DataError(f"is_anomaly must have shape ({n},), got {mask.shape}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise DataError("is_anomaly must be boolean (or 0/1)")
        mask = mask.astype(bool)
    return mask


def _neighbors(metric: str) -> Any:
    # scikit-learn on first use: its import costs ~3/4 of torch's (measured); most runs skip it
    from sklearn.neighbors import NearestNeighbors

    if metric == "euclidean":
        return NearestNeighbors(metric="euclidean", algorithm="kd_tree")
    if metric == "cosine":
        return NearestNeighbors(metric="cosine", algorithm="brute")
    raise ConfigError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


def nearest_normal_distances(
    points: np.ndarray,
    is_anomaly: np.ndarray,
    *,
    metric: str = "euclidean",
    return_index: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Distance from every anomalous point to its closest normal point (Table III of the study).

    A KD-tree (Euclidean) or a chunked brute-force search (cosine) over the
    normal points; never an N² matrix in memory.

    Parameters
    ----------
    points : np.ndarray [shape=(N, k)]
        2-D projection (``k = 2``) or original embeddings.
    is_anomaly : np.ndarray [shape=(N,)] bool
    metric : {"euclidean", "cosine"}
        ``"cosine"`` = 1 - cos(a, b) (the study's anomaly-score distance).
    return_index : bool
        Also return, for each anomalous point, the index (into ``points``) of its
        nearest normal point.

    Returns
    -------
    distances : np.ndarray [shape=(n_anomalous,)] float64
        In the order of the anomalous points in ``points``.
    index : np.ndarray [shape=(n_anomalous,)] int64, only with ``return_index``

    Raises
    ------
    DataError
        No points, no anomalous points, no normal points or bad shapes.
    """
    x = _check_matrix(points, "points")
    mask = _mask(is_anomaly, x.shape[0])
    if not mask.any():
        raise DataError("no anomalous clips: nearest-normal distances need at least one")
    if mask.all():
        raise DataError("no normal clips: nearest-normal distances need at least one")
    normal_idx = np.flatnonzero(~mask)
    nn = _neighbors(metric).set_params(n_neighbors=1).fit(x[normal_idx])
    dist, idx = nn.kneighbors(x[mask])
    dist = np.maximum(dist[:, 0].astype(np.float64), 0.0)
    if return_index:
        return dist, normal_idx[idx[:, 0]].astype(np.int64)
    return dist


def leave_one_out_distances(
    points: np.ndarray, is_anomaly: np.ndarray, *, metric: str = "euclidean"
) -> np.ndarray:
    """Nearest-normal distance of every point; for normal points to the nearest OTHER normal.

    This is the nearest-neighbour anomaly score evaluated on the split itself: an
    anomalous clip is scored by its distance to the normal clips, a normal clip by
    its distance to the remaining normal clips (leave-one-out, so it is not at
    distance 0 from itself). The ROC AUC of these scores (:func:`separation_auc`)
    is a projection-free measure of how well normal and anomalous clips separate.

    Parameters
    ----------
    points : np.ndarray [shape=(N, k)]
    is_anomaly : np.ndarray [shape=(N,)] bool
    metric : {"euclidean", "cosine"}

    Returns
    -------
    np.ndarray [shape=(N,)] float64

    Raises
    ------
    DataError
        Fewer than two normal points, no anomalous point, or bad shapes.
    """
    x = _check_matrix(points, "points")
    mask = _mask(is_anomaly, x.shape[0])
    if (~mask).sum() < 2:
        raise DataError("need at least two normal clips for leave-one-out distances")
    out = np.empty(x.shape[0], dtype=np.float64)
    out[mask] = nearest_normal_distances(x, mask, metric=metric)
    normal_idx = np.flatnonzero(~mask)
    nn = _neighbors(metric).set_params(n_neighbors=2).fit(x[normal_idx])
    dist, idx = nn.kneighbors(x[normal_idx])
    # Column 0 is normally the point itself; with exact duplicates the order of the two
    # zero-distance neighbours is arbitrary, and either one is the right answer (0).
    self_first = idx[:, 0] == np.arange(len(normal_idx))
    out[normal_idx] = np.where(self_first, dist[:, 1], dist[:, 0])
    return np.maximum(out, 0.0)


def separation_auc(
    points: np.ndarray, is_anomaly: np.ndarray, *, metric: str = "euclidean"
) -> float:
    """ROC AUC of the leave-one-out nearest-normal distance (anomalous = positive class).

    0.5: anomalous clips lie as close to the normal clips as normal clips lie to
    each other; 1.0: every anomalous clip is further from the normal data than any
    normal clip is from its nearest normal neighbour. Computed in the original
    embedding space it does not depend on the projection, so it tells whether the
    2-D picture is faithful.
    """
    # scikit-learn on first use: its import costs ~3/4 of torch's (measured); most runs skip it
    from sklearn.metrics import roc_auc_score

    mask = _mask(is_anomaly, np.asarray(points).shape[0])
    d = leave_one_out_distances(points, mask, metric=metric)
    return float(roc_auc_score(mask, d))


# --------------------------------------------------------------------------------------
# Metadata and report
# --------------------------------------------------------------------------------------
def records_meta(records: Sequence[Any]) -> dict[str, np.ndarray]:
    """Metadata columns (:data:`META_COLUMNS`) from clip records.

    Works with :class:`asdxai.data.records.ClipRecord` or anything with ``path``,
    ``machine``, ``section_key`` (or ``section``), ``domain`` and ``label`` attributes.
    ``section`` holds the section key (``"fan_section_00"``) because section
    numbers repeat across machine types. Unknown values become ``""``.
    """

    def col(getter: Callable[[Any], Any]) -> np.ndarray:
        return np.array(["" if (v := getter(r)) is None else str(v) for r in records], dtype=object)

    return {
        "path": col(lambda r: r.path),
        "machine": col(lambda r: r.machine),
        "section": col(lambda r: getattr(r, "section_key", None) or r.section),
        "domain": col(lambda r: r.domain),
        "label": col(lambda r: r.label),
    }


def _check_meta(meta: Mapping[str, Sequence[Any]], n: int | None = None) -> dict[str, np.ndarray]:
    if "label" not in meta:
        raise DataError("clip metadata has no 'label' column (normal / anomaly)")
    out = {}
    for key, values in meta.items():
        arr = np.array(["" if v is None else str(v) for v in values], dtype=object)
        if n is None:
            n = len(arr)
        if len(arr) != n:
            raise DataError(f"metadata column {key!r} has {len(arr)} entries, expected {n}")
        out[key] = arr
    if n == 0:
        raise DataError("no clips: the split is empty")
    return out


def anomaly_mask(labels: Sequence[Any]) -> np.ndarray:
    """``labels`` ("normal" / "anomaly") -> bool array [shape=(N,)]; others raise DataError."""
    labels = np.array(["" if v is None else str(v) for v in labels], dtype=object)
    if labels.size == 0:
        raise DataError("no clips: the split is empty")
    bad = ~np.isin(labels, ("normal", "anomaly"))
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} of {labels.size} clips have no normal/anomaly label "
            f"(e.g. {sorted(set(labels[bad]))[:3]}); use a split with ground truth"
        )
    mask = labels == "anomaly"
    if not mask.any():
        raise DataError("the split has no anomalous clips; nearest-normal distances need some")
    if mask.all():
        raise DataError("the split has no normal clips; nearest-normal distances need some")
    return mask


def separation_report(
    meta: Mapping[str, Sequence[Any]],
    points2d: np.ndarray,
    embeddings: np.ndarray,
    *,
    group_by: Sequence[str] = GROUP_COLUMNS,
) -> list[dict[str, Any]]:
    """Nearest-normal distance table, overall and per machine type / section / domain.

    For every anomalous clip the distance to the closest normal clip of the WHOLE
    split (as in the study) is computed once -- Euclidean in the 2-D projection and
    cosine in the embedding space -- and averaged over the anomalous clips of each
    group. The AUC columns are :func:`separation_auc` restricted to the group's
    clips (leave-one-out distances also over the whole split); NaN when the group
    lacks normal or anomalous clips.

    Parameters
    ----------
    meta : mapping of column -> sequence [shape=(N,)]
        Needs ``label`` ("normal" / "anomaly"); the ``group_by`` columns that are
        present are reported (empty strings = unknown, e.g. domain of DCASE2022 eval).
    points2d : np.ndarray [shape=(N, 2)]
    embeddings : np.ndarray [shape=(N, D)]

    Returns
    -------
    list of dict
        One row per group with keys ``group_by`` ("all" / column), ``group``,
        ``n_normal``, ``n_anomaly``, ``mean_dist_2d``, ``std_dist_2d``,
        ``mean_dist_embedding`` (cosine), ``auc_2d``, ``auc_embedding``.
    """
    # scikit-learn on first use: its import costs ~3/4 of torch's (measured); most runs skip it
    from sklearn.metrics import roc_auc_score

    p = _check_matrix(points2d, "points2d")
    e = _check_matrix(embeddings, "embeddings")
    n = p.shape[0]
    if e.shape[0] != n:
        raise DataError(f"points2d has {n} rows but embeddings has {e.shape[0]}")
    cols = _check_meta(meta, n)
    mask = anomaly_mask(cols["label"])
    loo_2d = leave_one_out_distances(p, mask, metric="euclidean")
    loo_emb = leave_one_out_distances(e, mask, metric="cosine")

    def row(kind: str, name: str, sel: np.ndarray) -> dict[str, Any]:
        a = sel & mask
        nn = sel & ~mask
        both = a.any() and nn.any()
        return {
            "group_by": kind,
            "group": name,
            "n_normal": int(nn.sum()),
            "n_anomaly": int(a.sum()),
            "mean_dist_2d": float(loo_2d[a].mean()) if a.any() else float("nan"),
            "std_dist_2d": float(loo_2d[a].std()) if a.any() else float("nan"),
            "mean_dist_embedding": float(loo_emb[a].mean()) if a.any() else float("nan"),
            "auc_2d": float(roc_auc_score(mask[sel], loo_2d[sel])) if both else float("nan"),
            "auc_embedding": float(roc_auc_score(mask[sel], loo_emb[sel]))
            if both
            else float("nan"),
        }

    rows = [row("all", "all", np.ones(n, dtype=bool))]
    for kind in group_by:
        if kind not in cols:
            continue
        values = cols[kind]
        groups = sorted(set(values) - {""})
        for g in groups:
            rows.append(row(kind, g, values == g))
    return rows


def format_report(rows: Sequence[Mapping[str, Any]]) -> str:
    """Plain-text table of :func:`separation_report` rows."""
    head = (
        f"{'group':<28} {'n_norm':>6} {'n_anom':>6} {'dist2d':>8} {'cos_emb':>8} "
        f"{'AUC2d':>6} {'AUCemb':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        name = r["group"] if r["group_by"] == "all" else f"{r['group_by']}={r['group']}"
        lines.append(
            f"{name[:28]:<28} {r['n_normal']:>6d} {r['n_anomaly']:>6d} {r['mean_dist_2d']:>8.3f} "
            f"{r['mean_dist_embedding']:>8.4f} {r['auc_2d']:>6.3f} {r['auc_embedding']:>6.3f}"
        )
    return "\n".join(lines)
