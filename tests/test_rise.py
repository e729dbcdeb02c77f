"""RISE: analytic black boxes, determinism, batch / resume invariance, in-place safety."""

import logging

import numpy as np
import pytest
import torch

from asdxai.errors import ConfigError, ResultError
from asdxai.explain import RISE, RISEExecution, RISEMaskConfig, mask_second_moment
from asdxai.explain.faithfulness import pixel_auc

T, F = 40, 48
CFG = RISEMaskConfig(block_size=100)  # small blocks keep the tests fast


def _spec(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, F, generator=g) + 0.5


def _linear(seed: int = 1):
    w = torch.randn(T, F, generator=torch.Generator().manual_seed(seed))
    return w, (lambda x: (x * w).sum((1, 2)))


def _rectangle_box():
    rect = np.zeros((T, F), dtype=bool)
    rect[12:20, 30:38] = True
    r = torch.from_numpy(rect)
    return rect, (lambda x: x[:, r].mean(1))


def test_hidden_rectangle_is_found():
    rect, box = _rectangle_box()
    res = RISE(box, CFG).attribute(_spec(), n_masks=2000, seed=0)
    assert res.importance.shape == (T, F)
    assert res.importance.dtype == np.float64
    assert pixel_auc(res.importance, rect) >= 0.95
    top = np.argsort(res.importance.ravel())[-20:]
    assert rect.ravel()[top].mean() >= 0.9


def test_linear_box_converges_to_analytic_expectation():
    # score = <W, X ⊙ M>  =>  E[s M_ab] / E[M] = (C_t (W ⊙ X) C_f)_ab / p²,
    # C = E[t tᵀ] (exact, masks.mask_second_moment); t and f are independent.
    x = _spec()
    w, box = _linear()
    ct = mask_second_moment(CFG.time_cells, T, CFG.p_keep)
    cf = mask_second_moment(CFG.freq_cells, F, CFG.p_keep)
    expected = (ct @ (w * x).double() @ cf).numpy() / CFG.expected_value
    scale = np.linalg.norm(expected - expected.mean())
    for estimator in ("plain", "centered"):
        res = RISE(box, RISEMaskConfig(block_size=1000)).attribute(
            x, n_masks=24_000, seed=0, estimator=estimator, execution=RISEExecution(batch_size=1000)
        )
        err = np.linalg.norm(res.importance - expected) / scale
        assert err < 0.15, (estimator, err)
        assert res.agreement > 0.98


def test_centered_estimator_has_the_same_expectation():
    # a constant score: plain = c · Σ M / (N E[M]) (noisy around c), centred = exactly c
    box = lambda x: torch.full((x.shape[0],), 3.0)  # noqa: E731
    plain = RISE(box, CFG).attribute(_spec(), n_masks=500)
    centred = RISE(box, CFG).attribute(_spec(), n_masks=500, estimator="centered")
    assert centred.center == pytest.approx(3.0)
    np.testing.assert_allclose(centred.importance, 3.0, atol=1e-5)
    assert abs(plain.importance.mean() - 3.0) < 0.1


def test_same_seed_same_map_other_seed_other_map():
    _, box = _linear()
    a = RISE(box, CFG).attribute(_spec(), n_masks=300, seed=5)
    b = RISE(box, CFG).attribute(_spec(), n_masks=300, seed=5)
    c = RISE(box, CFG).attribute(_spec(), n_masks=300, seed=6)
    np.testing.assert_array_equal(a.importance, b.importance)
    assert not np.allclose(a.importance, c.importance)


@pytest.mark.parametrize("other", [7, 250])
def test_batch_size_does_not_change_the_map(other):
    _, box = _linear()
    ref = RISE(box, CFG).attribute(_spec(), n_masks=400, execution=RISEExecution(batch_size=64))
    res = RISE(box, CFG).attribute(_spec(), n_masks=400, execution=RISEExecution(batch_size=other))
    np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-5)
    assert res.n_masks == ref.n_masks == 400


def test_resumed_equals_uninterrupted():
    _, box = _linear()
    full = RISE(box, CFG).attribute(_spec(), n_masks=600, seed=2, estimator="centered")
    partial = []
    RISE(box, CFG).attribute(
        _spec(),
        n_masks=600,
        seed=2,
        estimator="centered",
        execution=RISEExecution(checkpoint=partial.append, checkpoint_every=200),
    )
    assert [p.next_block for p in partial] == [2, 4]
    assert not partial[0].complete
    resumed = RISE(box, CFG).attribute(
        _spec(),
        n_masks=600,
        seed=2,
        estimator="centered",
        resume_from=partial[0],
        execution=RISEExecution(batch_size=30),
    )
    np.testing.assert_allclose(resumed.importance, full.importance, rtol=1e-6, atol=1e-6)
    assert resumed.n_masks == 600 and resumed.complete


def test_resume_with_other_settings_is_refused():
    _, box = _linear()
    part = RISE(box, CFG).attribute(_spec(), n_masks=200, seed=2)
    with pytest.raises(ResultError, match="seed"):
        RISE(box, CFG).attribute(_spec(), n_masks=400, seed=3, resume_from=part)
    with pytest.raises(ResultError, match="mask settings"):
        RISE(box, RISEMaskConfig(block_size=100, p_keep=0.5)).attribute(
            _spec(), n_masks=400, seed=2, resume_from=part
        )


def test_score_fn_cannot_corrupt_the_result_in_place():
    _, box = _linear()
    ref = RISE(box, CFG).attribute(_spec(), n_masks=300)
    seen = []

    def vandal(x):
        s = box(x)
        seen.append(x.data_ptr())
        x.mul_(-1000.0).add_(7.0)  # wreck the batch it was given
        return s

    spec = _spec()
    before = spec.clone()
    res = RISE(vandal, CFG).attribute(spec, n_masks=300)
    np.testing.assert_array_equal(res.importance, ref.importance)
    assert torch.equal(spec, before)  # the caller's input is never touched
    np.testing.assert_array_equal(res.spectrogram, before.numpy())


@pytest.mark.parametrize("batch_size", [7, 100, 300])
def test_uses_exactly_n_masks_whatever_the_batch(batch_size):
    calls = []

    def counting(x):
        calls.append(x.shape[0])
        return x.mean((1, 2))

    res = RISE(counting, CFG).attribute(
        _spec(), n_masks=250, seed=4, execution=RISEExecution(batch_size=batch_size)
    )
    assert res.n_masks == res.n_masks_requested == 250 == sum(calls)
    assert (res.n_even, res.n_odd) == (150, 100)  # blocks 0, 2 (truncated to 50) and 1
    ref = RISE(counting, CFG).attribute(_spec(), n_masks=250, seed=4)
    np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-6)
    # the first 250 masks of a longer run are the same masks: 300 masks differ by 50 only
    longer = RISE(counting, CFG).attribute(_spec(), n_masks=300, seed=4)
    e = CFG.expected_value
    diff = longer.importance * 300 * e - res.importance * 250 * e
    assert np.abs(diff).max() > 0


def test_truncated_result_cannot_be_extended():
    _, box = _linear()
    part = RISE(box, CFG).attribute(_spec(), n_masks=250, seed=1)
    with pytest.raises(ResultError, match="truncated"):
        RISE(box, CFG).attribute(_spec(), n_masks=400, seed=1, resume_from=part)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (dict(n_even=1234), "block counters"),
        (dict(next_block=-1), "block counters"),
        (dict(score_sum=float("nan")), "score sums"),
    ],
)
def test_damaged_partial_state_is_refused(damage, reason):
    import dataclasses

    _, box = _linear()
    part = RISE(box, CFG).attribute(_spec(), n_masks=200, seed=1)
    bad = dataclasses.replace(part, complete=False, **damage)
    with pytest.raises(ResultError, match=reason):
        RISE(box, CFG).attribute(_spec(), n_masks=400, seed=1, resume_from=bad)
    nan_sums = dataclasses.replace(part, sum_even=part.sum_even * np.nan)
    with pytest.raises(ResultError, match="running sums"):
        RISE(box, CFG).attribute(_spec(), n_masks=400, seed=1, resume_from=nan_sums)


def test_until_agreement_stops_at_a_block_boundary():
    rect, box = _rectangle_box()
    res = RISE(box, CFG).attribute(
        _spec(), n_masks=20_000, until_agreement=0.9, execution=RISEExecution(batch_size=300)
    )
    assert res.stopped_early and res.agreement >= 0.9
    assert res.n_masks < 20_000 and res.n_masks % CFG.block_size == 0  # stops at block ends
    again = RISE(box, CFG).attribute(
        _spec(), n_masks=20_000, until_agreement=0.9, execution=RISEExecution(batch_size=7)
    )
    assert again.n_masks == res.n_masks  # the stopping point does not depend on the batch


def test_fill_value_and_numpy_input():
    box = lambda x: x.mean((1, 2))  # noqa: E731
    spec = np.zeros((T, F), dtype=np.float64)
    res = RISE(box, RISEMaskConfig(block_size=100, fill=2.0)).attribute(spec, n_masks=200)
    # masked input = 2 (1 − M): the mean score falls where M is high -> map ≈ constant; finite
    assert np.isfinite(res.importance).all()
    assert res.mean_score == pytest.approx(2 * (1 - 0.5625), abs=0.05)


def test_bf16_precision_runs_close_to_fp32():
    _, box = _linear()
    a = RISE(box, CFG).attribute(_spec(), n_masks=200)
    b = RISE(box, CFG).attribute(_spec(), n_masks=200, execution=RISEExecution(precision="bf16"))
    assert np.corrcoef(a.importance.ravel(), b.importance.ravel())[0, 1] > 0.99


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_masks": 0},
        {"n_masks": 2.5},
        {"seed": -1},
        {"execution": RISEExecution(batch_size=0)},
        {"execution": RISEExecution(precision="fp8")},
        {"estimator": "fancy"},
        {"until_agreement": 1.5},
        {"execution": RISEExecution(checkpoint_every=-2)},
    ],
)
def test_bad_options_raise(kwargs):
    _, box = _linear()
    with pytest.raises(ConfigError):
        RISE(box, CFG).attribute(_spec(), **kwargs)


def test_bad_inputs_and_score_functions_raise():
    _, box = _linear()
    with pytest.raises(ConfigError):
        RISE(box, CFG).attribute(torch.zeros(2, T, F), n_masks=100)
    with pytest.raises(ConfigError):
        RISE(box, CFG).attribute(torch.zeros(10, F), n_masks=100)  # 10 frames < 20 cells
    with pytest.raises(ConfigError):
        RISE(lambda x: torch.zeros(3), CFG).attribute(_spec(), n_masks=100)
    with pytest.raises(ConfigError):
        RISE(lambda x: x.sum((1, 2)) * float("nan"), CFG).attribute(_spec(), n_masks=100)
    with pytest.raises(ConfigError):
        RISE("not callable")  # type: ignore[arg-type]


def test_out_of_memory_halves_the_batch(caplog):
    _, box = _linear()

    def picky(x):
        if x.shape[0] > 30:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")
        return box(x)

    ref = RISE(box, CFG).attribute(_spec(), n_masks=200, execution=RISEExecution(batch_size=25))
    with caplog.at_level(logging.WARNING, logger="asdxai.explain.rise"):
        res = RISE(picky, CFG).attribute(
            _spec(), n_masks=200, execution=RISEExecution(batch_size=200)
        )
    assert "batch size halved to 25" in caplog.text
    np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- mask modes
MODE_CFG = {"time_cells": 10, "freq_cells": 12, "block_size": 100}


def _region_box(rect: np.ndarray):
    r = torch.from_numpy(rect)
    return lambda x: x[:, r].mean(1)


def _region(mode: str) -> np.ndarray:
    """A hidden region the mode can resolve: frames (time), bins (freq), a rectangle."""
    rect = np.zeros((T, F), dtype=bool)
    if mode == "time":
        rect[12:20, :] = True
    elif mode == "freq":
        rect[:, 30:38] = True
    else:
        rect[12:20, 30:38] = True
    return rect


@pytest.mark.parametrize("mode", ["separable", "time", "freq", "grid"])
def test_every_mode_finds_its_hidden_region(mode):
    rect = _region(mode)
    cfg = RISEMaskConfig(mode=mode, **MODE_CFG)
    res = RISE(_region_box(rect), cfg).attribute(_spec(), n_masks=1500, seed=0)
    assert res.importance.shape == (T, F)
    assert res.expected_mask == pytest.approx(cfg.expected_value)
    assert pixel_auc(res.importance, rect) >= 0.95, mode
    if mode == "time":  # time masks carry no frequency information: rows are constant
        assert np.ptp(res.importance, axis=1).max() < 1e-9 * max(1.0, np.abs(res.importance).max())


def test_grid_single_cell_box_peaks_at_that_cell():
    # s = X_c M_c  =>  E[s M_ab] / E[M] = X_c E[M_c M_ab] / p: largest at ab = c, where
    # E[M_c²] / p ≥ (E[M_c])² / p = p, so the map there is ≥ p X_c (up to noise)
    x = _spec()
    cell = (25, 9)
    box = lambda z: z[:, cell[0], cell[1]]  # noqa: E731
    res = RISE(box, RISEMaskConfig(mode="grid", **MODE_CFG)).attribute(x, n_masks=3000)
    assert np.unravel_index(np.argmax(res.importance), (T, F)) == cell
    assert res.importance[cell] >= 0.9 * float(x[cell]) * 0.75


@pytest.mark.parametrize("other", [7, 250])
def test_grid_batch_size_does_not_change_the_map(other):
    _, box = _linear()
    cfg = RISEMaskConfig(mode="grid", **MODE_CFG)
    ref = RISE(box, cfg).attribute(_spec(), n_masks=400, execution=RISEExecution(batch_size=64))
    res = RISE(box, cfg).attribute(_spec(), n_masks=400, execution=RISEExecution(batch_size=other))
    np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-5)


def test_grid_same_seed_same_map_and_differs_from_separable():
    _, box = _linear()
    cfg = RISEMaskConfig(mode="grid", **MODE_CFG)
    a = RISE(box, cfg).attribute(_spec(), n_masks=200, seed=5)
    b = RISE(box, cfg).attribute(_spec(), n_masks=200, seed=5)
    c = RISE(box, cfg).attribute(_spec(), n_masks=200, seed=6)
    sep = RISE(box, RISEMaskConfig(**MODE_CFG)).attribute(_spec(), n_masks=200, seed=5)
    np.testing.assert_array_equal(a.importance, b.importance)
    assert not np.allclose(a.importance, c.importance)
    assert not np.allclose(a.importance, sep.importance)


@pytest.mark.parametrize("mode", ["grid", "time"])
def test_mode_resumed_equals_uninterrupted(mode):
    _, box = _linear()
    cfg = RISEMaskConfig(mode=mode, **MODE_CFG)
    full = RISE(box, cfg).attribute(_spec(), n_masks=500, seed=2, estimator="centered")
    partial = []
    RISE(box, cfg).attribute(
        _spec(),
        n_masks=500,
        seed=2,
        estimator="centered",
        execution=RISEExecution(checkpoint=partial.append, checkpoint_every=200),
    )
    resumed = RISE(box, cfg).attribute(
        _spec(),
        n_masks=500,
        seed=2,
        estimator="centered",
        resume_from=partial[0],
        execution=RISEExecution(batch_size=30),
    )
    np.testing.assert_allclose(resumed.importance, full.importance, rtol=1e-6, atol=1e-6)
    # a partial run of one mode cannot be continued in another
    with pytest.raises(ResultError, match="mask settings"):
        RISE(box, RISEMaskConfig(**MODE_CFG)).attribute(
            _spec(), n_masks=500, seed=2, estimator="centered", resume_from=partial[0]
        )


def test_grid_score_fn_cannot_corrupt_the_result_in_place():
    _, box = _linear()
    cfg = RISEMaskConfig(mode="grid", **MODE_CFG)
    ref = RISE(box, cfg).attribute(_spec(), n_masks=200)

    def vandal(x):
        s = box(x)
        x.mul_(-1000.0).add_(7.0)
        return s

    res = RISE(vandal, cfg).attribute(_spec(), n_masks=200)
    np.testing.assert_array_equal(res.importance, ref.importance)


def test_freq_masks_of_a_temporal_mean_normalised_model_ignore_the_fill():
    """A whole masked frequency bin is constant over time, and the spectrogram branch subtracts
    each bin's temporal mean first, so the fill value cannot change a frequency-only map
    (figures/focus_factors.py found freq/silence and freq/mean maps identical)."""
    from asdxai import FeatureConfig
    from asdxai.nets import NetConfig, build_encoder, encoder_inputs

    feat = FeatureConfig(duration_s=0.5)
    torch.manual_seed(0)
    enc = build_encoder(NetConfig(arch="spectrogram", width=0.125), feat).eval()
    spec = encoder_inputs(torch.randn(1, feat.n_samples), feat, "spectrogram")["spec"][0]
    direction = torch.randn(enc(spec[None]).shape[-1])

    def score_fn(x):
        with torch.no_grad():
            return enc(x) @ direction

    maps = []
    for fill in (0.0, float(spec.mean()), 3.0):
        cfg = RISEMaskConfig(time_cells=4, freq_cells=8, mode="freq", fill=fill)
        res = RISE(score_fn, cfg).attribute(spec, n_masks=200, seed=1)
        maps.append(res.importance)
    np.testing.assert_allclose(maps[0], maps[1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps[0], maps[2], rtol=1e-4, atol=1e-6)
    # separable masks keep part of each bin, so there the fill does matter
    sep = [
        RISE(score_fn, RISEMaskConfig(time_cells=4, freq_cells=8, fill=fill))
        .attribute(spec, n_masks=200, seed=1)
        .importance
        for fill in (0.0, 3.0)
    ]
    assert not np.allclose(sep[0], sep[1], rtol=1e-3, atol=1e-6)


def test_a_reference_fill_replaces_the_masked_cells_by_its_own():
    """X·M + R·(1 − M): the map of ``fill=R`` is the map of X − R under the box shifted by R,
    a constant reference is the scalar fill, and a wrong shape is refused."""
    spec, ref = _spec(0), _spec(5)
    _, box = _linear()
    with_ref = RISE(box, CFG).attribute(spec, n_masks=300, seed=3, fill=ref)
    shifted = RISE(lambda z: box(z + ref), CFG).attribute(spec - ref, n_masks=300, seed=3)
    np.testing.assert_allclose(with_ref.importance, shifted.importance, rtol=1e-4, atol=1e-4)
    assert with_ref.meta["fill"] == "reference"
    scalar = RISE(box, RISEMaskConfig(block_size=100, fill=0.7)).attribute(spec, n_masks=300)
    const = RISE(box, CFG).attribute(spec, n_masks=300, fill=torch.full((T, F), 0.7))
    np.testing.assert_allclose(const.importance, scalar.importance, rtol=1e-4, atol=1e-4)
    assert not np.allclose(with_ref.importance, scalar.importance, atol=1e-2)
    with pytest.raises(ConfigError):
        RISE(box, CFG).attribute(spec, n_masks=100, fill=ref[:, :-1])
