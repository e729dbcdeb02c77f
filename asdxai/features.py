"""Input representations: magnitude spectrogram and whole-clip magnitude spectrum.

All functions are batched torch code that runs on whatever device the input
lives on. Shapes follow the study: a 10 s clip at 16 kHz gives a spectrogram of
311 frames x 513 bins (n_fft 1024, hop 512, Hann window, no centre padding) and a
spectrum of 80,000 bins (the first half of the FFT of the whole clip).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import torch

from ._checks import Interval, check_params
from ._io import config_to_dict
from .errors import ConfigError, NonFiniteError

#: Sane ranges for the settings (a checkpoint carries them, so they are untrusted input).
SAMPLE_RATE_RANGE = (1_000, 384_000)  # Hz
N_FFT_RANGE = (32, 65_536)  # samples
MAX_OVERLAP = 16  # hop_length >= n_fft / MAX_OVERLAP
MAX_SAMPLES = 2**24  # samples per clip (17.5 min at 16 kHz; 64 MiB as float32)
MAX_SPECTROGRAM = 2**23  # frames x bins per clip (32 MiB as float32)


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the input representations (stored in every checkpoint).

    Every setting is checked against a sane range (:data:`SAMPLE_RATE_RANGE`,
    :data:`N_FFT_RANGE`, ``n_fft / MAX_OVERLAP <= hop_length <= n_fft``, at most
    :data:`MAX_SAMPLES` samples and :data:`MAX_SPECTROGRAM` spectrogram values per
    clip), so a checkpoint cannot ask for memory out of proportion to a clip.
    """

    sample_rate: int = 16_000  # Hz; clips at another rate are rejected
    duration_s: float = 10.0  # clips are zero-padded / trimmed at the end to this length
    n_fft: int = 1024  # STFT window and FFT length (samples)
    hop_length: int = 512  # STFT hop (samples)

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length"):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        positive = (Real, Interval(0, None, "neither"))
        check_params({"duration_s": positive}, duration_s=self.duration_s)
        lo, hi = SAMPLE_RATE_RANGE
        if not lo <= self.sample_rate <= hi:
            raise ConfigError(f"sample_rate must lie in [{lo}, {hi}] Hz, got {self.sample_rate}")
        lo, hi = N_FFT_RANGE
        if not lo <= self.n_fft <= hi:
            raise ConfigError(f"n_fft must lie in [{lo}, {hi}], got {self.n_fft}")
        min_hop = -(-self.n_fft // MAX_OVERLAP)
        if not min_hop <= self.hop_length <= self.n_fft:
            raise ConfigError(
                f"hop_length must lie in [{min_hop}, {self.n_fft}] for n_fft {self.n_fft} "
                f"(at most {MAX_OVERLAP}x overlap), got {self.hop_length}"
            )
        if self.n_samples > MAX_SAMPLES:
            raise ConfigError(
                f"a clip of {self.duration_s:g} s at {self.sample_rate} Hz has {self.n_samples} "
                f"samples; at most {MAX_SAMPLES} are supported"
            )
        if self.n_samples < self.n_fft:
            raise ConfigError(
                f"clip length {self.n_samples} samples is shorter than n_fft {self.n_fft}"
            )
        if self.n_frames * self.n_bins > MAX_SPECTROGRAM:
            raise ConfigError(
                f"spectrogram of {self.n_frames} frames x {self.n_bins} bins per clip exceeds "
                f"{MAX_SPECTROGRAM} values; use a larger hop_length or a shorter duration_s"
            )

    @property
    def n_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.sample_rate * self.duration_s))

    @property
    def n_frames(self) -> int:
        """Spectrogram frames T (311 for the defaults)."""
        return 1 + (self.n_samples - self.n_fft) // self.hop_length

    @property
    def n_bins(self) -> int:
        """Spectrogram frequency bins F (513 for the defaults)."""
        return self.n_fft // 2 + 1

    @property
    def n_spectrum_bins(self) -> int:
        """Whole-clip spectrum bins (80,000 for the defaults)."""
        return self.n_samples // 2

    def frame_times(self) -> torch.Tensor:
        """Centre time of every frame in seconds, shape (T,)."""
        idx = torch.arange(self.n_frames, dtype=torch.float64)
        return (idx * self.hop_length + self.n_fft / 2) / self.sample_rate

    def bin_frequencies(self) -> torch.Tensor:
        """Frequency of every bin in Hz, shape (F,)."""
        return torch.arange(self.n_bins, dtype=torch.float64) * self.sample_rate / self.n_fft

    def to_dict(self) -> dict:
        return config_to_dict(self)


def _as_batch(wave: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if wave.dim() == 1:
        return wave.unsqueeze(0), True
    if wave.dim() != 2:
        raise ConfigError(f"expected a waveform of shape (L,) or (B, L), got {tuple(wave.shape)}")
    return wave, False


def check_finite(
    values: torch.Tensor, what: str, *, names: Sequence[str] | None = None
) -> torch.Tensor:
    """Return ``values`` (B, ...) unchanged; raise when any row holds NaN or inf.

    Parameters
    ----------
    values : Tensor [shape=(B, ...)]
        A batch of per-clip values.
    what : str
        What the values are, for the message (e.g. ``"spectrogram"``).
    names : sequence of str, optional
        One name per row (the clip's path); without it the row is named by its index.

    Returns
    -------
    Tensor
        ``values``.

    Raises
    ------
    NonFiniteError
        One line naming the first clip whose values are not finite.
    """
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return values
    row = int(torch.nonzero(~finite.reshape(finite.shape[0], -1).all(dim=1))[0, 0])
    name = names[row] if names is not None else f"clip {row} of the batch"
    raise NonFiniteError(
        f"{name}: its {what} is not finite (NaN or inf); a float wav with samples far "
        "outside [-1, 1] overflows float32"
    )


def spectrogram(
    wave: torch.Tensor,
    *,
    cfg: FeatureConfig = FeatureConfig(),
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """Linear magnitude spectrogram.

    Parameters
    ----------
    wave : Tensor [shape=(B, L) or (L,)], float samples in [-1, 1]
    cfg : FeatureConfig
    names : sequence of str, optional
        The clips' names (paths), used in the error for a non-finite result.

    Returns
    -------
    Tensor [shape=(B, T, F) or (T, F)], linear magnitude, T = 1 + (L - n_fft) // hop

    Raises
    ------
    NonFiniteError
        The spectrogram of a clip is not finite (see :func:`check_finite`).
    """
    batch, squeeze = _as_batch(wave)
    window = torch.hann_window(cfg.n_fft, device=batch.device, dtype=batch.dtype)
    stft = torch.stft(
        batch,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=window,
        center=False,
        return_complex=True,
    )  # (B, F, T)
    spec = check_finite(
        stft.abs().transpose(1, 2).contiguous(), "spectrogram", names=names
    )  # (B, T, F)
    return spec[0] if squeeze else spec


def temporal_mean_normalise(spec: torch.Tensor) -> torch.Tensor:
    """Subtract each frequency bin's mean over time: ``spec - spec.mean(time)``.

    spec : Tensor [shape=(..., T, F)]; returns the same shape.
    """
    return spec - spec.mean(dim=-2, keepdim=True)


def spectrum(
    wave: torch.Tensor,
    *,
    cfg: FeatureConfig = FeatureConfig(),
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """Magnitude of the FFT of the whole clip, first half.

    Parameters
    ----------
    wave : Tensor [shape=(B, L) or (L,)]
    cfg : FeatureConfig
    names : sequence of str, optional
        The clips' names (paths), used in the error for a non-finite result.

    Returns
    -------
    Tensor [shape=(B, L // 2) or (L // 2,)]

    Raises
    ------
    NonFiniteError
        The spectrum of a clip is not finite (see :func:`check_finite`).
    """
    batch, squeeze = _as_batch(wave)
    half = batch.shape[-1] // 2
    spec = check_finite(torch.fft.rfft(batch, dim=-1).abs()[..., :half], "spectrum", names=names)
    return spec[0] if squeeze else spec


def log_spectrogram(spec: torch.Tensor, *, floor_db: float = -100.0) -> torch.Tensor:
    """Decibel view of a linear magnitude spectrogram (for plots): ``20 log10(max(|S|, floor))``."""
    floor = 10.0 ** (floor_db / 20.0)
    return 20.0 * torch.log10(spec.clamp_min(floor))
