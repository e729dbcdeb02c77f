"""Where a map looks: the stated properties of the focus measures, on hand-built maps and ground
truths with known answers, at machine areas from 10 % to 90 %."""

import math

import numpy as np
import pytest

from asdxai.errors import ConfigError
from asdxai.explain import (
    FocusResult,
    event_share,
    machine_contrast,
    machine_correlation,
    machine_focus,
    machine_partial_correlation,
    map_focus,
    pixel_auc,
    pointing_game,
)

T, F = 40, 64
AREAS = (0.1, 0.3, 0.5, 0.7, 0.9)


def _level(area: float = 0.3, seed: int = 0) -> np.ndarray:
    """``area`` of the cells machine-dominant at +1..+20 dB, the rest background at -20..-0.1 dB."""
    rng = np.random.default_rng(seed)
    machine = rng.random((T, F)) < area
    return np.where(machine, rng.uniform(1, 20, (T, F)), rng.uniform(-20, -0.1, (T, F)))


@pytest.mark.parametrize("area", AREAS)
def test_the_exact_machine_mask_scores_the_maximum_at_every_area(area):
    level = _level(area)
    mask = (level > 0).astype(float)
    for m in (mask, -mask, 3 * mask + 1, level, -level):  # either sign, any monotone version
        assert machine_focus(m, level) == pytest.approx(1.0)
    assert machine_contrast(mask, level) == pytest.approx(1.0)
    assert machine_contrast(-mask, level) == pytest.approx(-1.0)
    # a map on the background only (machine cells at the map's floor) scores the maximum too
    background = np.where(level > 0, 0.0, 1.0 + np.random.default_rng(1).random((T, F)))
    assert machine_focus(background, level) == pytest.approx(1.0)
    assert machine_contrast(background, level) == pytest.approx(-1.0)


@pytest.mark.parametrize("area", AREAS)
def test_a_random_map_scores_chance_at_every_area(area):
    level = _level(area)
    n1 = int((level > 0).sum())
    n0 = level.size - n1
    sd = math.sqrt((n1 + n0 + 1) / (12 * n1 * n0))  # sd of the AUC of a random ranking
    rng = np.random.default_rng(2)
    maps = [rng.standard_normal((T, F)) for _ in range(40)]
    contrast = np.array([machine_contrast(m, level) for m in maps])
    focus = np.array([machine_focus(m, level) for m in maps])
    assert abs(contrast.mean()) < 3 * 2 * sd / math.sqrt(len(maps))  # unbiased signed measure
    assert np.all(focus >= 0.5) and np.all(focus < 0.5 + 4 * sd)
    assert abs(focus.mean() - (0.5 + math.sqrt(2 / math.pi) * sd)) < 3 * sd / math.sqrt(len(maps))


@pytest.mark.parametrize("area", AREAS)
def test_invariant_to_monotone_rescaling(area):
    level = _level(area)
    rng = np.random.default_rng(3)
    m = rng.standard_normal((T, F)) + 0.5 * (level > 0)
    f, c = machine_focus(m, level), machine_contrast(m, level)
    assert 0.55 < f < 1.0 and c > 0.1
    ranks = np.argsort(np.argsort(m.ravel())).reshape(T, F)
    for g in (np.exp(m), 10 * m - 4, m**3, np.arctan(m), ranks):
        assert machine_focus(g, level) == pytest.approx(f)
        assert machine_contrast(g, level) == pytest.approx(c)
    assert machine_focus(-np.exp(m), level) == pytest.approx(f)
    assert machine_contrast(-m, level) == pytest.approx(-c)  # the signed measure flips


def test_focus_and_contrast_match_the_roc_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    level, m = rng.normal(0, 10, (T, F)), rng.integers(0, 5, (T, F)).astype(float)  # many ties
    auc = roc_auc_score((level > 0).ravel(), m.ravel())
    assert machine_contrast(m, level) == pytest.approx(2 * auc - 1)
    assert machine_focus(m, level) == pytest.approx(max(auc, 1 - auc))
    assert machine_correlation(m, level) == pytest.approx(
        np.corrcoef(m.ravel(), level.ravel())[0, 1]
    )


def test_partial_correlation_removes_what_energy_explains():
    rng = np.random.default_rng(5)
    level = _level(0.4)
    energy = 0.8 * level + rng.normal(0, 3, (T, F))  # loud where the machine dominates
    # the energy map and any affine function of it: nothing beyond energy
    assert machine_partial_correlation(energy, level, energy) == 0.0
    assert machine_partial_correlation(-2 * energy + 7, level, energy) == 0.0
    assert machine_correlation(energy, level) > 0.8  # while the plain correlation is high
    # a map that follows the level itself, not the energy: the partial r stays high, signed
    assert machine_partial_correlation(level, level, energy) == pytest.approx(1.0)
    assert machine_partial_correlation(-level, level, energy) == pytest.approx(-1.0)
    # energy plus an independent part: partial r near 0; definition = residual correlation
    m = energy + rng.standard_normal((T, F))
    r = machine_partial_correlation(m, level, energy)
    x = np.column_stack([np.ones(T * F), energy.ravel()])
    res = [v.ravel() - x @ np.linalg.lstsq(x, v.ravel(), rcond=None)[0] for v in (m, level)]
    assert r == pytest.approx(np.corrcoef(*res)[0, 1])
    assert abs(r) < 0.1
    assert math.isnan(machine_partial_correlation(m, level, np.ones((T, F))))
    assert math.isnan(machine_partial_correlation(m, level, 2 * level))


def test_event_share():
    events = np.zeros((T, F), dtype=bool)
    events[5:10, 20:36] = True
    area = events.mean()
    on_events = events * 3.0  # median 0: all deviation mass on the events
    assert event_share(on_events, events) == pytest.approx(1 / area)
    assert event_share(on_events, events) > 1
    checker = np.where((np.arange(T)[:, None] + np.arange(F)) % 2 == 0, 1.0, -1.0)
    assert event_share(checker, events) == pytest.approx(1.0)  # |deviation| 1 everywhere
    assert event_share(checker * ~events, events) == pytest.approx(0.0)  # events at the median
    assert math.isnan(event_share(on_events, np.zeros((T, F), dtype=bool)))
    assert math.isnan(event_share(np.ones((T, F)), events))


def test_undefined_cases_are_nan_and_shapes_are_checked():
    m = np.random.default_rng(6).standard_normal((T, F))
    assert math.isnan(machine_focus(m, np.full((T, F), 5.0)))
    assert math.isnan(machine_focus(m, np.full((T, F), -5.0)))
    assert math.isnan(machine_focus(np.ones((T, F)), _level()))
    assert math.isnan(machine_contrast(np.ones((T, F)), _level()))
    assert math.isnan(machine_correlation(np.ones((T, F)), _level()))
    with pytest.raises(ConfigError):
        machine_focus(m, _level()[:, :-1])
    with pytest.raises(ConfigError):
        machine_partial_correlation(m, _level(), m[:, :-1])
    with pytest.raises(ConfigError):
        event_share(m[0], np.zeros(F, dtype=bool))


def test_map_focus_uses_whichever_ground_truth_exists():
    rng = np.random.default_rng(7)
    level = _level()
    energy = level + rng.normal(0, 5, (T, F))
    events = np.zeros((T, F), dtype=bool)
    events[0:4, :8] = True
    mask = np.zeros((T, F), dtype=bool)
    mask[20:25, 30:40] = True
    m = rng.standard_normal((T, F)) + 5 * mask
    full = map_focus(
        m, anomaly_mask=mask, level_db=level, events=events, tolerance=1, log_energy=energy
    )
    assert isinstance(full, FocusResult)
    assert full.pixel_auc == pytest.approx(pixel_auc(m, mask))
    assert full.pointing_game == float(pointing_game(m, mask, tolerance=1))
    assert full.machine_focus == pytest.approx(machine_focus(m, level))
    assert full.machine_contrast == pytest.approx(machine_contrast(m, level))
    assert full.machine_correlation == pytest.approx(machine_correlation(m, level))
    assert full.machine_partial_r == pytest.approx(machine_partial_correlation(m, level, energy))
    assert full.event_share == pytest.approx(event_share(m, events))
    assert full.machine_area == pytest.approx((level > 0).mean())
    assert full.event_area == pytest.approx(events.mean())
    d = full.to_dict()
    assert set(d) == {
        "machine_focus", "machine_contrast", "machine_correlation", "machine_partial_r",
        "event_share", "pixel_auc", "pointing_game", "machine_area", "event_area",
    }  # fmt: skip
    assert all(isinstance(v, float) and math.isfinite(v) for v in d.values())
    assert set(full.to_dict(prefix="energy_")) == {"energy_" + k for k in d}
    baseline = map_focus(
        energy, anomaly_mask=mask, level_db=level, events=events, log_energy=energy
    )
    assert baseline.machine_partial_r == 0.0 and baseline.machine_focus > 0.75

    assert math.isnan(
        map_focus(m, anomaly_mask=mask, level_db=level, events=events).machine_partial_r
    )  # no energy given
    only_mask = map_focus(m, anomaly_mask=mask)
    assert only_mask.pixel_auc == full.pixel_auc
    assert math.isnan(only_mask.machine_focus) and math.isnan(only_mask.event_share)
    normal_clip = map_focus(
        m, anomaly_mask=np.zeros((T, F), dtype=bool), level_db=level, events=events
    )
    assert math.isnan(normal_clip.pixel_auc) and math.isnan(normal_clip.pointing_game)
    assert normal_clip.machine_focus == full.machine_focus
    assert all(math.isnan(v) for v in map_focus(m).to_dict().values())
    with pytest.raises(ConfigError):
        map_focus(m, anomaly_mask=mask[:-1])


def test_explained_clip_measures_carry_the_energy_baseline(tmp_path):
    """``map_measures`` (what ``asdxai rise`` stores and prints) adds the energy map's measures,
    ``energy_*``, from the same ground truth files of a synthetic tree."""
    import h5py

    from asdxai.data.components import encode_level
    from asdxai.workflows.explain import map_measures

    key = "dev_data/fan/test/section_00_source_test_anomaly_0000_a_1.wav"
    clip = tmp_path / key
    clip.parent.mkdir(parents=True)
    clip.touch()
    level = _level(0.6)
    mask = np.zeros((T, F), dtype=bool)
    mask[20:25, 30:40] = True
    events = np.zeros((T, F), dtype=bool)
    events[:3] = True
    with h5py.File(tmp_path / "anomaly_masks.h5", "w") as h5:
        h5[key] = mask
    with h5py.File(tmp_path / "components.h5", "w") as h5:
        h5[f"{key}/level"] = encode_level(level)
        h5[f"{key}/events"] = events
    rng = np.random.default_rng(8)
    energy = level + rng.normal(0, 5, (T, F))
    m = rng.standard_normal((T, F)) - 0.5 * (level > 0)
    out = map_measures(m, clip, log_energy=energy)
    assert out["machine_focus"] == pytest.approx(machine_focus(m, level), abs=0.01)
    assert out["energy_machine_focus"] == pytest.approx(machine_focus(energy, level), abs=0.01)
    assert out["energy_machine_partial_r"] == 0.0 and "machine_partial_r" in out
    assert {"energy_pixel_auc", "energy_event_share"} <= set(out)
    assert not any(k.startswith("energy_") for k in map_measures(m, clip))
