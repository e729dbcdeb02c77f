"""The normal reference for masking: the mean of normal clips' spectrograms, or the nearest one."""

import numpy as np
import pytest
import torch

from asdxai import FeatureConfig
from asdxai.data.audio import write_wav
from asdxai.errors import ConfigError
from asdxai.explain.reference import normal_reference
from asdxai.features import spectrogram

FEAT = FeatureConfig(duration_s=0.25)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("normal")
    rng = np.random.default_rng(0)
    t = np.arange(FEAT.n_samples) / FEAT.sample_rate
    paths = []
    for i, f0 in enumerate((300.0, 1200.0, 2500.0, 4000.0, 6000.0)):
        x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(t.size)
        paths.append(root / f"section_00_source_train_normal_{i:04d}_a_1.wav")
        write_wav(paths[-1], x.astype(np.float32), FEAT.sample_rate)
    return paths


def _specs(paths):
    from asdxai.data.audio import read_clip

    return spectrogram(torch.stack([torch.from_numpy(read_clip(p, FEAT)) for p in paths]), cfg=FEAT)


def test_mean_reference_is_the_cellwise_mean_whatever_the_batch(clips):
    expect = _specs(clips).mean(dim=0)
    for batch_size in (1, 2, 32):
        ref = normal_reference(clips, FEAT, batch_size=batch_size)
        assert ref.shape == (FEAT.n_frames, FEAT.n_bins) and ref.dtype == torch.float32
        torch.testing.assert_close(ref, expect, rtol=1e-5, atol=1e-6)


def test_nearest_reference_is_the_closest_clip(clips):
    specs = _specs(clips)
    for i in (0, 3):
        like = specs[i] * 1.05  # a slightly louder copy of clip i: nearest is clip i
        ref = normal_reference(clips, FEAT, kind="nearest", like=like, batch_size=2)
        torch.testing.assert_close(ref, specs[i])


def test_bad_options_raise(clips):
    with pytest.raises(ConfigError):
        normal_reference([], FEAT)
    with pytest.raises(ConfigError):
        normal_reference(clips, FEAT, kind="median")
    with pytest.raises(ConfigError):
        normal_reference(clips, FEAT, kind="nearest")  # no input to be near to
    with pytest.raises(ConfigError):
        normal_reference(clips, FEAT, batch_size=0)
