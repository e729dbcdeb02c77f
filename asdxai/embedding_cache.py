"""An ``.h5`` cache of embeddings keyed by the checkpoint and the clip files."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ._h5 import node, open_h5, read_dataset, write_h5
from ._io import dumps, sha256_file
from .errors import DataError, ResultError

log = logging.getLogger(__name__)

CACHE_FORMAT = "asdxai.embedding-cache"
_WHAT = "embedding cache"


class EmbeddingCache:
    """Embeddings of a clip list under one checkpoint, cached in an ``.h5`` file.

    The key is the sha256 of the checkpoint file plus the list of clip files with
    their sizes and modification times, so a changed checkpoint, a changed clip or
    a different clip list is a cache miss. Several entries (checkpoints / splits)
    share one file; the oldest are dropped beyond ``max_entries``. Every update is
    written to a temporary copy and renamed into place, so a killed run never
    leaves a corrupt cache (concurrent writers may lose an entry, never the file).

    Parameters
    ----------
    path : path of the ``.h5`` cache file (created on the first :meth:`put`)
    max_entries : entries kept in the file
    """

    def __init__(self, path: str | os.PathLike, *, max_entries: int = 16) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(checkpoint: str | os.PathLike, paths: Sequence[str | os.PathLike]) -> str:
        """sha256 over the checkpoint's sha256 and (path, size, mtime_ns) of every clip."""
        h = hashlib.sha256()
        h.update(sha256_file(checkpoint).encode())
        for p in paths:
            try:
                st = os.stat(p)
            except OSError as exc:
                raise DataError(f"{p}: cannot read clip ({exc.strerror})") from None
            h.update(b"\0" + os.fsencode(p) + f"\0{st.st_size}\0{st.st_mtime_ns}".encode())
        return h.hexdigest()

    def _entry(self, f: h5py.File, key: str, rows: int | None = None) -> np.ndarray | None:
        """The embeddings of entry ``key`` (None if absent), checked before they are read.

        Raises ResultError for a damaged entry (links or storage outside the file, not a
        numeric (N, D) array of at most 2^23 cells, another number of rows than ``rows``).
        """
        kw: dict[str, Any] = {"path": self.path, "what": _WHAT, "error": ResultError}
        if node(f, key, **kw) is None:
            return None
        return read_dataset(f, f"{key}/embeddings", shape=("N" if rows is None else rows, "D"),
                            **kw)  # fmt: skip

    def get(self, key: str, *, rows: int | None = None) -> np.ndarray | None:
        """The cached embeddings [shape=(N, D)] for ``key``, or None.

        ``rows`` is the number of clips the entry must hold (checked before reading). A
        damaged cache file or entry is a warning and a miss, never read.
        """
        if not self.path.is_file():
            return None
        try:
            with open_h5(self.path, what=_WHAT, error=ResultError) as f:
                return self._entry(f, key, rows)
        except ResultError as exc:
            log.warning("%s; ignoring the cache", exc)
        except (OSError, RuntimeError, KeyError) as exc:
            log.warning("%s: unreadable embedding cache, ignoring it (%s)", self.path, exc)
        return None

    def _old_entries(self, skip: str) -> list[tuple[float, str, np.ndarray, str]]:
        """(created, key, embeddings, meta) of the intact entries of the current file."""
        if not self.path.is_file():
            return []
        entries = []
        try:
            with open_h5(self.path, what=_WHAT, error=ResultError) as old:
                for k in old.keys():
                    if k == skip:
                        continue
                    try:
                        emb = self._entry(old, k)
                        created = float(old[k].attrs.get("created", 0.0))
                        meta = old[k].attrs.get("meta", "{}")
                    except (ResultError, TypeError, ValueError, OSError, RuntimeError) as exc:
                        log.warning("%s: dropping damaged cache entry %r (%s)", self.path, k, exc)
                        continue
                    if emb is not None and isinstance(meta, str):
                        entries.append((created, k, emb, meta))
        except (ResultError, OSError, RuntimeError) as exc:
            log.warning("%s: unreadable embedding cache, starting a new one (%s)", self.path, exc)
            return []
        return sorted(entries, key=lambda e: e[0])

    def put(
        self, key: str, embeddings: np.ndarray, *, meta: Mapping[str, Any] | None = None
    ) -> None:
        """Store ``embeddings`` [shape=(N, D)] under ``key`` (atomic rewrite of the file).

        The newest ``max_entries - 1`` intact other entries are kept; damaged ones are
        dropped with a warning (never copied, so nothing outside the file is read).
        """
        # Copy the newest other entries into a fresh file (h5py never shrinks a file
        # after deletions, so rewriting keeps the cache at its live size).
        old = self._old_entries(skip=key)
        keep = old[-(self.max_entries - 1) :] if self.max_entries > 1 else []
        with write_h5(self.path) as f:
            f.attrs["format"] = CACHE_FORMAT
            for created, k, emb, old_meta in keep:
                self._write(f, k, emb, created, old_meta)
            self._write(f, key, np.asarray(embeddings, dtype=np.float32), time.time(),
                        dumps(dict(meta or {})))  # fmt: skip
        log.debug("cached %s embeddings in %s", np.shape(embeddings), self.path)

    @staticmethod
    def _write(f: h5py.File, key: str, emb: np.ndarray, created: float, meta: str) -> None:
        g = f.create_group(key)
        g.create_dataset("embeddings", data=emb)
        g.attrs["created"] = created
        g.attrs["meta"] = meta

    def get_or_compute(
        self,
        checkpoint: str | os.PathLike,
        paths: Sequence[str | os.PathLike],
        compute: Callable[[], np.ndarray],
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> np.ndarray:
        """Cached embeddings of ``paths`` under ``checkpoint``, else ``compute()`` and store.

        Parameters
        ----------
        checkpoint : path of the checkpoint file (hashed)
        paths : clip files, in the order of the rows of the embeddings
        compute : called with no arguments on a miss; returns [shape=(len(paths), D)]
        meta : small JSON-serialisable dict stored beside the entry
        """
        key = self.key(checkpoint, paths)
        hit = self.get(key, rows=len(paths))
        if hit is not None:
            self.hits += 1
            log.info("embedding cache hit (%s, %d clips)", self.path.name, len(paths))
            return hit
        self.misses += 1
        emb = np.asarray(compute())
        if emb.ndim != 2 or emb.shape[0] != len(paths):
            raise DataError(f"embedding function returned shape {emb.shape} for {len(paths)} clips")
        about = {"checkpoint": os.fspath(checkpoint), "n_clips": len(paths), **(meta or {})}
        self.put(key, emb, meta=about)
        return emb
