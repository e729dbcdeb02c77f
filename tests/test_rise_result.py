"""RISE .h5 round trip, resume checks and the importance figure."""

import h5py
import numpy as np
import pytest
import torch

from asdxai._io import sha256_file
from asdxai.errors import ResultError
from asdxai.explain import RISE, RISEExecution, RISEMaskConfig
from asdxai.explain.result import (
    check_resumable,
    load_log_spectrogram,
    load_result,
    save_result,
)
from asdxai.features import FeatureConfig
from asdxai.plots.rise import plot_importance

T, F = 40, 48
CFG = RISEMaskConfig(block_size=100, fill=0.0)


def _result(**kw):
    g = torch.Generator().manual_seed(0)
    spec = torch.rand(T, F, generator=g)
    box = lambda x: x[:, 10:20, 5:15].mean((1, 2))  # noqa: E731
    return RISE(box, mask_config=CFG).attribute(spec, n_masks=200, seed=3, **kw)


def test_h5_round_trip(tmp_path):
    res = _result(estimator="centered", until_agreement=0.5)
    res.meta.update(clip="/x/a.wav", section="fan_section_00", checkpoint_sha256="ab")
    logspec = np.log(res.spectrogram + 1e-3)
    path = save_result(tmp_path / "sub" / "a.h5", res, log_spectrogram=logspec,
                       provenance={"torch_version": torch.__version__})  # fmt: skip
    back = load_result(path)
    np.testing.assert_array_equal(back.importance, res.importance)
    np.testing.assert_array_equal(back.sum_even, res.sum_even)
    np.testing.assert_array_equal(back.spectrogram, res.spectrogram)
    np.testing.assert_array_equal(load_log_spectrogram(path), logspec.astype(np.float32))
    names = ("n_masks", "seed", "estimator", "center", "next_block", "n_even", "n_odd")
    names += ("score_sum", "complete", "mask_config", "expected_mask", "until_agreement")
    for name in names:
        assert getattr(back, name) == getattr(res, name), name
    assert back.meta["clip"] == "/x/a.wav"
    assert back.meta["provenance"]["torch_version"] == torch.__version__
    assert not list(tmp_path.glob("sub/.*part"))  # no temporary files left
    with h5py.File(path) as h5:
        assert h5["mask_config"].attrs["time_cells"] == 20


def test_resume_from_file_continues(tmp_path):
    g = torch.Generator().manual_seed(0)
    spec = torch.rand(T, F, generator=g)
    box = lambda x: x[:, 10:20, 5:15].mean((1, 2))  # noqa: E731
    full = RISE(box, mask_config=CFG).attribute(spec, n_masks=400, seed=1)
    path = tmp_path / "p.h5"
    RISE(box, mask_config=CFG).attribute(
        spec,
        n_masks=400,
        seed=1,
        execution=RISEExecution(checkpoint=lambda r: save_result(path, r), checkpoint_every=200),
    )
    part = load_result(path)
    assert not part.complete and part.next_block == 2
    res = RISE(box, mask_config=CFG).attribute(spec, n_masks=400, seed=1, resume_from=part)
    np.testing.assert_allclose(res.importance, full.importance, rtol=1e-6, atol=1e-6)


def test_check_resumable_and_bad_files(tmp_path):
    res = _result()
    res.meta["clip"] = "/x/a.wav"
    check_resumable(res, mask_config=CFG, seed=3, estimator="plain", meta={"clip": "/x/a.wav"})
    with pytest.raises(ResultError, match="clip"):
        check_resumable(res, mask_config=CFG, seed=3, estimator="plain", meta={"clip": "/x/b.wav"})
    with pytest.raises(ResultError, match="seed"):
        check_resumable(res, mask_config=CFG, seed=4, estimator="plain")
    with pytest.raises(ResultError):
        load_result(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ResultError):
        load_result(junk)
    assert len(sha256_file(junk)) == 64


def test_plot_importance_is_headless():
    res = _result()
    cfg = FeatureConfig(duration_s=1.3)  # 39 frames; a 40-frame map is spread evenly
    fig = plot_importance(np.log(res.spectrogram + 1e-3), res.importance, cfg=cfg, title="clip")
    axes = fig.axes
    assert len(axes) == 4  # two panels + two colour bars
    assert axes[0].get_xlabel() == "time (s)" and axes[0].get_ylabel() == "frequency (Hz)"
    assert axes[1].images[0].get_cmap().name == "viridis"
