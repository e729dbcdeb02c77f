"""Embed a split with a checkpoint and project it with t-SNE: the body of ``asdxai tsne``, the
demo's t-SNE views and Fig. 5 / Table III.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_opentsne() -> Iterator[None]:
    """Silence openTSNE's informational log lines (method choices, ignored parameters)."""
    logger = logging.getLogger("openTSNE")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def embed_split(
    checkpoint: str | os.PathLike,
    records: Sequence[Any],
    *,
    device: str | torch.device = "auto",
    batch_size: int = 64,
    cache: Any = None,
    progress: bool = True,
    ckpt: Any = None,
):
    """Embeddings [shape=(N, D)] of ``records`` under the checkpoint at ``checkpoint``.

    ``cache`` is an :class:`asdxai.embedding_cache.EmbeddingCache` (or None); ``ckpt`` the
    already loaded checkpoint, if the caller has it.
    """
    from ..checkpoint import load_checkpoint
    from ..inference import embed_records

    if ckpt is None:
        ckpt = load_checkpoint(checkpoint)

    def compute():
        return embed_records(ckpt, records, device, batch_size=batch_size, progress=progress)

    if cache is None:
        return compute()
    return cache.get_or_compute(checkpoint, [r.path for r in records], compute)


def project_split(
    checkpoint: str | os.PathLike,
    records: Sequence[Any],
    *,
    config: Any = None,
    device: str | torch.device = "auto",
    batch_size: int = 64,
    cache: Any = None,
    reference: Any = None,
    name: str = "",
    progress: bool = True,
    ckpt: Any = None,
):
    """Embed ``records``, project them with t-SNE and measure the nearest-normal distances.

    Parameters
    ----------
    checkpoint : path of the checkpoint (recorded in the result with its SHA-256)
    records : labelled clip records (normal and anomalous)
    config : :class:`asdxai.embed.TSNEConfig` (default settings when None)
    device, batch_size, progress : embedding settings
    cache : :class:`asdxai.embedding_cache.EmbeddingCache` or None
    reference : an openTSNE embedding to place the clips into instead of a new projection
    name : label stored in the result
    ckpt : the loaded checkpoint, if the caller has it

    Returns
    -------
    :class:`asdxai.embed.TSNEResult`
    """
    from .._io import sha256_file
    from .._runtime import provenance
    from ..embed import records_meta, run_tsne

    emb = embed_split(
        checkpoint, records, device=device, batch_size=batch_size, cache=cache,
        progress=progress, ckpt=ckpt,
    )  # fmt: skip
    with quiet_opentsne():
        result = run_tsne(emb, records_meta(records), config, reference=reference, name=name,
                          progress=progress)  # fmt: skip
    result.checkpoint = {"path": str(Path(checkpoint).resolve()), "sha256": sha256_file(checkpoint)}
    result.provenance = provenance(device if isinstance(device, torch.device) else None)
    return result
