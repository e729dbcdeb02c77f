"""A normal reference for masking: what a removed cell becomes when it should stay *normal*.

RISE masks cells to silence (the study) and the faithfulness measures replace removed cells by
the clip's median frame or by silence. For models that subtract each bin's temporal mean
first (every asdxai encoder), those references are degenerate: a fully masked bin is the same
whatever constant fills it, and an all-silent input scores like an all-constant one -- for a
model trained on machine sounds often far *more* anomalous than any normal clip, so the
"removed" input is itself an outlier. :func:`normal_reference` builds a reference of normal
content from normal clips (e.g. the section's normal training clips), one of
:data:`REFERENCES`:

* ``"mean"`` -- their cell-wise mean linear magnitude spectrogram: the section's typical
  level in every bin (nearly constant over time, so a *fully* masked bin still looks like any
  constant after the mean subtraction; partly masked bins keep the normal level);
* ``"nearest"`` -- the spectrogram of the normal clip closest to the explained one (mean
  squared difference of the dB spectrograms): real normal content with its own temporal
  structure, so even a fully masked bin carries a normal clip's fluctuations.

Pass it as ``RISE.attribute(..., fill=reference)`` or as the ``fill`` of
:func:`asdxai.explain.attribution.faithfulness_measures`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from .._checks import Integral, Interval, check_params
from ..constants import NORMAL_FILLS
from ..data.audio import read_clip
from ..errors import ConfigError
from ..features import FeatureConfig, log_spectrogram, spectrogram

__all__ = ["REFERENCES", "normal_reference"]

#: Kinds of normal reference (the values of :data:`asdxai.constants.NORMAL_FILLS`).
REFERENCES = tuple(NORMAL_FILLS.values())


def normal_reference(
    clips: Sequence[str | os.PathLike],
    cfg: FeatureConfig,
    *,
    kind: str = "mean",
    like: torch.Tensor | None = None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A normal reference spectrogram [shape=(T, F)] built from normal clips.

    Parameters
    ----------
    clips : wav files of normal clips, e.g. the section's normal training clips
    cfg : FeatureConfig, the model's feature settings (the reference has its input's shape)
    kind : one of :data:`REFERENCES`: ``"mean"`` = cell-wise mean over ``clips``,
        ``"nearest"`` = the clip of ``clips`` nearest to ``like``
    like : Tensor [shape=(T, F)], linear magnitude, the explained input (``"nearest"`` only)
    batch_size : int, clips per spectrogram batch
    device : where the spectrograms are computed and the reference lives

    Returns
    -------
    Tensor [shape=(T, F)] float32, linear magnitude
    """
    if kind not in REFERENCES:
        raise ConfigError(f"kind must be one of {REFERENCES}, got {kind!r}", param="kind")
    if not clips:
        raise ConfigError("a normal reference needs at least one clip", param="clips")
    check_params({"batch_size": (Integral, Interval(1, None))}, batch_size=batch_size)
    if kind == "nearest":
        if like is None:
            raise ConfigError("a nearest-clip reference needs the explained input", param="like")
        target = log_spectrogram(torch.as_tensor(like, dtype=torch.float32, device=device))
    total, best, best_dist = None, None, float("inf")
    for start in range(0, len(clips), batch_size):
        batch = [torch.from_numpy(read_clip(c, cfg)) for c in clips[start : start + batch_size]]
        spec = spectrogram(torch.stack(batch).to(device), cfg=cfg)  # (B, T, F)
        if kind == "mean":
            part = spec.sum(dim=0, dtype=torch.float64)
            total = part if total is None else total + part
            continue
        if spec.shape[1:] != target.shape:
            raise ConfigError(f"clip spectrograms {tuple(spec.shape[1:])} != the input's "
                              f"{tuple(target.shape)}", param="like")  # fmt: skip
        dist = (log_spectrogram(spec) - target).pow(2).mean(dim=(1, 2))
        i = int(dist.argmin())
        if float(dist[i]) < best_dist:
            best, best_dist = spec[i].clone(), float(dist[i])
    out = total / len(clips) if kind == "mean" else best
    return out.to(torch.float32)
