"""RISE result files (``.h5``): the map, the input, the running sums and the provenance.

Layout (format version 2)::

    /importance          (T, F) float64   the importance map
    /spectrogram         (T, F) float32   the explained model input (linear magnitude)
    /log_spectrogram     (T, F) float32   optional, dB (for plots)
    /state/sum_even      (T, F) float64   Σ (s − c) t fᵀ over even blocks
    /state/sum_odd       (T, F) float64   Σ (s − c) t fᵀ over odd blocks
    /state/cv_gram (2, K, K), /state/cv_zs (2, K), /state/cv_beta (2, K),
    /state/cv_fit_n (2,), /state/cv_corr (2, T, F)
                         float64, estimator "cv" only (its surrogate's state per block
                         parity, :class:`asdxai.explain.surrogate.Surrogate`; format 1
                         held /state/cv_zm instead: such a map loads but cannot resume)
    attrs of /           format_version, complete, n_masks, n_masks_requested, seed,
                         estimator, center, expected_mask, agreement, n_even, n_odd,
                         score_sum, score_sq_sum, next_block, stopped_early,
                         until_agreement, precision, elapsed_s, estimated_correlation
                         (of the map with its converged map, from the agreement),
                         mask_config (JSON), meta (JSON: clip path, checkpoint path and
                         sha256, section, feature config, ...), provenance (JSON)
    attrs of /mask_config one attribute per RISEMaskConfig field (for h5 browsers)

Files are written through :func:`asdxai._h5.write_h5` (built in memory, written to a
temporary name, then renamed), so a killed run leaves either the previous file or the new
one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._h5 import MAX_CELLS as H5_MAX_CELLS
from .._h5 import node, open_h5, read_dataset, write_h5
from .._io import json_default
from ..errors import NonFiniteError, ResultError
from .masks import RISEMaskConfig
from .rise import RISEResult
from .surrogate import Surrogate

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: the cv estimator's state of asdxai.explain.surrogate (1: cell-bit sums)

_SCALARS = (
    "n_masks", "n_masks_requested", "seed", "estimator", "center", "expected_mask",
    "agreement", "n_even", "n_odd", "score_sum", "score_sq_sum", "next_block",
    "complete", "stopped_early", "precision", "elapsed_s",
)  # fmt: skip


def save_result(
    path: str | os.PathLike,
    result: RISEResult,
    *,
    log_spectrogram: np.ndarray | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write ``result`` to ``path`` atomically and return the path.

    Parameters
    ----------
    path : output ``.h5`` file (parent directories are created)
    result : RISEResult, complete or partial; ``result.meta`` is stored as JSON
    log_spectrogram : np.ndarray [shape=(T, F)], optional, dB values for plots
    provenance : dict, optional, library versions / device (``asdxai._runtime.provenance``)

    Raises
    ------
    NonFiniteError
        The running sums, or the map of a complete result, hold NaN or inf: such a file
        is never written.
    """
    path = Path(path)
    finite = np.isfinite(result.sum_even).all() and np.isfinite(result.sum_odd).all()
    if not finite or (result.complete and not np.isfinite(result.importance).all()):
        raise NonFiniteError(
            f"{path}: the RISE {'map holds' if finite else 'running sums hold'} NaN or inf (scores "
            f"so large that float64 overflows, or a keep probability so small that the "
            f"expected mask {result.expected_mask:g} underflows); nothing saved"
        )
    with write_h5(path) as h5:
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.create_dataset("importance", data=np.asarray(result.importance, np.float64))
        if result.spectrogram is not None:
            h5.create_dataset("spectrogram", data=np.asarray(result.spectrogram, np.float32))
        if log_spectrogram is not None:
            h5.create_dataset("log_spectrogram", data=np.asarray(log_spectrogram, np.float32))
        state = h5.create_group("state")
        state.create_dataset("sum_even", data=np.asarray(result.sum_even, np.float64))
        state.create_dataset("sum_odd", data=np.asarray(result.sum_odd, np.float64))
        for key, value in (result.cv_state or {}).items():
            state.create_dataset(f"cv_{key}", data=np.asarray(value, np.float64))
        for name in _SCALARS:
            h5.attrs[name] = getattr(result, name)
        h5.attrs["estimated_correlation"] = result.estimated_correlation  # derived
        h5.attrs["until_agreement"] = (
            np.nan if result.until_agreement is None else result.until_agreement
        )
        h5.attrs["mask_config"] = json.dumps(result.mask_config.to_dict())
        group = h5.create_group("mask_config")
        for key, value in result.mask_config.to_dict().items():
            group.attrs[key] = value
        meta = {k: v for k, v in result.meta.items() if k != "provenance"}
        h5.attrs["meta"] = json.dumps(meta, default=json_default)
        h5.attrs["provenance"] = json.dumps(provenance or {}, default=json_default)
    log.debug("wrote %s (%d masks, complete=%s)", path, result.n_masks, result.complete)
    return path


#: Largest map a result may hold (the checkpoint's bound on spectrogram values per clip).
MAX_CELLS = H5_MAX_CELLS
_WHAT = "RISE result"
_INTS = ("n_masks", "n_masks_requested", "seed", "n_even", "n_odd", "next_block")
_FLOATS = ("center", "expected_mask", "agreement", "score_sum", "score_sq_sum", "elapsed_s")
_FINITE = ("center", "expected_mask", "score_sum", "score_sq_sum")  # what a resume continues
_STRS = ("estimator", "precision")
_BOOLS = ("complete", "stopped_early")
_META_STRS = ("clip", "section", "checkpoint", "checkpoint_sha256")


def _attr(h5: h5py.File, name: str, path: Path) -> Any:
    if name not in h5.attrs:
        raise ResultError(f"{path}: not a complete asdxai RISE result (attribute {name!r} missing)")
    value = h5.attrs[name]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value


def _scalar(h5: h5py.File, name: str, kind: str, path: Path) -> Any:
    """Attribute ``name`` as a Python int / float / str / bool, or ResultError naming it."""
    value = _attr(h5, name, path)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    ok = {
        "int": isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)),
        "float": isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_)),
        "str": isinstance(value, str),
        "bool": isinstance(value, (bool, np.bool_, int, np.integer)) and int(value) in (0, 1),
    }[kind]
    if not ok:
        raise ResultError(
            f"{path}: damaged RISE result (attribute {name!r} should be a {kind}, got "
            f"{type(value).__name__} {str(value)[:40]!r})"
        )
    if kind == "int":
        if int(value) < 0:
            raise ResultError(f"{path}: damaged RISE result ({name} = {int(value)} < 0)")
        return int(value)
    return {"float": float, "str": str, "bool": bool}[kind](value)


def _json_attr(h5: h5py.File, name: str, path: Path) -> dict[str, Any]:
    value = _attr(h5, name, path)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        data = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: damaged RISE result (attribute {name!r} is not a JSON object)")
    return data


def _array(h5: h5py.File, name: str, path: Path) -> np.ndarray:
    """A 2-D numeric dataset, checked (links, storage, type, size) before it is read."""
    return read_dataset(h5, name, path=path, what=_WHAT, error=ResultError, shape=("T", "F"),
                        max_cells=MAX_CELLS)  # fmt: skip


def load_result(path: str | os.PathLike) -> RISEResult:
    """Read a RISE ``.h5`` file (complete or partial).

    ``meta`` of the returned result also holds ``"provenance"`` and, if stored,
    ``"log_spectrogram"`` is available via :func:`load_log_spectrogram`. Every entry is
    checked (present, of its type, arrays 2-D, of one shape and at most ``MAX_CELLS``
    cells, read only after the check; a complete map finite), so a damaged file is one
    :class:`ResultError` naming it.

    Raises
    ------
    ResultError
        The file is missing, not HDF5, of a newer format, lacks entries or holds entries
        of the wrong type or shape.
    """
    path = Path(path)
    try:
        with open_h5(path, what=_WHAT, error=ResultError) as h5:
            if h5.attrs.get("format") is not None and "n_masks" not in h5.attrs:
                raise ResultError(
                    f"{path}: not an asdxai RISE result (a {h5.attrs.get('format')!r} file; "
                    "`asdxai rise` writes RISE results)"
                )
            raw = h5.attrs.get("format_version", -1)
            try:
                version = int(raw)
            except (TypeError, ValueError):
                version = -1
            if version < 1:
                raise ResultError(f"{path}: not an asdxai RISE result (no format_version)")
            if version > FORMAT_VERSION:
                raise ResultError(
                    f"{path}: result format {version} is newer than this asdxai ({FORMAT_VERSION})"
                )
            scalars: dict[str, Any] = {}
            for names, kind in ((_INTS, "int"), (_FLOATS, "float"), (_STRS, "str"),
                                (_BOOLS, "bool")):  # fmt: skip
                for name in names:
                    scalars[name] = _scalar(h5, name, kind, path)
            ua = _scalar(h5, "until_agreement", "float", path)
            meta = _json_attr(h5, "meta", path)
            for key in _META_STRS:
                if key in meta and meta[key] is not None and not isinstance(meta[key], str):
                    raise ResultError(f"{path}: damaged RISE result (meta {key!r} is not a string)")
            meta["provenance"] = _json_attr(h5, "provenance", path)
            try:
                mask_config = RISEMaskConfig.from_dict(_json_attr(h5, "mask_config", path))
            except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
                raise ResultError(f"{path}: damaged RISE result (mask settings: {exc})") from None
            importance = _array(h5, "importance", path)
            arrays = {
                "state/sum_even": _array(h5, "state/sum_even", path),
                "state/sum_odd": _array(h5, "state/sum_odd", path),
            }
            cv_state = _cv_state(h5, importance.shape, mask_config, path)
            spectrogram = (
                _array(h5, "spectrogram", path)
                if _node(h5, "spectrogram", path) is not None
                else None
            )
            if spectrogram is not None:
                arrays["spectrogram"] = spectrogram
            for name, arr in arrays.items():
                if arr.shape != importance.shape:
                    raise ResultError(
                        f"{path}: damaged RISE result ({name!r} has shape {arr.shape}, the map "
                        f"{importance.shape})"
                    )
            if scalars["complete"] and not np.isfinite(importance).all():
                raise ResultError(f"{path}: damaged RISE result (NaN or inf in the map)")
            for name in _FINITE:
                if not np.isfinite(scalars[name]):
                    raise ResultError(f"{path}: damaged RISE result ({name} = {scalars[name]})")
            for name in ("state/sum_even", "state/sum_odd"):
                if not np.isfinite(arrays[name]).all():
                    raise ResultError(f"{path}: damaged RISE result (NaN or inf in {name!r})")
            return RISEResult(
                importance=importance.astype(np.float64, copy=False),
                spectrogram=spectrogram,
                sum_even=arrays["state/sum_even"].astype(np.float64, copy=False),
                sum_odd=arrays["state/sum_odd"].astype(np.float64, copy=False),
                mask_config=mask_config,
                until_agreement=None if np.isnan(ua) else ua,
                meta=meta,
                cv_state=cv_state,
                **scalars,
            )
    except ResultError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ResultError(f"{path}: unreadable RISE result ({_first_line(exc)})") from None


def _node(h5: h5py.File, name: str, path: Path) -> Any:
    return node(h5, name, path=path, what=_WHAT, error=ResultError)


def _cv_state(
    h5: h5py.File, shape: tuple[int, ...], mask_config: RISEMaskConfig, path: Path
) -> dict[str, np.ndarray] | None:
    """The control-variate state of a "cv" result (None when absent), read through the
    checked reader with its shapes fixed by the map's and the surrogate's. A format-1 file
    holds the first surrogate's sums (``cv_zm``): its map loads, but it cannot be resumed
    (None, with a warning)."""
    if _node(h5, "state/cv_zs", path) is None:
        return None
    if _node(h5, "state/cv_beta", path) is None:
        log.warning("%s: control-variate state of result format 1 (an earlier surrogate); "
                    "the map loads, but it cannot be resumed", path)  # fmt: skip
        return None
    kw = {"path": path, "what": _WHAT, "error": ResultError, "max_cells": MAX_CELLS}
    k = Surrogate.for_masks(mask_config, shape).n_features
    out = {"zs": read_dataset(h5, "state/cv_zs", shape=(2, k), **kw)}
    out["gram"] = read_dataset(h5, "state/cv_gram", shape=(2, k, k), **kw)
    out["beta"] = read_dataset(h5, "state/cv_beta", shape=(2, k), **kw)
    out["fit_n"] = read_dataset(h5, "state/cv_fit_n", shape=(2,), **kw)
    out["corr"] = read_dataset(h5, "state/cv_corr", shape=(2, *shape), **kw)
    for key, value in out.items():
        if not np.isfinite(value).all():
            raise ResultError(f"{path}: damaged RISE result (NaN or inf in 'state/cv_{key}')")
    return {key: v.astype(np.float64, copy=False) for key, v in out.items()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_log_spectrogram(path: str | os.PathLike) -> np.ndarray | None:
    """The stored log spectrogram [shape=(T, F)] of a result file, or None."""
    try:
        with open_h5(path, what=_WHAT, error=ResultError) as h5:
            if _node(h5, "log_spectrogram", Path(path)) is None:
                return None
            return _array(h5, "log_spectrogram", Path(path))
    except ResultError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ResultError(f"{path}: unreadable RISE result ({_first_line(exc)})") from None


def check_resumable(
    result: RISEResult,
    *,
    mask_config: RISEMaskConfig,
    seed: int,
    estimator: str,
    meta: dict[str, Any] | None = None,
    path: str | os.PathLike = "",
) -> None:
    """Raise :class:`ResultError` unless ``result`` can be continued with these settings.

    ``meta`` entries (e.g. clip path, checkpoint sha256, section) must match those
    stored in the result where both are present.
    """
    where = f"{path}: " if path else ""
    problems = []
    if result.mask_config != mask_config:
        problems.append(f"mask settings differ ({result.mask_config} vs {mask_config})")
    if result.seed != seed:
        problems.append(f"seed {result.seed} vs {seed}")
    if result.estimator != estimator:
        problems.append(f"estimator {result.estimator!r} vs {estimator!r}")
    for key, value in (meta or {}).items():
        if key in result.meta and result.meta[key] != value:
            problems.append(f"{key} {result.meta[key]!r} vs {value!r}")
    if problems:
        raise ResultError(f"{where}cannot resume: " + "; ".join(problems))
