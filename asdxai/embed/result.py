"""t-SNE results: project + measure (:func:`run_tsne`), ``.h5`` / CSV files, Table III."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._atomic import atomic_write_text, escape_undecodable
from .._h5 import node, open_h5, read_dataset, write_h5
from .._io import dumps
from ..errors import DataError, ResultError
from .distances import (
    META_COLUMNS,
    _check_meta,
    anomaly_mask,
    nearest_normal_distances,
    separation_report,
)
from .projection import TSNEConfig, _check_matrix, project, transform

RESULT_FORMAT = "asdxai.tsne"
RESULT_FORMAT_VERSION = 1


@dataclass
class TSNEResult:
    """Everything one ``asdxai tsne`` run computes for one checkpoint.

    Attributes
    ----------
    embeddings : np.ndarray [shape=(N, D)] float32
    projection : np.ndarray [shape=(N, 2)] float64
    meta : dict of column -> np.ndarray [shape=(N,)] of str (:data:`META_COLUMNS`)
    distances_2d : np.ndarray [shape=(n_anomalous,)] Euclidean, in the projection
    distances_embedding : np.ndarray [shape=(n_anomalous,)] cosine, in the embedding space
    nearest_normal_2d : np.ndarray [shape=(n_anomalous,)] int64, index of the nearest normal clip
    report : list of dict, :func:`separation_report` rows
    config : TSNEConfig
    name : str, the run's label (e.g. the checkpoint's label)
    checkpoint : dict, e.g. ``{"path": ..., "sha256": ...}``
    provenance : dict, library versions and device
    reference : dict, set when the projection came from ``transform`` (the reference file)
    """

    embeddings: np.ndarray
    projection: np.ndarray
    meta: dict[str, np.ndarray]
    distances_2d: np.ndarray
    distances_embedding: np.ndarray
    nearest_normal_2d: np.ndarray
    report: list[dict[str, Any]]
    config: TSNEConfig
    name: str = ""
    checkpoint: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def is_anomaly(self) -> np.ndarray:
        """Bool array [shape=(N,)]."""
        return self.meta["label"] == "anomaly"

    @property
    def anomaly_index(self) -> np.ndarray:
        """Indices of the anomalous clips, the order of the distance arrays."""
        return np.flatnonzero(self.is_anomaly)

    @property
    def mean_distance(self) -> float:
        """Mean 2-D nearest-normal distance over all anomalous clips (a Table III entry)."""
        return float(self.distances_2d.mean())


def run_tsne(
    embeddings: np.ndarray,
    meta: Mapping[str, Sequence[Any]],
    *,
    cfg: TSNEConfig | None = None,
    reference: Any = None,
    name: str = "",
    progress: bool = False,
) -> TSNEResult:
    """Project, measure and package: the library core of ``asdxai tsne``.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(N, D)]
    meta : mapping column -> sequence [shape=(N,)], must hold ``label``
    cfg : TSNEConfig, optional
    reference : openTSNE.TSNEEmbedding, optional
        Place the clips into this existing projection (:func:`transform`) instead of
        computing a new one.
    name : str
        Label stored in the result.
    progress : show a bar over the projection's iterations
    """
    cfg = cfg or TSNEConfig()
    e = _check_matrix(embeddings, "embeddings")
    cols = _check_meta(meta, e.shape[0])
    mask = anomaly_mask(cols["label"])  # fail before the (slow) projection
    if reference is None:
        points = np.asarray(project(e, cfg=cfg, progress=progress), dtype=np.float64)
    else:
        points = transform(reference, e)
    d2, idx = nearest_normal_distances(points, mask, metric="euclidean", return_index=True)
    de = nearest_normal_distances(e, mask, metric="cosine")
    report = separation_report(cols, points, e)
    for c in META_COLUMNS:
        cols.setdefault(c, np.full(e.shape[0], "", dtype=object))
    return TSNEResult(
        embeddings=np.asarray(e, dtype=np.float32),
        projection=points,
        meta=cols,
        distances_2d=d2,
        distances_embedding=de,
        nearest_normal_2d=idx,
        report=report,
        config=cfg,
        name=name,
    )


def save_result(result: TSNEResult, path: str | os.PathLike) -> Path:
    """Write a :class:`TSNEResult` to an ``.h5`` file atomically (temp file + rename)."""
    path = Path(path)
    str_dt = h5py.string_dtype()
    with write_h5(path) as f:
        f.attrs["format"] = RESULT_FORMAT
        f.attrs["format_version"] = RESULT_FORMAT_VERSION
        f.attrs["name"] = result.name
        f.attrs["config"] = dumps(result.config.to_dict())
        f.attrs["seed"] = int(result.config.seed)
        f.attrs["checkpoint"] = dumps(result.checkpoint)
        f.attrs["provenance"] = dumps(result.provenance)
        f.attrs["reference"] = dumps(result.reference)
        f.attrs["report"] = dumps(result.report)
        f.create_dataset("embeddings", data=result.embeddings, compression="gzip")
        f.create_dataset("projection", data=result.projection)
        g = f.create_group("meta")
        for key, values in result.meta.items():
            texts = [escape_undecodable(str(v)) for v in values]  # UTF-8 only, \xNN
            g.create_dataset(key, data=np.array(texts, dtype=object), dtype=str_dt)
        d = f.create_group("distances")
        d.create_dataset("anomaly_index", data=result.anomaly_index.astype(np.int64))
        d.create_dataset("euclidean_2d", data=result.distances_2d)
        d.create_dataset("cosine_embedding", data=result.distances_embedding)
        d.create_dataset("nearest_normal_2d", data=result.nearest_normal_2d)
    return path


def load_result(path: str | os.PathLike) -> TSNEResult:
    """Read a file written by :func:`save_result`; raises ResultError if it is not one.

    Every entry is checked before it is read (no links or storage outside the file, of its
    type, and of the shape the projection (N, 2) implies: embeddings (N, D) of at most
    2^23 cells, one meta value per point, at most N distances).
    """
    path = Path(path)
    what = "t-SNE result"
    try:
        with open_h5(path, what=what, error=ResultError) as f:
            if f.attrs.get("format") != RESULT_FORMAT:
                raise ResultError(
                    f"{path}: not an asdxai t-SNE result (format {f.attrs.get('format')!r})"
                )
            version = int(f.attrs["format_version"])
            if version > RESULT_FORMAT_VERSION:
                raise ResultError(
                    f"{path}: result format {version} is newer than this asdxai "
                    f"({RESULT_FORMAT_VERSION}); upgrade asdxai"
                )

            def read(name: str, shape: tuple[int | str, ...], text: bool = False) -> np.ndarray:
                return read_dataset(f, name, path=path, what=what, error=ResultError,
                                    shape=shape, text=text)  # fmt: skip

            projection = read("projection", ("N", 2))
            n = projection.shape[0]
            meta_group = node(f, "meta", path=path, what=what, error=ResultError)
            if not isinstance(meta_group, h5py.Group):
                raise ResultError(f"{path}: damaged t-SNE result (group 'meta' missing)")
            n_anomalous = read("distances/euclidean_2d", ("A",)).shape[0]
            if n_anomalous > n:
                raise ResultError(
                    f"{path}: damaged t-SNE result ({n_anomalous} distances for {n} points)"
                )
            return TSNEResult(
                embeddings=read("embeddings", (n, "D")),
                projection=projection,
                meta={k: read(f"meta/{k}", (n,), text=True) for k in meta_group},
                distances_2d=read("distances/euclidean_2d", (n_anomalous,)),
                distances_embedding=read("distances/cosine_embedding", (n_anomalous,)),
                nearest_normal_2d=read("distances/nearest_normal_2d", (n_anomalous,)),
                report=json.loads(f.attrs["report"]),
                config=TSNEConfig.from_dict(json.loads(f.attrs["config"])),
                name=str(f.attrs.get("name", "")),
                checkpoint=json.loads(f.attrs.get("checkpoint", "{}")),
                provenance=json.loads(f.attrs.get("provenance", "{}")),
                reference=json.loads(f.attrs.get("reference", "{}")),
            )
    except ResultError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ResultError(f"{path}: unreadable or incomplete t-SNE result ({exc})") from None


def distances_csv_text(result: TSNEResult) -> str:
    """CSV (one row per anomalous clip) of the nearest-normal distances."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "path",
            "machine",
            "section",
            "domain",
            "x",
            "y",
            "dist_2d",
            "dist_embedding_cosine",
            "nearest_normal_path",
        ]
    )
    m = result.meta
    for k, i in enumerate(result.anomaly_index):
        j = result.nearest_normal_2d[k]
        w.writerow(
            [
                m["path"][i],
                m["machine"][i],
                m["section"][i],
                m["domain"][i],
                f"{result.projection[i, 0]:.6g}",
                f"{result.projection[i, 1]:.6g}",
                f"{result.distances_2d[k]:.6g}",
                f"{result.distances_embedding[k]:.6g}",
                m["path"][j],
            ]
        )
    return buf.getvalue()


def write_distances_csv(result: TSNEResult, path: str | os.PathLike) -> Path:
    """Write :func:`distances_csv_text` atomically."""
    return atomic_write_text(path, distances_csv_text(result))


def write_report_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write :func:`separation_report` rows (or any list of flat dicts) as CSV, atomically."""
    if not rows:
        raise ResultError("nothing to write: no rows")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


# --------------------------------------------------------------------------------------
# Table III: mean ± std over trials
# --------------------------------------------------------------------------------------
def trial_table(values: Mapping[str, Sequence[float]], *, ddof: int = 0) -> list[dict[str, Any]]:
    """Mean ± std over trials per row (Table III of the study).

    Parameters
    ----------
    values : mapping row label -> per-trial values (e.g. :attr:`TSNEResult.mean_distance`)
    ddof : int
        0 = population std (numpy's default), 1 = sample std.

    Returns
    -------
    list of dict with ``label``, ``n_trials``, ``mean``, ``std``, ``text`` ("0.485 ± 0.007").
    """
    rows = []
    for label, vals in values.items():
        v = np.asarray(vals, dtype=np.float64)
        if v.size == 0:
            raise DataError(f"row {label!r} has no trials")
        std = float(v.std(ddof=ddof)) if v.size > ddof else float("nan")
        rows.append(
            {
                "label": label,
                "n_trials": int(v.size),
                "mean": float(v.mean()),
                "std": std,
                "text": f"{v.mean():.3f} ± {std:.3f}",
            }
        )
    return rows
