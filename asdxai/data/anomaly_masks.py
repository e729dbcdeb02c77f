"""Ground-truth anomaly masks of synthetic trees (``anomaly_masks.h5`` at the tree root).

The generator stores one bool (T, F) dataset per anomalous clip at the HDF5 path
equal to the clip's path relative to the tree root (see :mod:`asdxai.data.synth`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._h5 import MAX_CELLS, node, open_h5, read_dataset
from ..errors import DataError

MASKS_FILE = "anomaly_masks.h5"
_WHAT = "ground-truth file"
_SEARCH_DEPTH = 5  # parent folders searched for the masks file


def find_in_tree(clip: str | os.PathLike, file_name: str) -> tuple[Path, str] | None:
    """The ground-truth file ``file_name`` and key that hold ``clip``'s entry, or None.

    Searches ``clip``'s parent folders (up to five levels, the depth of a DCASE tree)
    for ``file_name``; the first one found decides. The key is ``clip``'s path
    relative to that folder. A file of that name that is not a regular HDF5 file, or
    whose entry is reached through a soft or external link, is a DataError.
    """
    path = Path(clip).resolve()
    for parent in list(path.parents)[:_SEARCH_DEPTH]:
        found = parent / file_name
        if not found.exists():
            continue
        key = path.relative_to(parent).as_posix()
        with open_h5(found, what=_WHAT, error=DataError) as h5:
            return (found, key) if node(h5, key, **_kw(found)) is not None else None
    return None


def _kw(path: Path) -> dict[str, Any]:
    return {"path": path, "what": _WHAT, "error": DataError}


def grid_shape(h5: h5py.File, path: Path) -> tuple[int | str, int | str]:
    """The (T, F) every entry of a ground-truth file must have: its ``shape`` attribute.

    Files without one (written by hand) allow any 2-D shape of at most 2^23 cells.
    """
    if "shape" not in h5.attrs:
        return ("T", "F")
    shape = np.asarray(h5.attrs["shape"])
    if (
        shape.shape != (2,)
        or shape.dtype.kind not in "iu"
        or not (0 < int(shape[0]) * int(shape[1]) <= MAX_CELLS and min(shape) > 0)
    ):
        raise DataError(f"{path}: damaged {_WHAT} (attribute 'shape' = {shape.tolist()!r} is "
                        f"not a (T, F) grid of at most {MAX_CELLS} cells)")  # fmt: skip
    return (int(shape[0]), int(shape[1]))


def read_entry(path: Path, key: str, names: tuple[str, ...]) -> list[np.ndarray]:
    """The datasets ``names`` of entry ``key`` of a ground-truth file, checked before reading.

    Each must be a numeric array of the file's grid (:func:`grid_shape`); anything else
    (a group, text, compound values, links or storage outside the file) is a DataError
    naming the file and the entry.
    """
    try:
        with open_h5(path, what=_WHAT, error=DataError) as h5:
            shape = grid_shape(h5, path)
            return [read_dataset(h5, f"{key}/{n}" if n else key, shape=shape, **_kw(path))
                    for n in names]  # fmt: skip
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: unreadable {_WHAT} ({exc})") from None


def find_anomaly_mask(clip: str | os.PathLike) -> tuple[Path, str] | None:
    """The masks file and key that hold ``clip``'s ground truth, or None.

    Searches ``clip``'s parent folders (up to five levels, the depth of a DCASE tree)
    for ``anomaly_masks.h5``; the first one found decides.
    """
    return find_in_tree(clip, MASKS_FILE)


def load_anomaly_mask(clip: str | os.PathLike) -> np.ndarray | None:
    """Ground-truth mask of ``clip`` [shape=(T, F)] bool, or None if it has none.

    Raises
    ------
    DataError
        The masks file or the entry is damaged (see :func:`read_entry`).
    """
    found = find_anomaly_mask(clip)
    if found is None:
        return None
    masks, key = found
    (mask,) = read_entry(masks, key, ("",))
    return np.asarray(mask, dtype=bool)
