import numpy as np
import pytest
import torch

from asdxai import ConfigError, FeatureConfig
from asdxai.features import spectrogram
from asdxai.listen import complex_stft, overlap_add, resynthesise, soft_top_mask

CFG = FeatureConfig(duration_s=1.0)


def _snr_db(ref, est):
    return 10 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2))


def test_all_ones_mask_reproduces_clip_away_from_edges():
    wave = np.random.default_rng(0).standard_normal(CFG.n_samples) * 0.1
    ones = np.ones((CFG.n_frames, CFG.n_bins))
    out = resynthesise(wave, ones, cfg=CFG)
    inner = slice(CFG.n_fft, (CFG.n_frames - 1) * CFG.hop_length)
    assert _snr_db(wave[inner], out.flagged[inner]) >= 40
    np.testing.assert_allclose(out.rest, 0.0, atol=1e-12)


def test_flagged_plus_rest_is_linear_split():
    rng = np.random.default_rng(1)
    wave = rng.standard_normal(CFG.n_samples)
    mask = rng.random((CFG.n_frames, CFG.n_bins))
    out = resynthesise(wave, mask, cfg=CFG)
    full = resynthesise(wave, np.ones_like(mask), cfg=CFG).flagged
    np.testing.assert_allclose(out.flagged + out.rest, full, atol=1e-9)


def test_band_mask_removes_that_band():
    t = np.arange(CFG.n_samples) / CFG.sample_rate
    low, high = 250.0, 2000.0  # both exactly on bins 16 and 128
    wave = np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)
    mask = np.zeros((CFG.n_frames, CFG.n_bins))
    mask[:, 100:160] = 1.0  # the band around 2 kHz
    out = resynthesise(wave, mask, cfg=CFG)
    spec_rest = spectrogram(torch.from_numpy(out.rest), cfg=CFG)[2:-2]
    spec_flag = spectrogram(torch.from_numpy(out.flagged), cfg=CFG)[2:-2]
    # the 2 kHz tone is gone from "rest" (at least 40 dB down) and kept in "flagged"
    assert spec_rest[:, 128].max() < 1e-2 * spec_flag[:, 128].min()
    assert spec_flag[:, 16].max() < 1e-2 * spec_rest[:, 16].min()


def test_overlap_add_inverts_stft():
    wave = torch.randn(CFG.n_samples, dtype=torch.float64)
    back = overlap_add(complex_stft(wave, CFG), CFG, CFG.n_samples)
    inner = slice(CFG.hop_length, (CFG.n_frames - 1) * CFG.hop_length + CFG.hop_length)
    torch.testing.assert_close(back[inner], wave[inner])


def test_soft_top_mask_selects_top_share():
    imp = np.arange(100.0).reshape(10, 10)
    hard = soft_top_mask(imp, 10.0, smooth_cells=0)
    assert hard.sum() == 10 and hard[-1].all()
    soft = soft_top_mask(imp, 10.0, smooth_cells=1.0)
    assert soft.min() >= 0 and soft.max() <= 1 and soft[-1].mean() > soft[0].mean()
    with pytest.raises(ConfigError):
        soft_top_mask(imp, 0.0)
    with pytest.raises(ConfigError):
        resynthesise(np.zeros(CFG.n_samples), np.ones((3, 3)), cfg=CFG)
