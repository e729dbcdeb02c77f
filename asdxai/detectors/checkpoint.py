"""An asdxai checkpoint (encoder + fitted k-means backend) as a :class:`~.base.Detector`.

``score`` computes both model inputs from the waveform (the spectrogram, and for a
dual-branch model the whole-clip spectrum), so a signal-domain map explains a dual-branch
model *as it is used*. ``time_frequency`` gives the model's spectrogram input as today's
input-domain maps see it: for a dual-branch model the whole-clip spectrum is held fixed at
the clip's own spectrum there.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .._io import sha256_file
from .._runtime import resolve_device
from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import DataError
from ..features import log_spectrogram
from ..nets import encoder_inputs
from ..scoring import AnomalyScorer
from .base import TFInput


class CheckpointDetector:
    """A ``model.pt`` with a fitted backend, loaded once on ``device``.

    Parameters
    ----------
    path : checkpoint file
    device : torch device or ``"auto"`` (CUDA if available)
    ckpt : the checkpoint already read from ``path`` (None: read it here)

    Attributes
    ----------
    name : the file name; fingerprint : SHA-256 of the file; sample_rate : Hz
    ckpt : :class:`asdxai.checkpoint.Checkpoint`; scorer : :class:`asdxai.scoring.AnomalyScorer`
    features : its :class:`asdxai.features.FeatureConfig`; arch : ``dual`` or ``spectrogram``
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        device: str | torch.device = "auto",
        ckpt: Checkpoint | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.ckpt = load_checkpoint(self.path) if ckpt is None else ckpt
        self.device = resolve_device(device)
        self.scorer = AnomalyScorer.from_checkpoint(self.ckpt, device=self.device)
        self.features = self.ckpt.features
        self.arch = self.ckpt.net.arch
        self.name = self.path.name
        self.fingerprint = sha256_file(self.path)
        self.sample_rate = self.features.sample_rate

    @property
    def sections(self) -> list[str]:
        """Section keys the backend was fitted on."""
        return list(self.scorer.sections)

    def describe(self) -> dict:
        """Checkpoint path, feature settings, architecture, task."""
        return {
            "kind": "asdxai-checkpoint", "checkpoint": str(self.path),
            "feature_config": self.features.to_dict(), "arch": self.arch, "task": self.ckpt.task,
        }  # fmt: skip

    def _section(self, section: str | None) -> str:
        if section is not None:
            return section
        if len(self.sections) == 1:
            return self.sections[0]
        raise DataError(
            f"{self.name} scores per section; name one (one of: {', '.join(self.sections[:20])})",
            param="section",
        )

    def model_inputs(self, waves: torch.Tensor) -> dict:
        """The model inputs of waveforms [shape=(B, L)] (padded / trimmed at the end to the
        checkpoint's clip length): ``spec`` (B, T, F) and ``spectrum`` (B, S) or None."""
        n = self.features.n_samples
        waves = torch.as_tensor(waves, dtype=torch.float32).to(self.device)
        if waves.shape[-1] != n:  # pad / trim at the end, as read_clip does
            waves = torch.nn.functional.pad(waves, (0, max(n - waves.shape[-1], 0)))[..., :n]
        return encoder_inputs(waves, self.features, arch=self.arch)

    @torch.no_grad()
    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        """Anomaly scores [shape=(B,)] of waveforms [shape=(B, L)] (both inputs recomputed)."""
        inputs = self.model_inputs(waves)
        return self.scorer(inputs["spec"], self._section(section), inputs["spectrum"])

    def time_frequency(self, wave: torch.Tensor, section: str | None = None) -> TFInput:
        """The clip's linear magnitude spectrogram (T, F) and its scorer (dual: the clip's own
        spectrum held fixed)."""
        inputs = self.model_inputs(torch.as_tensor(wave)[None])
        spec = inputs["spec"][0]
        scorer = self.scorer.bind(self._section(section), spectrum=inputs["spectrum"])
        return TFInput(spec, scorer, log_spectrogram(spec).cpu().numpy())
