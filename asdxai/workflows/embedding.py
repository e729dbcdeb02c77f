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

from .._atomic import atomic_write_text
from .._io import sha256_file
from .._runtime import provenance
from ..checkpoint import load_checkpoint
from ..embed import records_meta, run_tsne, trial_table, write_report_csv
from ..inference import embed_records
from ..layout import TSNE_TABLE, Layout

log = logging.getLogger(__name__)

#: Table III's columns: (column, key of a t-SNE report's overall row, markdown header).
TABLE3_COLUMNS = (("dist_2d", "mean_dist_2d", "2-D distance"),
                  ("dist_embedding", "mean_dist_embedding", "cosine distance (embedding)"),
                  ("auc_embedding", "auc_embedding", "AUC (embedding)"))  # fmt: skip


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
    if ckpt is None:
        ckpt = load_checkpoint(checkpoint)

    def compute():
        return embed_records(ckpt, records, device=device, batch_size=batch_size, progress=progress)

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
    emb = embed_split(
        checkpoint, records, device=device, batch_size=batch_size, cache=cache,
        progress=progress, ckpt=ckpt,
    )  # fmt: skip
    with quiet_opentsne():
        result = run_tsne(emb, records_meta(records), cfg=config, reference=reference, name=name,
                          progress=progress)  # fmt: skip
    result.checkpoint = {"path": str(Path(checkpoint).resolve()), "sha256": sha256_file(checkpoint)}
    result.provenance = provenance(device if isinstance(device, torch.device) else None)
    return result


def write_trials_table(
    results: dict[str, Sequence[Any]], layout: Layout
) -> tuple[list[dict[str, Any]], str]:
    """Table III: mean ± std over trials of each group's overall t-SNE measures.

    Parameters
    ----------
    results : row label -> the :class:`~asdxai.embed.TSNEResult` of each trial
    layout : where ``table3.csv`` (means and stds) and ``table3.md`` go

    Returns
    -------
    (rows, markdown)
        One dict per group (``label``, ``n_trials``, ``<column>_mean`` / ``_std`` of
        :data:`TABLE3_COLUMNS`) and the markdown table (written as ``table3.md``).
    """
    rows, lines = [], ["| model | trials | " + " | ".join(h for *_, h in TABLE3_COLUMNS) + " |",
                       "|---|---|" + "---|" * len(TABLE3_COLUMNS)]  # fmt: skip
    for label, trials in results.items():
        row: dict[str, Any] = {"label": label, "n_trials": len(trials)}
        for col, key, _ in TABLE3_COLUMNS:
            (stats,) = trial_table({label: [float(r.report[0][key]) for r in trials]})
            row[f"{col}_mean"], row[f"{col}_std"] = stats["mean"], stats["std"]
        rows.append(row)
        cells = [f"{row[k + '_mean']:.3f} ± {row[k + '_std']:.3f}" for k, *_ in TABLE3_COLUMNS]
        lines.append(f"| {label} | {len(trials)} | " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + "\n"
    write_report_csv(rows, layout.csv(TSNE_TABLE))
    atomic_write_text(layout.markdown(TSNE_TABLE), markdown)
    return rows, markdown
