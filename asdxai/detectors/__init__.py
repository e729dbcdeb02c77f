"""Detectors: any anomalous sound detector behind one protocol (wav in, score out).

``load_detector(spec)`` builds one from a checkpoint ``*.pt``, an ONNX file ``*.onnx``
(onnxruntime, extra ``asdxai[onnx]``) or a Python factory ``package.module:function``; a
``*.pt`` is an asdxai checkpoint or a bundled autoencoder (``family: "autoencoder"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .._runtime import resolve_device
from ..checkpoint import checkpoint_from_payload, read_weights_only
from ..errors import DetectorError
from .autoencoder import load_autoencoder
from .base import (
    CheckedDetector,
    Detector,
    TFInput,
    TimeFrequencyDetector,
    has_time_frequency,
    weights_fingerprint,
)
from .checkpoint import CheckpointDetector
from .factory import load_factory
from .onnx import OnnxDetector


def load_detector(spec: str | Path, *, device: str | torch.device = "auto") -> Any:
    """The detector named by ``spec``.

    Parameters
    ----------
    spec : a checkpoint path ``*.pt`` (or any existing file but ``*.onnx``), an ONNX file
        ``*.onnx``, or a Python factory ``package.module:function`` (the function returns a
        detector)
    device : torch device or ``"auto"`` (CUDA if available)

    Returns
    -------
    a :class:`Detector` (not yet wrapped in :class:`CheckedDetector`)
    """
    text = str(spec)
    suffix = Path(text).suffix.lower()
    if ":" in text and not Path(text).exists() and suffix not in (".pt", ".onnx"):
        return load_factory(text, device=resolve_device(device))
    if suffix == ".pt" or (suffix != ".onnx" and Path(text).is_file()):
        data = read_weights_only(text)  # read once: the file's family picks the adapter
        if data.get("family") == "autoencoder":
            return load_autoencoder(text, device=device, payload=data)
        return CheckpointDetector(text, device=device, ckpt=checkpoint_from_payload(data, text))
    if suffix == ".onnx":
        return OnnxDetector(text, device=device)
    raise DetectorError(
        f"detector {text!r}: expected a checkpoint *.pt, an ONNX file *.onnx or a factory "
        "package.module:function",
        param="detector",
    )


__all__ = [
    "CheckedDetector",
    "Detector",
    "TFInput",
    "TimeFrequencyDetector",
    "has_time_frequency",
    "load_detector",
    "weights_fingerprint",
]
