"""Small file helpers shared by the result formats: file hashes, JSON of numpy values, and the
plain dicts a config dataclass is written as (checkpoints, result files)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (which checkpoint or clip produced a result)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            h.update(data)
    return h.hexdigest()


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """JSON text of ``obj`` (numpy values and paths allowed; NaN kept as NaN)."""
    return json.dumps(obj, default=json_default, allow_nan=True)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict: its fields, a tuple written as a list (JSON, HDF5)."""
    plain = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in plain.items()}


def config_from_dict(
    cls: type, data: Any, *, missing: dict[str, Any] | None = None, known_only: bool = False
) -> Any:
    """Inverse of :func:`config_to_dict`: ``cls`` built from ``data``, a list read back as a tuple.

    ``missing`` gives the value of a key ``data`` lacks (a field added since the file was
    written); ``known_only`` drops keys ``cls`` does not have (a file of a newer version)
    instead of refusing them.
    """
    d = {**(missing or {}), **data}
    if known_only:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
