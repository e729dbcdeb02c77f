import re

import numpy as np
import pytest
import scipy.signal
import torch

from asdxai import ConfigError, FeatureConfig, spectrogram, spectrum, temporal_mean_normalise
from asdxai.errors import NonFiniteError


def test_default_shapes_match_the_study():
    cfg = FeatureConfig()
    shape = (cfg.n_samples, cfg.n_frames, cfg.n_bins, cfg.n_spectrum_bins)
    assert shape == (160_000, 311, 513, 80_000)
    wave = torch.randn(2, cfg.n_samples)
    assert spectrogram(wave, cfg=cfg).shape == (2, 311, 513)
    assert spectrum(wave, cfg=cfg).shape == (2, 80_000)


def test_spectrogram_matches_scipy_reference():
    cfg = FeatureConfig(duration_s=1.0)
    rng = np.random.default_rng(0)
    wave = rng.standard_normal(cfg.n_samples)
    _, _, ref = scipy.signal.stft(
        wave,
        window="hann",
        nperseg=1024,
        noverlap=512,
        nfft=1024,
        boundary=None,
        padded=False,
        detrend=False,
        scaling="spectrum",
    )
    # scipy scales by 1 / sum(window); undo it to get the plain |STFT|.
    ref = np.abs(ref).T * scipy.signal.get_window("hann", 1024).sum()
    ours = spectrogram(torch.from_numpy(wave), cfg=cfg).numpy()
    assert ours.shape == ref.shape == (cfg.n_frames, 513)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8)


def test_sine_peaks_in_its_bin():
    cfg = FeatureConfig(duration_s=1.0)
    t = torch.arange(cfg.n_samples, dtype=torch.float64) / cfg.sample_rate
    f0 = 100 * cfg.sample_rate / cfg.n_fft  # exactly bin 100
    spec = spectrogram(torch.sin(2 * torch.pi * f0 * t), cfg=cfg)
    assert (spec.argmax(dim=-1) == 100).all()
    full = spectrum(torch.sin(2 * torch.pi * f0 * t), cfg=cfg)
    assert full.argmax().item() == round(f0 * cfg.n_samples / cfg.sample_rate)


def test_spectrum_matches_numpy():
    wave = np.random.default_rng(1).standard_normal(4000)
    ref = np.abs(np.fft.rfft(wave))[:2000]
    np.testing.assert_allclose(spectrum(torch.from_numpy(wave)).numpy(), ref, rtol=1e-10)


def test_temporal_mean_normalisation_zero_mean_per_bin():
    spec = torch.rand(3, 50, 20) + torch.linspace(0, 5, 20)
    out = temporal_mean_normalise(spec)
    assert torch.allclose(out.mean(dim=1), torch.zeros(3, 20), atol=1e-6)
    assert torch.allclose(out[:, 1:] - out[:, :-1], spec[:, 1:] - spec[:, :-1], atol=1e-6)


def test_batched_equals_single():
    cfg = FeatureConfig(duration_s=0.5)
    wave = torch.randn(3, cfg.n_samples)
    batched = spectrogram(wave, cfg=cfg)
    for i in range(3):
        torch.testing.assert_close(batched[i], spectrogram(wave[i], cfg=cfg))


def test_bad_config_rejected():
    with pytest.raises(ConfigError):
        FeatureConfig(duration_s=0.01)
    with pytest.raises(ConfigError):
        spectrogram(torch.zeros(1, 1, 4000))


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"hop_length": 1}, "hop_length must lie in [64, 1024]"),
        ({"hop_length": 2048}, "hop_length must lie"),
        ({"n_fft": 16, "hop_length": 8}, "n_fft must lie in [32, 65536]"),
        ({"n_fft": 2**20, "hop_length": 2**19}, "n_fft must lie"),
        ({"sample_rate": 100}, "sample_rate must lie in [1000, 384000]"),
        ({"sample_rate": 10**9}, "sample_rate must lie"),
        ({"duration_s": 1e9}, "at most 16777216"),
        ({"duration_s": float("nan")}, "duration_s must be a positive number"),
        ({"duration_s": "10"}, "duration_s must be a positive number"),
        ({"n_fft": 1024.5}, "n_fft must be an integer"),
        ({"hop_length": True}, "hop_length must be an integer"),
        ({"sample_rate": 384_000, "duration_s": 40.0, "n_fft": 32, "hop_length": 2}, "exceeds"),
    ],
)
def test_settings_outside_sane_ranges_are_refused(settings, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        FeatureConfig(**settings)


def test_non_finite_features_name_the_clip():
    cfg = FeatureConfig(duration_s=0.5)
    wave = torch.zeros(2, cfg.n_samples)
    wave[1, :2000] = 3e38  # finite float32 samples whose sums overflow
    names = ["a.wav", "loud.wav"]
    with pytest.raises(NonFiniteError, match=r"^loud\.wav: its spectrogram is not finite"):
        spectrogram(wave, cfg=cfg, names=names)
    with pytest.raises(NonFiniteError, match=r"^loud\.wav: its spectrum is not finite"):
        spectrum(wave, cfg=cfg, names=names)
    with pytest.raises(NonFiniteError, match="clip 1 of the batch"):
        spectrogram(wave, cfg=cfg)
    assert torch.isfinite(spectrogram(wave[:1], cfg=cfg)).all()
