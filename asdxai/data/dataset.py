"""Torch datasets and loaders that stream clips from disk.

Only the records (paths and metadata) are held in memory; each clip is read
when its batch is assembled. Features are computed on the device from the
waveform batch (see :mod:`asdxai.features`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .._checks import Integral, Interval, check_params
from .._runtime import available_cores
from ..constants import ON_ERROR
from ..errors import AudioError, ConfigError
from ..features import FeatureConfig
from .audio import read_clip
from .records import ClipRecord

logger = logging.getLogger(__name__)


class ClipDataset(Dataset):
    """Map-style dataset of clips: item ``i`` is ``(wave, i)``.

    Parameters
    ----------
    records : sequence of ClipRecord (or path-like)
        Clips to read; ``records[i].path`` is read for item ``i``.
    cfg : FeatureConfig
        Sample rate and clip length (see :func:`asdxai.data.audio.read_clip`).
    on_error : {"raise", "skip"}
        What to do with an unreadable clip: ``"raise"`` raises its
        :class:`AudioError`; ``"skip"`` logs a warning naming the file, counts it
        in :attr:`skipped` and returns ``(None, i)`` (which :func:`clip_loader`
        drops from the batch).
    channel, allow_silent
        Passed to :func:`read_clip`.

    Attributes
    ----------
    skipped_indices : set of int
        Items skipped so far (filled in the main process, also with workers,
        when read through :func:`clip_loader`).
    """

    def __init__(
        self,
        records: Sequence[ClipRecord | str | os.PathLike],
        cfg: FeatureConfig,
        *,
        on_error: str = "raise",
        channel: int | str | None = None,
        allow_silent: bool = False,
    ) -> None:
        if on_error not in ON_ERROR:
            raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
        self.records = list(records)
        self.cfg = cfg
        self.on_error = on_error
        self.channel = channel
        self.allow_silent = allow_silent
        self.skipped_indices: set[int] = set()

    def __len__(self) -> int:
        return len(self.records)

    def path(self, index: int) -> os.PathLike | str:
        rec = self.records[index]
        return getattr(rec, "path", rec)

    @property
    def skipped(self) -> int:
        """Number of distinct clips skipped as unreadable so far."""
        return len(self.skipped_indices)

    @property
    def skipped_paths(self) -> list[str]:
        """Paths of the skipped clips, in index order."""
        return [str(self.path(i)) for i in sorted(self.skipped_indices)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, int]:
        """Return ``(wave float32 [shape=(L,)], index)``, or ``(None, index)`` when skipped."""
        try:
            wave = read_clip(
                self.path(index), self.cfg, channel=self.channel, allow_silent=self.allow_silent
            )
        except AudioError as exc:
            if self.on_error == "raise":
                raise
            logger.warning("skipping unreadable clip: %s", exc)
            self.skipped_indices.add(int(index))
            return None, int(index)
        return torch.from_numpy(wave), int(index)


def _collate(batch: list[tuple[torch.Tensor | None, int]]):
    good = [(w, i) for w, i in batch if w is not None]
    skipped = [i for w, i in batch if w is None]
    if good:
        wave = torch.stack([w for w, _ in good])
        idx = torch.tensor([i for _, i in good], dtype=torch.int64)
    else:
        wave = torch.empty((0, 0), dtype=torch.float32)
        idx = torch.empty((0,), dtype=torch.int64)
    return wave, idx, skipped


class ClipLoader(DataLoader):
    """DataLoader over a :class:`ClipDataset` yielding ``(wave (B, L), idx (B,))``.

    Skipped clips (``on_error="skip"``) are dropped from their batch, so a
    batch may be smaller than ``batch_size``; a batch left empty is not yielded.
    The skip count is kept on ``loader.dataset.skipped`` in the main process.
    """

    dataset: ClipDataset

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for wave, idx, skipped in super().__iter__():
            if skipped:
                self.dataset.skipped_indices.update(int(i) for i in skipped)
            if idx.numel() == 0:
                continue
            yield wave, idx


def clip_loader(
    records: Sequence[ClipRecord] | ClipDataset,
    cfg: FeatureConfig,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    on_error: str = "raise",
    channel: int | str | None = None,
    allow_silent: bool = False,
) -> ClipLoader:
    """Batches of waveforms streamed from disk.

    Parameters
    ----------
    records : sequence of ClipRecord, or a ClipDataset
        Clips (a ready :class:`ClipDataset` is used as is; ``cfg``,
        ``on_error``, ``channel`` and ``allow_silent`` are then ignored).
    cfg : FeatureConfig
        Sample rate and clip length.
    batch_size : int
        Clips per batch (> 0).
    shuffle : bool
        Shuffle with a ``torch.Generator`` seeded by ``seed``: the same seed
        gives the same order of batches, epoch after epoch.
    seed : int
        Seed of the shuffling generator (and of worker seeds).
    num_workers : int
        Reader processes (0 = read in the main process), at most the CPU cores available.
    drop_last : bool
        Drop the last incomplete batch.
    on_error : {"raise", "skip"}
        See :class:`ClipDataset`.

    Returns
    -------
    ClipLoader
        A ``torch.utils.data.DataLoader`` yielding ``wave`` float32
        [shape=(B, cfg.n_samples)] and ``idx`` int64 [shape=(B,)], the
        positions of the clips in ``records``.
    """
    check_params({"batch_size": (Integral, Interval(1, None))}, batch_size=batch_size)
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)):
        raise ConfigError(f"num_workers must be an integer, got {num_workers!r}",
                          param="num_workers")  # fmt: skip
    if not 0 <= num_workers <= available_cores():
        raise ConfigError(
            f"num_workers must lie in 0 ... {available_cores()} (the CPU cores available; each "
            f"reader process costs ~250 MB), got {num_workers}",
            param="num_workers",
        )
    if isinstance(records, ClipDataset):
        dataset = records
    else:
        dataset = ClipDataset(
            records, cfg, on_error=on_error, channel=channel, allow_silent=allow_silent
        )
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return ClipLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
        collate_fn=_collate,
    )
