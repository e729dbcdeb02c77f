"""Signal-domain masks: RISE's masks on a clip's complex STFT, resynthesised to a waveform.

FreqRISE-style masking for any waveform detector. The clip's complex STFT ``S`` on a stated
grid (Hann window, ``n_fft``, ``hop_length``, no centre padding; :func:`signal_grid` gives the
default, the STFT grid of the synthetic tree's ground truth, n_fft 1024 / hop 512) is computed
once; a mask ``M`` [shape=(B, T, F)] gives the waveform ``ISTFT(S ⊙ M)``, the inverse by
weighted overlap-add (frames times the window, divided by the summed squared window where it
exceeds 1e-8), zero-padded to the clip's length. Unlike masking a magnitude spectrogram, the
result is a real signal: neighbouring frames and bins leak into each other as they do in audio.
RISE masks an all-ones input (its masked input is then the mask itself) and scores
``detector.score(resynthesise(masks))``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..features import FeatureConfig

#: STFT size and hop of the default signal grid (that of the synthetic ground truth).
SIGNAL_N_FFT, SIGNAL_HOP = 1024, 512


def signal_grid(sample_rate: int, n_samples: int) -> FeatureConfig:
    """The default signal-domain grid of a clip: n_fft 1024, hop 512 at ``sample_rate``, for
    ``n_samples`` samples (at 16 kHz the grid of the synthetic tree's ground truth, so every
    map measure applies)."""
    return FeatureConfig(
        sample_rate=int(sample_rate), duration_s=n_samples / sample_rate,
        n_fft=SIGNAL_N_FFT, hop_length=SIGNAL_HOP,
    )  # fmt: skip


def stft_masking(wave: torch.Tensor, grid: FeatureConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """Masks on the complex STFT of ``wave`` -> resynthesised waveforms (see module docstring).

    Parameters
    ----------
    wave : Tensor [shape=(L,)], the clip
    grid : FeatureConfig, the STFT grid (``n_fft``, ``hop_length``; T = 1 + (L - n_fft) // hop,
        F = n_fft // 2 + 1)

    Returns
    -------
    callable, Tensor [shape=(B, T, F)] -> Tensor [shape=(B, L)] float32, on the masks' device
    """
    wave = torch.as_tensor(wave, dtype=torch.float32)
    n_fft, hop, n = grid.n_fft, grid.hop_length, wave.shape[-1]
    window = torch.hann_window(n_fft, device=wave.device)
    stft = torch.stft(wave, n_fft, hop, window=window, center=False, return_complex=True).T
    n_frames = stft.shape[0]
    length = n_fft + hop * (n_frames - 1)
    starts = torch.arange(n_frames, device=wave.device) * hop
    index = (starts[:, None] + torch.arange(n_fft, device=wave.device)[None]).reshape(-1)
    norm = torch.zeros(length, device=wave.device).index_add_(
        0, index, window.repeat(n_frames) ** 2
    )
    norm = torch.where(norm > 1e-8, norm, torch.ones_like(norm))

    def resynthesise(masks: torch.Tensor) -> torch.Tensor:
        dev = masks.device
        frames = torch.fft.irfft(stft.to(dev) * masks, n=n_fft, dim=-1) * window.to(dev)
        out = torch.zeros(masks.shape[0], n, device=dev, dtype=frames.dtype)
        out.index_add_(1, index.to(dev), frames.reshape(masks.shape[0], -1))
        out[:, :length] /= norm.to(dev)
        return out

    return resynthesise
