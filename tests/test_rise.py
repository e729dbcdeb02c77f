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
    res = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=2000, seed=0)
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
        res = RISE(box, mask_config=RISEMaskConfig(block_size=1000)).attribute(
            x, n_masks=24_000, seed=0, estimator=estimator, execution=RISEExecution(batch_size=1000)
        )
        err = np.linalg.norm(res.importance - expected) / scale
        assert err < 0.15, (estimator, err)
        assert res.agreement > 0.98


def test_centered_estimator_has_the_same_expectation():
    # a constant score: plain = c · Σ M / (N E[M]) (noisy around c), centred = exactly c
    box = lambda x: torch.full((x.shape[0],), 3.0)  # noqa: E731
    plain = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=500)
    centred = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=500, estimator="centered")
    assert centred.center == pytest.approx(3.0)
    np.testing.assert_allclose(centred.importance, 3.0, atol=1e-5)
    assert abs(plain.importance.mean() - 3.0) < 0.1


def test_same_seed_same_map_other_seed_other_map():
    _, box = _linear()
    a = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=300, seed=5)
    b = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=300, seed=5)
    c = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=300, seed=6)
    np.testing.assert_array_equal(a.importance, b.importance)
    assert not np.allclose(a.importance, c.importance)


@pytest.mark.parametrize("other", [7, 250])
def test_batch_size_does_not_change_the_map(other):
    _, box = _linear()
    ref = RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=400, execution=RISEExecution(batch_size=64)
    )
    res = RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=400, execution=RISEExecution(batch_size=other)
    )
    np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-5)
    assert res.n_masks == ref.n_masks == 400


def test_resumed_equals_uninterrupted():
    _, box = _linear()
    full = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=600, seed=2, estimator="centered")
    partial = []
    RISE(box, mask_config=CFG).attribute(
        _spec(),
        n_masks=600,
        seed=2,
        estimator="centered",
        execution=RISEExecution(checkpoint=partial.append, checkpoint_every=200),
    )
    assert [p.next_block for p in partial] == [2, 4]
    assert not partial[0].complete
    resumed = RISE(box, mask_config=CFG).attribute(
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
    part = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=200, seed=2)
    with pytest.raises(ResultError, match="seed"):
        RISE(box, mask_config=CFG).attribute(_spec(), n_masks=400, seed=3, resume_from=part)
    with pytest.raises(ResultError, match="mask settings"):
        RISE(box, mask_config=RISEMaskConfig(block_size=100, p_keep=0.5)).attribute(
            _spec(), n_masks=400, seed=2, resume_from=part
        )


def test_score_fn_cannot_corrupt_the_result_in_place():
    _, box = _linear()
    ref = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=300)
    seen = []

    def vandal(x):
        s = box(x)
        seen.append(x.data_ptr())
        x.mul_(-1000.0).add_(7.0)  # wreck the batch it was given
        return s

    spec = _spec()
    before = spec.clone()
    res = RISE(vandal, mask_config=CFG).attribute(spec, n_masks=300)
    np.testing.assert_array_equal(res.importance, ref.importance)
    assert torch.equal(spec, before)  # the caller's input is never touched
    np.testing.assert_array_equal(res.spectrogram, before.numpy())


@pytest.mark.parametrize("batch_size", [7, 100, 300])
def test_uses_exactly_n_masks_whatever_the_batch(batch_size):
    calls = []

    def counting(x):
        calls.append(x.shape[0])
        return x.mean((1, 2))

    res = RISE(counting, mask_config=CFG).attribute(
        _spec(), n_masks=250, seed=4, execution=RISEExecution(batch_size=batch_size)
    )
    assert res.n_masks == res.n_masks_requested == 250 == sum(calls)
    assert (res.n_even, res.n_odd) == (150, 100)  # blocks 0, 2 (truncated to 50) and 1
    ref = RISE(counting, mask_config=CFG).attribute(_spec(), n_masks=250, seed=4)
    np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-6)
    # the first 250 masks of a longer run are the same masks: 300 masks differ by 50 only
    longer = RISE(counting, mask_config=CFG).attribute(_spec(), n_masks=300, seed=4)
    e = CFG.expected_value
    diff = longer.importance * 300 * e - res.importance * 250 * e
    assert np.abs(diff).max() > 0


def test_truncated_result_cannot_be_extended():
    _, box = _linear()
    part = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=250, seed=1)
    with pytest.raises(ResultError, match="truncated"):
        RISE(box, mask_config=CFG).attribute(_spec(), n_masks=400, seed=1, resume_from=part)


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
    part = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=200, seed=1)
    bad = dataclasses.replace(part, complete=False, **damage)
    with pytest.raises(ResultError, match=reason):
        RISE(box, mask_config=CFG).attribute(_spec(), n_masks=400, seed=1, resume_from=bad)
    nan_sums = dataclasses.replace(part, sum_even=part.sum_even * np.nan)
    with pytest.raises(ResultError, match="running sums"):
        RISE(box, mask_config=CFG).attribute(_spec(), n_masks=400, seed=1, resume_from=nan_sums)


def test_until_agreement_stops_at_a_block_boundary():
    rect, box = _rectangle_box()
    res = RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=20_000, until_agreement=0.9, execution=RISEExecution(batch_size=300)
    )
    assert res.stopped_early and res.agreement >= 0.9
    assert res.n_masks < 20_000 and res.n_masks % CFG.block_size == 0  # stops at block ends
    again = RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=20_000, until_agreement=0.9, execution=RISEExecution(batch_size=7)
    )
    assert again.n_masks == res.n_masks  # the stopping point does not depend on the batch


def test_fill_value_and_numpy_input():
    box = lambda x: x.mean((1, 2))  # noqa: E731
    spec = np.zeros((T, F), dtype=np.float64)
    res = RISE(box, mask_config=RISEMaskConfig(block_size=100, fill=2.0)).attribute(
        spec, n_masks=200
    )
    # masked input = 2 (1 − M): the mean score falls where M is high -> map ≈ constant; finite
    assert np.isfinite(res.importance).all()
    assert res.mean_score == pytest.approx(2 * (1 - 0.5625), abs=0.05)


def test_bf16_precision_runs_close_to_fp32():
    _, box = _linear()
    a = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=200)
    b = RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=200, execution=RISEExecution(precision="bf16")
    )
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
        RISE(box, mask_config=CFG).attribute(_spec(), **kwargs)


def test_bad_inputs_and_score_functions_raise():
    _, box = _linear()
    with pytest.raises(ConfigError):
        RISE(box, mask_config=CFG).attribute(torch.zeros(2, T, F), n_masks=100)
    with pytest.raises(ConfigError):
        RISE(box, mask_config=CFG).attribute(
            torch.zeros(10, F), n_masks=100
        )  # 10 frames < 20 cells
    with pytest.raises(ConfigError):
        RISE(lambda x: torch.zeros(3), mask_config=CFG).attribute(_spec(), n_masks=100)
    with pytest.raises(ConfigError):
        RISE(lambda x: x.sum((1, 2)) * float("nan"), mask_config=CFG).attribute(
            _spec(), n_masks=100
        )
    with pytest.raises(ConfigError):
        RISE("not callable")  # type: ignore[arg-type]


def test_out_of_memory_halves_the_batch(caplog):
    _, box = _linear()

    def picky(x):
        if x.shape[0] > 30:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")
        return box(x)

    ref = RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=200, execution=RISEExecution(batch_size=25)
    )
    with caplog.at_level(logging.WARNING, logger="asdxai.explain.rise"):
        res = RISE(picky, mask_config=CFG).attribute(
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
    res = RISE(_region_box(rect), mask_config=cfg).attribute(_spec(), n_masks=1500, seed=0)
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
    res = RISE(box, mask_config=RISEMaskConfig(mode="grid", **MODE_CFG)).attribute(x, n_masks=3000)
    assert np.unravel_index(np.argmax(res.importance), (T, F)) == cell
    assert res.importance[cell] >= 0.9 * float(x[cell]) * 0.75


@pytest.mark.parametrize("other", [7, 250])
def test_grid_batch_size_does_not_change_the_map(other):
    _, box = _linear()
    cfg = RISEMaskConfig(mode="grid", **MODE_CFG)
    ref = RISE(box, mask_config=cfg).attribute(
        _spec(), n_masks=400, execution=RISEExecution(batch_size=64)
    )
    res = RISE(box, mask_config=cfg).attribute(
        _spec(), n_masks=400, execution=RISEExecution(batch_size=other)
    )
    np.testing.assert_allclose(res.importance, ref.importance, rtol=1e-5, atol=1e-5)


def test_grid_same_seed_same_map_and_differs_from_separable():
    _, box = _linear()
    cfg = RISEMaskConfig(mode="grid", **MODE_CFG)
    a = RISE(box, mask_config=cfg).attribute(_spec(), n_masks=200, seed=5)
    b = RISE(box, mask_config=cfg).attribute(_spec(), n_masks=200, seed=5)
    c = RISE(box, mask_config=cfg).attribute(_spec(), n_masks=200, seed=6)
    sep = RISE(box, mask_config=RISEMaskConfig(**MODE_CFG)).attribute(_spec(), n_masks=200, seed=5)
    np.testing.assert_array_equal(a.importance, b.importance)
    assert not np.allclose(a.importance, c.importance)
    assert not np.allclose(a.importance, sep.importance)


@pytest.mark.parametrize("mode", ["grid", "time"])
def test_mode_resumed_equals_uninterrupted(mode):
    _, box = _linear()
    cfg = RISEMaskConfig(mode=mode, **MODE_CFG)
    full = RISE(box, mask_config=cfg).attribute(_spec(), n_masks=500, seed=2, estimator="centered")
    partial = []
    RISE(box, mask_config=cfg).attribute(
        _spec(),
        n_masks=500,
        seed=2,
        estimator="centered",
        execution=RISEExecution(checkpoint=partial.append, checkpoint_every=200),
    )
    resumed = RISE(box, mask_config=cfg).attribute(
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
        RISE(box, mask_config=RISEMaskConfig(**MODE_CFG)).attribute(
            _spec(), n_masks=500, seed=2, estimator="centered", resume_from=partial[0]
        )


def test_grid_score_fn_cannot_corrupt_the_result_in_place():
    _, box = _linear()
    cfg = RISEMaskConfig(mode="grid", **MODE_CFG)
    ref = RISE(box, mask_config=cfg).attribute(_spec(), n_masks=200)

    def vandal(x):
        s = box(x)
        x.mul_(-1000.0).add_(7.0)
        return s

    res = RISE(vandal, mask_config=cfg).attribute(_spec(), n_masks=200)
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
    spec = encoder_inputs(torch.randn(1, feat.n_samples), feat, arch="spectrogram")["spec"][0]
    direction = torch.randn(enc(spec[None]).shape[-1])

    def score_fn(x):
        with torch.no_grad():
            return enc(x) @ direction

    maps = []
    for fill in (0.0, float(spec.mean()), 3.0):
        cfg = RISEMaskConfig(time_cells=4, freq_cells=8, mode="freq", fill=fill)
        res = RISE(score_fn, mask_config=cfg).attribute(spec, n_masks=200, seed=1)
        maps.append(res.importance)
    np.testing.assert_allclose(maps[0], maps[1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps[0], maps[2], rtol=1e-4, atol=1e-6)
    # separable masks keep part of each bin, so there the fill does matter
    sep = [
        RISE(score_fn, mask_config=RISEMaskConfig(time_cells=4, freq_cells=8, fill=fill))
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
    with_ref = RISE(box, mask_config=CFG).attribute(spec, n_masks=300, seed=3, fill=ref)
    shifted = RISE(lambda z: box(z + ref), mask_config=CFG).attribute(
        spec - ref, n_masks=300, seed=3
    )
    np.testing.assert_allclose(with_ref.importance, shifted.importance, rtol=1e-4, atol=1e-4)
    assert with_ref.meta["fill"] == "reference"
    scalar = RISE(box, mask_config=RISEMaskConfig(block_size=100, fill=0.7)).attribute(
        spec, n_masks=300
    )
    const = RISE(box, mask_config=CFG).attribute(spec, n_masks=300, fill=torch.full((T, F), 0.7))
    np.testing.assert_allclose(const.importance, scalar.importance, rtol=1e-4, atol=1e-4)
    assert not np.allclose(with_ref.importance, scalar.importance, atol=1e-2)
    with pytest.raises(ConfigError):
        RISE(box, mask_config=CFG).attribute(spec, n_masks=100, fill=ref[:, :-1])


# ---------------------------------------------------------------- variance reduction
SAMPLINGS = ("antithetic", "latin", "latin-antithetic")
NEW = [("plain", s) for s in ("iid",) + SAMPLINGS] + [("cv", s) for s in ("iid", *SAMPLINGS)]


def _analytic_linear(x, w):
    ct = mask_second_moment(CFG.time_cells, T, CFG.p_keep)
    cf = mask_second_moment(CFG.freq_cells, F, CFG.p_keep)
    return (ct @ (w * x).double() @ cf).numpy() / CFG.expected_value


@pytest.mark.parametrize("estimator,sampling", NEW)
def test_variance_reduction_keeps_the_expectation(estimator, sampling):
    # the mean over seeds converges to the plain estimator's analytic expectation
    x = _spec()
    w, box = _linear()
    expected = _analytic_linear(x, w)
    scale = np.linalg.norm(expected - expected.mean())
    cfg = RISEMaskConfig(block_size=500, sampling=sampling)
    maps = [
        RISE(box, mask_config=cfg)
        .attribute(
            x, n_masks=5000, seed=seed, estimator=estimator, execution=RISEExecution(batch_size=500)
        )
        .importance
        for seed in range(8)
    ]
    err = np.linalg.norm(np.mean(maps, 0) - expected) / scale
    assert err < 0.1, err  # the study's plain iid estimator: 0.076 here


def test_a_biased_sampling_would_fail_the_expectation_test():
    # the test above can fail: complementing iid cells (keep 1 − p) moves the map far away
    x = _spec()
    w, box = _linear()
    expected = _analytic_linear(x, w)
    scale = np.linalg.norm(expected - expected.mean())
    res = RISE(box, mask_config=RISEMaskConfig(block_size=500, p_keep=0.25)).attribute(
        x, n_masks=2000
    )
    assert np.linalg.norm(res.importance - expected) / scale > 0.5


def test_coupled_samplings_keep_every_marginal():
    from asdxai.explain.masks import coupled_uniforms

    for sampling in SAMPLINGS:
        u = coupled_uniforms(4001, 3, sampling=sampling, gen=torch.Generator().manual_seed(0))
        assert u.shape == (4001, 3) and (u >= 0).all() and (u < 1).all()
        hist = torch.histc(u.float(), bins=10, min=0, max=1) / u.numel()
        assert (hist - 0.1).abs().max() < 0.01, sampling
    u = coupled_uniforms(8, 2, sampling="antithetic", gen=torch.Generator().manual_seed(0))
    torch.testing.assert_close(u[0] + u[2], torch.ones(2, dtype=torch.float64))  # fold 0 pair
    torch.testing.assert_close(u[1] + u[3], torch.ones(2, dtype=torch.float64))  # fold 1 pair
    lat = coupled_uniforms(10, 4, sampling="latin", gen=torch.Generator().manual_seed(0))
    strata = (lat[0::2] * 5).floor().sort(0).values  # fold 0: one u per fifth of [0, 1)
    torch.testing.assert_close(strata, torch.arange(5.0, dtype=torch.float64)[:, None].expand(5, 4))


@pytest.mark.parametrize("mode", ["separable", "time", "freq"])
def test_cv_surrogate_expectations_are_exact(mode):
    # E[z_k M] of every feature (constant, pooled profiles, their squares) against a
    # Monte-Carlo average of 40,000 masks (standard error ~0.002)
    from asdxai.explain.masks import block_masks, draw_block
    from asdxai.explain.surrogate import Surrogate

    cfg = RISEMaskConfig(mode=mode, time_cells=4, freq_cells=5, block_size=40_000)
    shape = (12, 15)
    sur = Surrogate.for_masks(cfg, shape)
    masks = block_masks(draw_block(cfg, shape, seed=0, block=0), shape)
    z = sur.features(masks)
    assert z.shape == (len(masks), sur.n_features)
    assert sur.n_features == 1 + 2 * (8 * (mode != "freq") + 10 * (mode != "time"))
    empirical = torch.einsum("bk,bt,bf->ktf", z, masks.t.double(), masks.f.double()) / len(masks)
    for k in range(sur.n_features):
        beta = np.zeros(sur.n_features)
        beta[k] = 1.0
        assert np.abs(sur.expected_map(beta) - empirical[k].numpy()).max() < 0.012, k
    # linear in β
    beta = np.random.default_rng(0).normal(size=sur.n_features)
    combo = np.tensordot(beta, empirical.numpy(), 1)
    np.testing.assert_allclose(sur.expected_map(beta), combo, atol=0.05)


def test_cv_surrogate_exactness_test_would_catch_a_dropped_cumulant():
    # the test above can fail: the third-cumulant term of E[X² t] alone, at the test's
    # settings, is larger than its tolerance (dropping it would fail the squares)
    from asdxai.explain.masks import interpolation_weights
    from asdxai.explain.surrogate import pooling_matrix

    p = 0.75
    weights = interpolation_weights(4, 12)
    a = weights @ pooling_matrix(12, 8).T
    k3_term = (p * (1 - p) * (1 - 2 * p) * (a * a).transpose(1, 2) @ weights).mean(0)
    assert np.abs(k3_term.numpy()).max() * p > 0.012  # (x E[f] = p on the other axis)


@pytest.mark.parametrize("estimator,sampling", [("cv", "iid"), ("centered", "latin-antithetic"),
                                                ("cv", "latin-antithetic")])  # fmt: skip
def test_new_estimators_are_reproducible_batch_and_resume_invariant(estimator, sampling):
    _, box = _linear()
    cfg = RISEMaskConfig(block_size=100, sampling=sampling)

    def run(batch, **kw):
        return RISE(box, mask_config=cfg).attribute(
            _spec(), n_masks=550, seed=3, estimator=estimator,
            execution=RISEExecution(batch_size=batch, **kw.pop("ex", {})), **kw,
        )  # fmt: skip

    ref = run(64)
    np.testing.assert_array_equal(run(64).importance, ref.importance)
    assert not np.allclose(
        RISE(box, mask_config=cfg)
        .attribute(_spec(), n_masks=550, seed=4, estimator=estimator)
        .importance,
        ref.importance,
    )
    for batch in (7, 250):
        np.testing.assert_allclose(run(batch).importance, ref.importance, rtol=1e-5, atol=1e-5)
    partial = []
    run(30, ex={"checkpoint": partial.append, "checkpoint_every": 200})
    resumed = run(250, resume_from=partial[0])
    np.testing.assert_allclose(resumed.importance, ref.importance, rtol=1e-5, atol=1e-5)
    assert resumed.n_masks == 550 and resumed.agreement == pytest.approx(ref.agreement, abs=1e-6)


def test_cv_result_file_round_trip(tmp_path):
    from asdxai.explain.result import load_result, save_result

    _, box = _linear()
    partial = []
    RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=400, estimator="cv",
        execution=RISEExecution(checkpoint=partial.append, checkpoint_every=200),
    )  # fmt: skip
    path = save_result(tmp_path / "cv.h5", partial[0])
    back = load_result(path)
    for key in ("gram", "zs", "beta", "fit_n", "corr"):
        np.testing.assert_array_equal(back.cv_state[key], partial[0].cv_state[key])
    full = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=400, estimator="cv")
    resumed = RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=400, estimator="cv", resume_from=back
    )
    np.testing.assert_allclose(resumed.importance, full.importance, rtol=1e-6, atol=1e-6)
    with pytest.raises(ResultError, match="control-variate"):
        RISE(box, mask_config=CFG).attribute(
            _spec(), n_masks=400, estimator="plain", resume_from=back
        )


def test_cv_refuses_grid_masks():
    _, box = _linear()
    with pytest.raises(ConfigError, match="separable"):
        RISE(box, mask_config=RISEMaskConfig(mode="grid", **MODE_CFG)).attribute(
            _spec(), estimator="cv"
        )
    with pytest.raises(ConfigError, match="sampling"):
        RISEMaskConfig(sampling="sobol")


@pytest.mark.parametrize("mode", ["separable", "time", "freq", "grid"])
def test_default_estimator_per_mask_mode(mode):
    from asdxai.constants import default_estimator
    from asdxai.workflows.explain import MapSettings

    expected = "centered" if mode == "grid" else "cv"
    assert default_estimator(mode) == expected
    cfg = RISEMaskConfig(mode=mode, **MODE_CFG)
    assert MapSettings(cfg).estimator == expected
    assert MapSettings(cfg, estimator="plain").estimator == "plain"
    assert MapSettings.study(mask_config=cfg).estimator == "plain"


def test_cv_with_one_block_is_plain_and_says_so(caplog):
    _, box = _linear()
    with caplog.at_level(logging.WARNING):
        cv = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=CFG.block_size, estimator="cv")
    assert "two blocks" in caplog.text
    plain = RISE(box, mask_config=CFG).attribute(_spec(), n_masks=CFG.block_size, estimator="plain")
    np.testing.assert_allclose(cv.importance, plain.importance, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- convergence rule and bar
def test_estimated_correlation_matches_the_truth_on_simulated_maps():
    from asdxai.explain.rise import agreement_for_correlation, estimated_correlation

    rng = np.random.default_rng(0)
    truth = rng.normal(size=20_000)
    for sigma in (0.05, 0.1, 0.3):  # noise of the whole map; each half has sqrt(2) x more
        halves = [truth + rng.normal(scale=sigma * np.sqrt(2), size=truth.size) for _ in "ab"]
        whole = (halves[0] + halves[1]) / 2
        a = np.corrcoef(*halves)[0, 1]
        r = np.corrcoef(whole, truth)[0, 1]
        assert estimated_correlation(a) == pytest.approx(r, abs=2e-3)
    assert agreement_for_correlation(0.99) == pytest.approx(0.961, abs=1e-3)
    assert estimated_correlation(agreement_for_correlation(0.995)) == pytest.approx(0.995)
    assert np.isnan(estimated_correlation(float("nan"))) and estimated_correlation(-0.2) == 0


def test_projected_masks():
    from asdxai.explain.rise import estimated_correlation, noise_ratio, projected_masks

    # equal halves: r² = 1 / (1 + x / n) is the Spearman-Brown estimate
    x = noise_ratio(500, 500, 0.9)
    assert 1 / np.sqrt(1 + x / 1000) == pytest.approx(estimated_correlation(0.9))
    assert noise_ratio(700, 300, 0.9) < x  # unequal halves agree less: the same a, less noise
    # (1 - a) / a halves when the masks double: a = 0.9 at 1000 -> 18 / 19 at 2000
    assert projected_masks(x, 18 / 19, n=1000, n_max=640_000, block=100) == 2000
    assert projected_masks(x, 0.5, n=1000, n_max=640_000, block=100) == 1000  # reached
    assert projected_masks(x, 0.999, n=1000, n_max=5000, block=100) == 5000  # capped
    assert projected_masks(float("nan"), 0.96, n=1000, n_max=5000, block=100) is None


def test_a_converged_runs_bar_never_shows_an_eta_longer_than_the_run(monkeypatch):
    # fake clock: time proportional to masks done, so the ETA the bar shows at n masks is
    # (total - n) / rate with the constant rate; it must stay below the whole run's time
    import tqdm.auto

    from asdxai.constants import DEFAULT_STOP_AGREEMENT
    from asdxai.explain import rise as rise_module

    shown = []

    class Recording(tqdm.auto.tqdm):
        def refresh(self, *args, **kwargs):
            shown.append((self.n, self.total, self.postfix))
            return super().refresh(*args, **kwargs)

    monkeypatch.setattr(rise_module, "tqdm", Recording)
    _, box = _linear()
    res = RISE(box, mask_config=CFG).attribute(
        _spec(), n_masks=640_000, estimator="centered", until_agreement=DEFAULT_STOP_AGREEMENT,
        execution=RISEExecution(progress=True, batch_size=100),
    )  # fmt: skip
    assert res.stopped_early and res.estimated_correlation >= 0.99
    totals = [(n, total) for n, total, _ in shown if total is not None]
    assert totals and all(total - n <= res.n_masks for n, total in totals)
    assert all(total < 640_000 for _, total in totals)
    assert any(post and "r≈" in post for _, _, post in shown)
