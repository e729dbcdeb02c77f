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

from ._atomic import atomic_path
from ._io import dumps, sha256_file
from .errors import DataError

log = logging.getLogger(__name__)

CACHE_FORMAT = "asdxai.embedding-cache"


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

    def __init__(self, path: str | os.PathLike, max_entries: int = 16) -> None:
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
            h.update(f"\0{os.fspath(p)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
        return h.hexdigest()

    def get(self, key: str) -> np.ndarray | None:
        """The cached embeddings [shape=(N, D)] for ``key``, or None."""
        if not self.path.is_file():
            return None
        try:
            with h5py.File(self.path, "r") as f:
                if key in f:
                    return f[key]["embeddings"][()]
        except OSError as exc:
            log.warning("%s: unreadable embedding cache, ignoring it (%s)", self.path, exc)
        return None

    def put(self, key: str, embeddings: np.ndarray, meta: Mapping[str, Any] | None = None) -> None:
        """Store ``embeddings`` [shape=(N, D)] under ``key`` (atomic rewrite of the file)."""
        with atomic_path(self.path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = CACHE_FORMAT
            # Copy the newest other entries into a fresh file (h5py never shrinks a file
            # after deletions, so rewriting keeps the cache at its live size).
            try:
                old = h5py.File(self.path, "r") if self.path.is_file() else None
            except OSError:
                log.warning("%s: unreadable embedding cache, starting a new one", self.path)
                old = None
            if old is not None:
                with old:
                    keep = (
                        sorted(
                            (k for k in old.keys() if k != key),
                            key=lambda k: float(old[k].attrs.get("created", 0.0)),
                        )[-(self.max_entries - 1) :]
                        if self.max_entries > 1
                        else []
                    )
                    for k in keep:
                        old.copy(old[k], f, name=k)
            g = f.create_group(key)
            g.create_dataset("embeddings", data=np.asarray(embeddings, dtype=np.float32))
            g.attrs["created"] = time.time()
            g.attrs["meta"] = dumps(dict(meta or {}))
        log.debug("cached %s embeddings in %s", np.shape(embeddings), self.path)

    def get_or_compute(
        self,
        checkpoint: str | os.PathLike,
        paths: Sequence[str | os.PathLike],
        compute: Callable[[], np.ndarray],
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
        hit = self.get(key)
        if hit is not None and hit.shape[0] == len(paths):
            self.hits += 1
            log.info("embedding cache hit (%s, %d clips)", self.path.name, len(paths))
            return hit
        self.misses += 1
        emb = np.asarray(compute())
        if emb.ndim != 2 or emb.shape[0] != len(paths):
            raise DataError(f"embedding function returned shape {emb.shape} for {len(paths)} clips")
        self.put(
            key, emb, {"checkpoint": os.fspath(checkpoint), "n_clips": len(paths), **(meta or {})}
        )
        return emb
