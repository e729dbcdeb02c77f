"""Ground-truth anomaly masks of synthetic trees (``anomaly_masks.h5`` at the tree root).

The generator stores one bool (T, F) dataset per anomalous clip at the HDF5 path
equal to the clip's path relative to the tree root (see :mod:`asdxai.data.synth`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

log = logging.getLogger(__name__)

MASKS_FILE = "anomaly_masks.h5"
_SEARCH_DEPTH = 5  # parent folders searched for the masks file


def find_in_tree(clip: str | os.PathLike, file_name: str) -> tuple[Path, str] | None:
    """The ground-truth file ``file_name`` and key that hold ``clip``'s entry, or None.

    Searches ``clip``'s parent folders (up to five levels, the depth of a DCASE tree)
    for ``file_name``; the first one found decides. The key is ``clip``'s path
    relative to that folder.
    """
    path = Path(clip).resolve()
    for parent in list(path.parents)[:_SEARCH_DEPTH]:
        found = parent / file_name
        if not found.is_file():
            continue
        key = path.relative_to(parent).as_posix()
        try:
            with h5py.File(found, "r") as h5:
                return (found, key) if key in h5 else None
        except OSError:
            log.warning("%s: unreadable ground-truth file, ignored", found)
            return None
    return None


def find_anomaly_mask(clip: str | os.PathLike) -> tuple[Path, str] | None:
    """The masks file and key that hold ``clip``'s ground truth, or None.

    Searches ``clip``'s parent folders (up to five levels, the depth of a DCASE tree)
    for ``anomaly_masks.h5``; the first one found decides.
    """
    return find_in_tree(clip, MASKS_FILE)


def load_anomaly_mask(clip: str | os.PathLike) -> np.ndarray | None:
    """Ground-truth mask of ``clip`` [shape=(T, F)] bool, or None if it has none."""
    found = find_anomaly_mask(clip)
    if found is None:
        return None
    masks, key = found
    with h5py.File(masks, "r") as h5:
        return np.asarray(h5[key][()], dtype=bool)
