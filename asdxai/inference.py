"""Batched inference over clip records: embeddings and anomaly scores, streamed from disk.

Clips are read in batches by :func:`asdxai.data.dataset.clip_loader`; the model
inputs (spectrogram, and the spectrum for dual-branch models) are computed on
the device from each waveform batch with :func:`asdxai.nets.encoder_inputs`; the
models run in eval mode under ``torch.inference_mode``. Records are processed
grouped by encoder (embeddings) or by section (scores) and the results are
returned in the order of the input records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ._runtime import resolve_device
from .data.dataset import ClipDataset, clip_loader
from .errors import DataError, NonFiniteError
from .features import FeatureConfig
from .nets import encoder_inputs

if TYPE_CHECKING:  # pragma: no cover
    from .checkpoint import Checkpoint
    from .scoring import AnomalyScorer

logger = logging.getLogger(__name__)

_BatchFn = Callable[[str, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def _feature_config(ckpt: Checkpoint) -> FeatureConfig:
    cfg = ckpt.feature_config
    return cfg if isinstance(cfg, FeatureConfig) else FeatureConfig(**cfg)


def _arch(ckpt: Checkpoint) -> str:
    cfg = ckpt.net_config
    return cfg["arch"] if isinstance(cfg, dict) else cfg.arch


def _stream(
    records: Sequence[Any],
    groups: dict[str, list[int]],
    fn: _BatchFn,
    feat_cfg: FeatureConfig,
    arch: str,
    device: torch.device,
    batch_size: int,
    progress: bool,
    num_workers: int,
    desc: str,
    on_error: str = "raise",
) -> np.ndarray:
    """Run ``fn(group_key, spec, spectrum)`` over every group's batches; rows in record order.

    With ``on_error="skip"`` the rows of unreadable clips are NaN and their count is logged.
    A non-finite value computed from a readable clip raises :class:`NonFiniteError` naming
    the clip, whatever ``on_error`` says (it is the model's fault, not the clip's).
    """
    out: np.ndarray | None = None
    skipped: list[str] = []
    bar = tqdm(total=len(records), desc=desc, unit="clip", disable=not progress, leave=False)
    try:
        with torch.inference_mode():
            for key, idx in groups.items():
                sub = [records[i] for i in idx]
                idx_arr = np.asarray(idx)
                dataset = ClipDataset(sub, feat_cfg, on_error=on_error)
                loader = clip_loader(
                    dataset, feat_cfg, batch_size=batch_size, shuffle=False, num_workers=num_workers
                )
                for wave, where in loader:
                    wave = wave.to(device, non_blocking=True)
                    inputs = encoder_inputs(wave, feat_cfg, arch=arch)
                    res = fn(key, inputs["spec"], inputs.get("spectrum")).float().cpu().numpy()
                    bad = ~np.isfinite(res.reshape(len(res), -1)).all(axis=1)
                    if bad.any():  # an error, never an "unreadable" (NaN) row
                        first = sub[int(where.numpy()[np.flatnonzero(bad)[0]])]
                        raise NonFiniteError(
                            f"{getattr(first, 'path', first)}: the model gives non-finite "
                            f"{'embeddings' if desc == 'embed' else 'anomaly scores'} (NaN or "
                            f"inf) for {int(bad.sum())} of {len(res)} clips of this batch; the "
                            "checkpoint's weights or backend overflow float32"
                        )
                    if out is None:
                        out = np.full((len(records), *res.shape[1:]), np.nan, dtype=np.float32)
                    out[idx_arr[where.numpy()]] = res
                    bar.update(len(res))
                skipped += dataset.skipped_paths
                bar.update(dataset.skipped)
    finally:
        bar.close()
    if skipped:
        logger.warning(
            "%s: skipped %d of %d clips as unreadable (first: %s)",
            desc,
            len(skipped),
            len(records),
            skipped[0],
        )
    if out is None:
        raise DataError(f"all {len(records)} clips are unreadable (first: {skipped[0]})")
    return out


def embed_records(
    ckpt: Checkpoint,
    records: Sequence[Any],
    *,
    device: str | torch.device | None = "auto",
    batch_size: int = 64,
    progress: bool = True,
    num_workers: int = 0,
    on_error: str = "raise",
) -> np.ndarray:
    """Unit embeddings of clips, streamed from disk in batches.

    Parameters
    ----------
    ckpt : Checkpoint
        Trained model; a per-section checkpoint embeds each clip with its
        section's encoder (``ckpt.model_key_for(record.section_key)``).
    records : sequence of ClipRecord [length N]
    device : str or torch.device
        ``"auto"`` = CUDA when available.
    batch_size : int
        Clips per forward pass.
    progress : bool
        Show a tqdm bar.
    num_workers : int
        DataLoader worker processes reading wav files.
    on_error : {"raise", "skip"}
        An unreadable clip raises its :class:`~asdxai.errors.AudioError` (default), or is
        skipped: its row is NaN and the number skipped is logged as a warning.

    Returns
    -------
    np.ndarray [shape=(N, D)], float32
        Row ``i`` is the embedding of ``records[i]`` (NaN for a skipped clip).
    """
    if len(records) == 0:
        raise DataError("no clips to embed")
    dev = resolve_device(device)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(ckpt.model_key_for(r.section_key), []).append(i)
    encoders: dict[str, torch.nn.Module] = {}

    def fn(key: str, spec: torch.Tensor, spectrum: torch.Tensor | None) -> torch.Tensor:
        if key not in encoders:
            encoders.clear()  # one encoder on the device at a time
            encoders[key] = ckpt.build_encoder(model_key=key).to(dev).eval()
        enc = encoders[key]
        return enc(spec) if spectrum is None else enc(spec, spectrum)

    logger.debug("embedding %d clips with %d encoder(s) on %s", len(records), len(groups), dev)
    return _stream(
        records,
        groups,
        fn,
        _feature_config(ckpt),
        _arch(ckpt),
        dev,
        batch_size,
        progress,
        num_workers,
        "embed",
        on_error,
    )


def score_records(
    scorer: AnomalyScorer,
    ckpt: Checkpoint,
    records: Sequence[Any],
    *,
    batch_size: int = 64,
    progress: bool = True,
    num_workers: int = 0,
    on_error: str = "raise",
) -> np.ndarray:
    """Anomaly scores of clips with the black-box scorer, streamed from disk by section.

    Parameters
    ----------
    scorer : AnomalyScorer
        Runs on the device its buffers live on (``AnomalyScorer.from_checkpoint``).
    ckpt : Checkpoint
        Supplies the feature settings and the architecture (dual needs the spectrum).
    records : sequence of ClipRecord [length N]
    batch_size, progress, num_workers, on_error
        As in :func:`embed_records`.

    Returns
    -------
    np.ndarray [shape=(N,)], float32
        Higher = more anomalous; row ``i`` belongs to ``records[i]`` (NaN for a skipped clip).
    """
    if len(records) == 0:
        raise DataError("no clips to score")
    try:
        dev = next(scorer.buffers()).device
    except StopIteration:  # pragma: no cover - a fitted scorer always has buffers
        dev = torch.device("cpu")
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.section_key, []).append(i)
    for key in groups:
        scorer.reference(key)  # every section must be in the backend; fail before reading audio
    was_training = scorer.training
    scorer.eval()
    try:
        return _stream(
            records,
            groups,
            lambda key, spec, spectrum: scorer(spec, key, spectrum),
            _feature_config(ckpt),
            _arch(ckpt),
            dev,
            batch_size,
            progress,
            num_workers,
            "score",
            on_error,
        )
    finally:
        scorer.train(was_training)
