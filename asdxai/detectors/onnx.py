"""An ONNX file as a :class:`~.base.Detector`, run by onnxruntime (extra ``asdxai[onnx]``).

The model takes one input, a float32 waveform batch ``(B, L)``, and gives ``(B,)`` (or
``(B, 1)``) anomaly scores. Its ``metadata_props`` may give ``sample_rate`` (Hz, default
16000) and ``name`` (default: the file name). The section is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._io import sha256_file
from ..errors import DetectorError

#: Sample rate of an ONNX detector whose metadata gives none (Hz).
DEFAULT_SAMPLE_RATE = 16_000


class OnnxDetector:
    """A waveform ONNX model, loaded once.

    Parameters
    ----------
    path : ``*.onnx`` file
    device : ``cuda`` uses onnxruntime's CUDA provider where installed, else the CPU
    sample_rate, name : override the model's metadata
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        sample_rate: int | None = None,
        name: str | None = None,
    ) -> None:
        try:
            # onnxruntime is the optional extra asdxai[onnx]
            import onnxruntime as ort
        except ImportError:
            raise DetectorError(
                f"detector {path}: ONNX detectors need onnxruntime (pip install 'asdxai[onnx]')",
                param="detector",
            ) from None
        self.path = Path(path).resolve()
        if not self.path.is_file():
            raise DetectorError(f"detector {path}: no such file", param="detector")
        want_cuda = torch.device(device).type == "cuda" if str(device) != "auto" else True
        providers = ["CPUExecutionProvider"]
        if want_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own (unexported) error classes
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DetectorError(f"detector {path}: not a usable ONNX model ({first})",
                                param="detector") from None  # fmt: skip
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 2:
            raise DetectorError(
                f"detector {self.path.name}: an ONNX detector takes one input, a (B, L) waveform; "
                f"this one takes {[(i.name, i.shape) for i in inputs]}",
                param="detector",
            )
        self._input = inputs[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            rate = int(sample_rate or meta.get("sample_rate", DEFAULT_SAMPLE_RATE))
        except ValueError:
            raise DetectorError(
                f"detector {self.path.name}: metadata sample_rate {meta['sample_rate']!r} is "
                "not an integer", param="detector",
            ) from None  # fmt: skip
        self.sample_rate = rate
        self.name = name or meta.get("name") or self.path.name
        self.fingerprint = sha256_file(self.path)
        self.providers = self.session.get_providers()

    def describe(self) -> dict:
        """File, providers and the model's metadata."""
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        return {"kind": "onnx", "file": str(self.path), "providers": self.providers,
                "metadata": meta}  # fmt: skip

    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        """Anomaly scores [shape=(B,)] of waveforms [shape=(B, L)] (``section`` is ignored)."""
        x = torch.as_tensor(waves).detach().to("cpu", torch.float32).numpy()
        try:
            (out,) = self.session.run(None, {self._input: np.ascontiguousarray(x)})[:1]
        except Exception as exc:  # onnxruntime's own error classes (wrong length, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DetectorError(
                f"detector {self.name}: onnxruntime cannot score a {tuple(x.shape)} batch "
                f"({first[:300]})"
            ) from None
        out = np.asarray(out, dtype=np.float32)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return torch.from_numpy(out).to(torch.as_tensor(waves).device)
