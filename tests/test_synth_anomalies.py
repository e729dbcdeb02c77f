"""Anomaly sound models: each changes its machine where it says it does, and only there."""

from __future__ import annotations

import numpy as np
import pytest

from asdxai.data.synth_sounds import (
    ANOMALY_KINDS,
    SR,
    _anomaly_speed,
    _speed_track,
    _travel_times,
    attribute_values,
    draw_anomaly,
    draw_clip,
    render_machine,
)

N = 3 * SR  # 3 s clips
SPEED_KINDS = ("wobble", "drift")  # phase / position changes persist after the segment


def _draw(machine: str, kind: str, section: int, seed: int = 0):
    """A (condition, clip, anomaly) of the wanted kind over the segment 1.0-2.0 s."""
    rng = np.random.default_rng(seed)
    cond = attribute_values(machine, section, "source")[0][1]
    clip = draw_clip(rng)
    for _ in range(200):
        a = draw_anomaly(rng, cond, N / SR)
        if a["kind"] == kind:
            a.update(t0=1.0, t1=2.0)
            return cond, clip, a
    raise AssertionError(f"{kind} never drawn for {machine}")


CASES = [
    (m, k, s)
    for m, kinds in ANOMALY_KINDS.items()
    for k in kinds
    if k not in SPEED_KINDS
    for s in (0, 2)  # a speed section and a variant section
]


@pytest.mark.parametrize(("machine", "kind", "section"), CASES)
def test_anomaly_lives_inside_its_segment(machine, kind, section):
    cond, clip, a = _draw(machine, kind, section)
    normal = render_machine(cond, clip, None, N)
    anomalous = render_machine(cond, clip, a, N)
    diff = anomalous - normal
    t = np.arange(N) / SR
    inside = (t >= 1.0) & (t <= 2.0)
    outside = (t < 0.8) | (t > 2.25)  # fades and click / ring kernels spill a little
    ref = np.sqrt(np.mean(normal**2))
    assert np.sqrt(np.mean(diff[inside] ** 2)) > 0.05 * ref, "the anomaly changed nothing"
    assert np.sqrt(np.mean(diff[outside] ** 2)) < 1e-6 * ref, "the anomaly leaked outside"


@pytest.mark.parametrize("machine", [m for m, k in ANOMALY_KINDS.items() if "wobble" in k])
def test_speed_anomalies_change_the_machine(machine):
    for kind in set(SPEED_KINDS) & set(ANOMALY_KINDS[machine]):
        cond, clip, a = _draw(machine, kind, 0)
        normal = render_machine(cond, clip, None, N)
        anomalous = render_machine(cond, clip, a, N)
        assert np.all(np.isfinite(anomalous))
        # before t0 only the per-component RMS normalisation differs (< 0.1 % of the level)
        before = slice(0, SR // 2)
        assert np.abs(anomalous[before] - normal[before]).max() < 1e-3 * np.abs(normal).max()
        assert np.sqrt(np.mean((anomalous - normal) ** 2)) > 0.1


def test_events_follow_the_speed_track():
    """A faster machine reaches each position earlier; without an anomaly, times barely move."""
    _, clip, _ = _draw("ToyTrain", "wobble", 0)
    nominal = np.arange(0.1, 2.9, 0.4)
    still = _travel_times(nominal, _speed_track(N, 1.0, clip, None))
    np.testing.assert_allclose(still, nominal, atol=0.01)
    np.testing.assert_array_equal(_travel_times(nominal, _anomaly_speed(N, None)), nominal)
    fast = {"kind": "drift", "t0": 0.0, "t1": 3.0, "factor": 1.2, "glide": 1e-3}
    moved = _travel_times(nominal, _speed_track(N, 1.0, clip, fast))
    # 20 % faster from the start: every position is reached at ~1/1.2 of its nominal time
    np.testing.assert_allclose(moved, nominal / 1.2, atol=0.02)
    slow = {"kind": "drift", "t0": 0.0, "t1": 3.0, "factor": 0.5, "glide": 1e-3}
    late = _travel_times(nominal, _anomaly_speed(N, slow))
    assert np.all(np.isinf(late[nominal > 1.55]))  # beyond the clip's end at half speed
    np.testing.assert_allclose(late[nominal < 1.4], nominal[nominal < 1.4] / 0.5, atol=0.02)
