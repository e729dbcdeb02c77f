"""RISE result files (``.h5``): the map, the input, the running sums and the provenance.

Layout (format version 1)::

    /importance          (T, F) float64   the importance map
    /spectrogram         (T, F) float32   the explained model input (linear magnitude)
    /log_spectrogram     (T, F) float32   optional, dB (for plots)
    /state/sum_even      (T, F) float64   Σ (s − c) t fᵀ over even blocks
    /state/sum_odd       (T, F) float64   Σ (s − c) t fᵀ over odd blocks
    attrs of /           format_version, complete, n_masks, n_masks_requested, seed,
                         estimator, center, expected_mask, agreement, n_even, n_odd,
                         score_sum, score_sq_sum, next_block, stopped_early,
                         until_agreement, precision, elapsed_s,
                         mask_config (JSON), meta (JSON: clip path, checkpoint path and
                         sha256, section, feature config, ...), provenance (JSON)
    attrs of /mask_config one attribute per RISEMaskConfig field (for h5 browsers)

Files are written through :func:`asdxai._atomic.atomic_path` (temporary name, then
rename), so a killed run leaves either the previous file or the new one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._atomic import atomic_path
from .._io import json_default
from ..errors import ResultError
from .masks import RISEMaskConfig
from .rise import RISEResult

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

_SCALARS = (
    "n_masks", "n_masks_requested", "seed", "estimator", "center", "expected_mask",
    "agreement", "n_even", "n_odd", "score_sum", "score_sq_sum", "next_block",
    "complete", "stopped_early", "precision", "elapsed_s",
)  # fmt: skip


def save_result(
    path: str | os.PathLike,
    result: RISEResult,
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
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["format_version"] = FORMAT_VERSION
            h5.create_dataset("importance", data=np.asarray(result.importance, np.float64))
            if result.spectrogram is not None:
                h5.create_dataset("spectrogram", data=np.asarray(result.spectrogram, np.float32))
            if log_spectrogram is not None:
                h5.create_dataset("log_spectrogram", data=np.asarray(log_spectrogram, np.float32))
            state = h5.create_group("state")
            state.create_dataset("sum_even", data=np.asarray(result.sum_even, np.float64))
            state.create_dataset("sum_odd", data=np.asarray(result.sum_odd, np.float64))
            for name in _SCALARS:
                h5.attrs[name] = getattr(result, name)
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


def load_result(path: str | os.PathLike) -> RISEResult:
    """Read a RISE ``.h5`` file (complete or partial).

    ``meta`` of the returned result also holds ``"provenance"`` and, if stored,
    ``"log_spectrogram"`` is available via :func:`load_log_spectrogram`.

    Raises
    ------
    ResultError
        The file is missing, not HDF5, of a newer format or lacks entries.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultError(f"{path}: RISE result file not found")
    try:
        with h5py.File(path, "r") as h5:
            version = int(h5.attrs.get("format_version", -1))
            if version < 1:
                raise ResultError(f"{path}: not an asdxai RISE result (no format_version)")
            if version > FORMAT_VERSION:
                raise ResultError(
                    f"{path}: result format {version} is newer than this asdxai ({FORMAT_VERSION})"
                )
            attrs = {name: h5.attrs[name] for name in _SCALARS}
            ua = float(h5.attrs["until_agreement"])
            meta = json.loads(h5.attrs["meta"])
            meta["provenance"] = json.loads(h5.attrs["provenance"])
            return RISEResult(
                importance=h5["importance"][()],
                spectrogram=h5["spectrogram"][()] if "spectrogram" in h5 else None,
                sum_even=h5["state/sum_even"][()],
                sum_odd=h5["state/sum_odd"][()],
                mask_config=RISEMaskConfig.from_dict(json.loads(h5.attrs["mask_config"])),
                until_agreement=None if np.isnan(ua) else ua,
                meta=meta,
                n_masks=int(attrs["n_masks"]),
                n_masks_requested=int(attrs["n_masks_requested"]),
                seed=int(attrs["seed"]),
                estimator=str(attrs["estimator"]),
                center=float(attrs["center"]),
                expected_mask=float(attrs["expected_mask"]),
                agreement=float(attrs["agreement"]),
                n_even=int(attrs["n_even"]),
                n_odd=int(attrs["n_odd"]),
                score_sum=float(attrs["score_sum"]),
                score_sq_sum=float(attrs["score_sq_sum"]),
                next_block=int(attrs["next_block"]),
                complete=bool(attrs["complete"]),
                stopped_early=bool(attrs["stopped_early"]),
                precision=str(attrs["precision"]),
                elapsed_s=float(attrs["elapsed_s"]),
            )
    except ResultError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise ResultError(f"{path}: unreadable RISE result ({exc})") from None


def load_log_spectrogram(path: str | os.PathLike) -> np.ndarray | None:
    """The stored log spectrogram [shape=(T, F)] of a result file, or None."""
    try:
        with h5py.File(path, "r") as h5:
            return h5["log_spectrogram"][()] if "log_spectrogram" in h5 else None
    except OSError as exc:
        raise ResultError(f"{path}: unreadable RISE result ({exc})") from None


def check_resumable(
    result: RISEResult,
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
