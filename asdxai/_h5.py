"""The one reader of every ``.h5`` file asdxai opens (results, caches, references, ground truth).

An HDF5 file can point elsewhere: a dataset may keep its bytes in another file (external
storage, e.g. ``/etc/passwd`` or a fifo), a link may lead into another file (external link)
or back to itself (a soft-link loop), and a virtual dataset maps other files' data. asdxai
writes none of these, so every one is refused; so is anything that is not a regular file
(a fifo would block the open forever), checked with :func:`os.stat` before opening. Each
dataset's type and declared shape are checked against the caller's limits before a byte
of it is read. Every problem is one error of the caller's class, in one message family::

    <file>: damaged <what> (<entry> <what is wrong>)

Every ``.h5`` asdxai writes is built in memory and written in one piece (:func:`write_h5`).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ._atomic import atomic_path
from .errors import AsdxaiError

#: Most cells one dataset may declare (the checkpoint's bound on spectrogram values per clip).
MAX_CELLS = 2**23

_NODE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a fifo"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
               (stat.S_ISBLK, "a device"))  # fmt: skip


def check_regular_file(path: str | os.PathLike, *, what: str, error: type[AsdxaiError]) -> Path:
    """``path`` if it is an existing regular file (symlinks followed), else ``error``.

    A directory, fifo, socket or device is named as such (never "not found"); nothing is
    opened, so a fifo cannot block.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: {what} not found (no such file)") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror})") from None
    for test, name in _NODE_KINDS:
        if test(mode):
            raise error(f"{path}: is {name}, not a {what} file")
    return path


def open_h5(path: str | os.PathLike, *, what: str, error: type[AsdxaiError]) -> h5py.File:
    """Open ``path`` read-only after :func:`check_regular_file`; not HDF5 is ``error``."""
    path = check_regular_file(path, what=what, error=error)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise error(f"{path}: unreadable {what} ({_first_line(exc)})") from None


def node(
    h5: h5py.Group, name: str, *, path: str | os.PathLike, what: str, error: type[AsdxaiError]
) -> h5py.Group | h5py.Dataset | None:
    """The group or dataset at ``name`` below ``h5``, or None where there is none.

    Every link on the way must be an ordinary (hard) link: a soft link (which may loop)
    or an external link (into another file) is ``error``.
    """
    obj: h5py.Group | h5py.Dataset = h5
    parts = [p for p in name.split("/") if p]
    for i, part in enumerate(parts):
        if not isinstance(obj, h5py.Group):
            return None
        link = obj.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
            where = "/".join(parts[: i + 1])
            raise error(f"{path}: damaged {what} ({where!r} is {kind}; refused)")
        obj = obj[part]
    return obj


def checked_dataset(
    obj: h5py.Group | h5py.Dataset | None,
    name: str,
    *,
    path: str | os.PathLike,
    what: str,
    error: type[AsdxaiError],
    shape: tuple[int | str, ...],
    text: bool = False,
    max_cells: int = MAX_CELLS,
) -> h5py.Dataset:
    """``obj`` (found by :func:`node`) if it is a dataset safe to read, else ``error``.

    Parameters
    ----------
    obj : the object found at ``name``, or None (missing)
    name : its path in the file, for messages
    path, what, error : the file, what kind of file it is, the error class to raise
    shape : expected shape; an int fixes that axis, a str names a free axis (at least 1)
    text : strings expected (variable or fixed length) instead of numbers / booleans
    max_cells : most cells the declared shape may hold
    """

    def fail(problem: str) -> AsdxaiError:
        return error(f"{path}: damaged {what} ({name!r} {problem})")

    if obj is None:
        raise error(f"{path}: damaged {what} (dataset {name!r} missing)")
    if not isinstance(obj, h5py.Dataset):
        raise fail("is a group, not an array")
    if obj.external:
        raise fail(f"keeps its data in another file ({obj.external[0][0]!r}); refused")
    if obj.is_virtual:
        raise fail("is a virtual dataset (data in other files); refused")
    dtype = obj.dtype
    if text:
        ok = h5py.check_string_dtype(dtype) is not None
    else:
        ok = dtype.kind in "fiub" and dtype.itemsize <= 8 and dtype.names is None
    if not ok:
        raise fail(f"is not {'a text' if text else 'a numeric'} array (type {dtype})")
    declared = tuple(obj.shape or ())
    expected = "(" + ", ".join(str(s) for s in shape) + ")"
    if len(declared) != len(shape) or any(
        (d != s) if isinstance(s, int) else (d < 1) for d, s in zip(declared, shape, strict=True)
    ):
        raise fail(f"has shape {declared}, expected {expected}")
    cells = int(np.prod(declared, dtype=object))
    if cells > max_cells:
        raise fail(f"has shape {declared}: {cells} cells, more than {max_cells}")
    return obj


def read_dataset(
    h5: h5py.Group,
    name: str,
    *,
    path: str | os.PathLike,
    what: str,
    error: type[AsdxaiError],
    shape: tuple[int | str, ...],
    text: bool = False,
    max_cells: int = MAX_CELLS,
) -> np.ndarray:
    """The dataset at ``name``, read only after :func:`node` and :func:`checked_dataset`.

    Text is returned as an object array of ``str`` (bytes decoded as UTF-8, bad bytes
    replaced).
    """
    kw = {"path": path, "what": what, "error": error}
    obj = checked_dataset(node(h5, name, **kw), name, shape=shape, text=text,
                          max_cells=max_cells, **kw)  # fmt: skip
    data = obj[()]
    if text:
        flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in np.asarray(data, dtype=object).ravel()]  # fmt: skip
        return np.array(flat, dtype=object).reshape(np.shape(data))
    return np.asarray(data)


@contextlib.contextmanager
def write_h5(path: str | os.PathLike, **options: Any) -> Iterator[h5py.File]:
    """Yield a new HDF5 file built in memory; on success write it to ``path`` atomically.

    HDF5 writes its buffers late (when objects are freed), where a full disk is an error
    h5py can only print, and may crash; building the file in memory and writing its bytes
    in one plain write makes a full disk an ordinary ``OSError`` (ENOSPC / EFBIG) naming
    the output, with nothing left under its name (see :func:`asdxai._atomic.atomic_path`).

    Parameters
    ----------
    path : the output ``.h5`` file
    **options : passed to :class:`h5py.File` (e.g. ``track_order=True``)
    """
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", **options) as h5:
        yield h5
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as fh:
                fh.write(buffer.getbuffer())
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, os.fspath(tmp)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
