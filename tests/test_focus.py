"""Where a map looks: focus measures on hand-built maps and ground truths with known answers."""

import math

import numpy as np
import pytest

from asdxai.errors import ConfigError
from asdxai.explain import (
    FocusResult,
    event_share,
    machine_correlation,
    machine_focus,
    map_focus,
    pixel_auc,
    pointing_game,
)

T, F = 40, 64


def _level(seed: int = 0) -> np.ndarray:
    """30 % machine cells at +10..+20 dB, the rest background at -2..-0.1 dB."""
    rng = np.random.default_rng(seed)
    machine = rng.random((T, F)) < 0.3
    return np.where(machine, rng.uniform(10, 20, (T, F)), rng.uniform(-2, -0.1, (T, F)))


def test_map_equal_to_minus_level():
    """The median lies among the background cells, so every machine cell deviates more."""
    level = _level()
    m = -level
    assert machine_correlation(m, level) == pytest.approx(-1.0)
    assert machine_correlation(level, level) == pytest.approx(1.0)
    assert machine_focus(m, level) == pytest.approx(1.0)
    assert machine_focus(level, level) == pytest.approx(1.0)  # |deviation| ignores the sign


def test_map_on_the_background_has_focus_zero():
    level = _level()
    rng = np.random.default_rng(1)
    background = rng.choice([-1.0, 1.0], (T, F)) * rng.uniform(1, 2, (T, F))
    m = np.where(level > 0, 0.0, background)  # median 0: only background cells deviate
    assert machine_focus(m, level) == pytest.approx(0.0)


def test_random_map_ignores_the_machine():
    level = _level()
    rng = np.random.default_rng(2)
    focus = [machine_focus(rng.standard_normal((T, F)), level) for _ in range(20)]
    corr = [machine_correlation(rng.standard_normal((T, F)), level) for _ in range(20)]
    assert abs(np.mean(focus) - 0.5) < 0.02 and abs(np.mean(corr)) < 0.02


def test_focus_matches_its_definition():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    level, m = rng.normal(0, 10, (T, F)), rng.standard_normal((T, F))
    expect = roc_auc_score((level > 0).ravel(), np.abs(m - np.median(m)).ravel())
    assert machine_focus(m, level) == pytest.approx(expect)
    assert machine_correlation(m, level) == pytest.approx(
        np.corrcoef(m.ravel(), level.ravel())[0, 1]
    )


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
    m = np.random.default_rng(4).standard_normal((T, F))
    assert math.isnan(machine_focus(m, np.full((T, F), 5.0)))
    assert math.isnan(machine_focus(m, np.full((T, F), -5.0)))
    assert math.isnan(machine_correlation(np.ones((T, F)), _level()))
    with pytest.raises(ConfigError):
        machine_focus(m, _level()[:, :-1])
    with pytest.raises(ConfigError):
        event_share(m[0], np.zeros(F, dtype=bool))


def test_map_focus_uses_whichever_ground_truth_exists():
    rng = np.random.default_rng(5)
    level = _level()
    events = np.zeros((T, F), dtype=bool)
    events[0:4, :8] = True
    mask = np.zeros((T, F), dtype=bool)
    mask[20:25, 30:40] = True
    m = rng.standard_normal((T, F)) + 5 * mask
    full = map_focus(m, mask, level, events, tolerance=1)
    assert isinstance(full, FocusResult)
    assert full.pixel_auc == pytest.approx(pixel_auc(m, mask))
    assert full.pointing_game == float(pointing_game(m, mask, 1))
    assert full.machine_focus == pytest.approx(machine_focus(m, level))
    assert full.machine_correlation == pytest.approx(machine_correlation(m, level))
    assert full.event_share == pytest.approx(event_share(m, events))
    assert full.machine_area == pytest.approx((level > 0).mean())
    assert full.event_area == pytest.approx(events.mean())
    d = full.to_dict()
    assert set(d) == {
        "machine_focus",
        "machine_correlation",
        "event_share",
        "pixel_auc",
        "pointing_game",
        "machine_area",
        "event_area",
    }
    assert all(isinstance(v, float) for v in d.values())

    only_mask = map_focus(m, mask)
    assert only_mask.pixel_auc == full.pixel_auc
    assert math.isnan(only_mask.machine_focus) and math.isnan(only_mask.event_share)
    normal_clip = map_focus(m, np.zeros((T, F), dtype=bool), level, events)
    assert math.isnan(normal_clip.pixel_auc) and math.isnan(normal_clip.pointing_game)
    assert normal_clip.machine_focus == full.machine_focus
    assert all(math.isnan(v) for v in map_focus(m).to_dict().values())
    with pytest.raises(ConfigError):
        map_focus(m, mask[:-1])
