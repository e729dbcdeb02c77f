"""The detector protocol: what asdxai needs from any anomalous sound detector.

The DCASE organisers see a system as *wav in, anomaly score out*, and so does asdxai: a
:class:`Detector` has a name, a fingerprint (resume and provenance), the sample rate it reads
and ``score(waves (B, L), section) -> (B,)``. A :class:`TimeFrequencyDetector` also exposes its
own time-frequency input (:class:`TFInput`), so maps can be computed in the model's input
domain. :class:`CheckedDetector` wraps every detector the pipeline calls and turns a broken
promise (wrong shape, non-finite or non-deterministic scores) into one
:class:`~asdxai.errors.DetectorError` naming the detector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .._checks import Integral, Interval, check_params
from ..errors import ConfigError, DetectorError

#: Relative and absolute tolerance of "the same scores for the same input twice".
REPEAT_RTOL, REPEAT_ATOL = 1e-5, 1e-6


@runtime_checkable
class Detector(Protocol):
    """Any anomalous sound detector, as the DCASE organisers see one: wav in, score out."""

    name: str  # human-readable, e.g. "sc-adacos-attribute.pt", "autoencoder-fan.onnx"
    fingerprint: str  # sha256 hex of what defines it (a file's bytes, or its weights)
    sample_rate: int  # Hz, the rate `score` expects

    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        """waves: (B, L) float32 waveform in [-1, 1] at `sample_rate`; section: section key such
        as "fan_section_00" (a detector may ignore it). Returns (B,) float anomaly scores, higher
        = more anomalous. Deterministic."""
        ...

    def describe(self) -> dict:
        """JSON-able settings for provenance (may be {})."""
        ...


@dataclass(frozen=True)
class TFInput:
    """A detector's own time-frequency input of one clip (what RISE masks in the input domain).

    Attributes
    ----------
    x : Tensor [shape=(T, F)], the detector's input for this clip
    score : callable, Tensor [shape=(B, T, F)] -> Tensor [shape=(B,)], scores batches of it
    log_x : np.ndarray [shape=(T, F)], dB, for plots
    """

    x: torch.Tensor
    score: Callable[[torch.Tensor], torch.Tensor]
    log_x: np.ndarray


@runtime_checkable
class TimeFrequencyDetector(Detector, Protocol):
    """A :class:`Detector` that also exposes its own time-frequency input."""

    def time_frequency(self, wave: torch.Tensor, section: str | None = None) -> TFInput:
        """wave: (L,) float32 at `sample_rate`; the detector's input of it and its scorer."""
        ...


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 hex of a module's state (names, dtypes, shapes and values, in order): a
    fingerprint for a detector defined by its weights."""
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def has_time_frequency(detector: Any) -> bool:
    """Whether ``detector`` exposes its own time-frequency input."""
    return callable(getattr(detector, "time_frequency", None))


class CheckedDetector:
    """A detector whose promises are checked on every call the pipeline makes.

    Every score must be a float tensor of shape (B,) with finite values; the first call of
    each scorer (``score`` and each ``time_frequency`` scorer) is made twice and must give the
    same scores (within 1e-5 relative). A broken promise raises one
    :class:`~asdxai.errors.DetectorError` naming the detector. Other attributes (``sections``,
    a checkpoint's ``ckpt``, ...) are those of the wrapped detector.

    Parameters
    ----------
    detector : an object following :class:`Detector`
    """

    def __init__(self, detector: Any) -> None:
        if isinstance(detector, CheckedDetector):
            detector = detector.inner
        name = getattr(detector, "name", None)
        label = name if isinstance(name, str) and name else type(detector).__name__
        missing = [k for k in ("name", "fingerprint", "sample_rate") if not hasattr(detector, k)]
        if not callable(getattr(detector, "score", None)):
            missing.append("score()")
        if missing:
            raise DetectorError(f"detector {label}: not a detector (missing {', '.join(missing)})")
        if not isinstance(name, str) or not name:
            raise DetectorError(f"detector {label}: name must be a non-empty string")
        if not isinstance(detector.fingerprint, str) or not detector.fingerprint:
            raise DetectorError(f"detector {label}: fingerprint must be a non-empty string")
        try:
            check_params({"sample_rate": (Integral, Interval(1, None))},
                         sample_rate=detector.sample_rate)  # fmt: skip
        except ConfigError as exc:  # the detector's fault, not a parameter of the caller's
            raise DetectorError(f"detector {label}: {exc}") from None
        self.inner = detector
        self._repeated: set[str] = set()

    def __getattr__(self, key: str) -> Any:
        return getattr(self.inner, key)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def sample_rate(self) -> int:
        return int(self.inner.sample_rate)

    def describe(self) -> dict:
        """The wrapped detector's ``describe()`` ({} when it has none)."""
        fn = getattr(self.inner, "describe", None)
        out = fn() if callable(fn) else {}
        if not isinstance(out, dict):
            raise DetectorError(f"detector {self.name}: describe() must return a dict")
        return out

    @property
    def has_time_frequency(self) -> bool:
        return has_time_frequency(self.inner)

    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        """Checked ``score`` (see the class)."""
        return self._checked(lambda: self.inner.score(waves, section), len(waves), "score")

    def time_frequency(self, wave: torch.Tensor, section: str | None = None) -> TFInput:
        """Checked ``time_frequency``: its scorer is checked like ``score``."""
        if not self.has_time_frequency:
            raise DetectorError(f"detector {self.name}: has no time-frequency input")
        tf = self.inner.time_frequency(wave, section)
        if not isinstance(tf, TFInput) or tf.x.ndim != 2:
            raise DetectorError(
                f"detector {self.name}: time_frequency() must return a TFInput with x of shape "
                "(T, F)"
            )
        inner = tf.score
        key = f"time_frequency:{section}"

        def score(x: torch.Tensor) -> torch.Tensor:
            return self._checked(lambda: inner(x), len(x), key)

        return TFInput(tf.x, score, np.asarray(tf.log_x))

    def _checked(self, call: Callable[[], Any], batch: int, key: str) -> torch.Tensor:
        first = self._validate(call(), batch)
        if key not in self._repeated:
            again = self._validate(call(), batch)
            if not torch.allclose(first, again, rtol=REPEAT_RTOL, atol=REPEAT_ATOL):
                diff = float((first - again).abs().max())
                raise DetectorError(
                    f"detector {self.name}: scored the same input twice and gave different "
                    f"scores (largest difference {diff:.3g}); a detector must be deterministic "
                    "(eval mode, no dropout, fixed seeds)"
                )
            self._repeated.add(key)
        return first

    def _validate(self, scores: Any, batch: int) -> torch.Tensor:
        if isinstance(scores, np.ndarray):
            scores = torch.from_numpy(scores)
        if not isinstance(scores, torch.Tensor):
            raise DetectorError(
                f"detector {self.name}: score() returned {type(scores).__name__}, not a tensor"
            )
        if tuple(scores.shape) != (batch,):
            raise DetectorError(
                f"detector {self.name}: score() returned shape {tuple(scores.shape)} for "
                f"{batch} clips; it must return ({batch},), one score per clip"
            )
        if not scores.is_floating_point():
            scores = scores.float()
        if not bool(torch.isfinite(scores).all()):
            bad = int((~torch.isfinite(scores)).sum())
            raise DetectorError(
                f"detector {self.name}: score() returned {bad} non-finite score(s) (NaN or inf) "
                f"of {batch}"
            )
        return scores
