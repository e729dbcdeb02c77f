"""bench rise --quality: variant names, passes-to-target, the stop point, a curve."""

from pathlib import Path

import numpy as np
import pytest
import torch

from asdxai.benchmarks import rise_quality as q
from asdxai.errors import ConfigError


def test_variant_names_round_trip_and_bad_ones_raise():
    assert q.Variant.parse("cv+latin-antithetic") == q.Variant("cv", "latin-antithetic")
    assert q.Variant.parse("centered").name == "centered"
    for bad in ("median", "cv+sobol"):
        with pytest.raises(ConfigError):
            q.Variant.parse(bad)


def test_passes_to_needs_the_target_to_hold_until_the_end():
    pts = [{"passes": n, "r": r} for n, r in ((250, 0.97), (500, 0.991), (750, 0.989),
                                              (1000, 0.992), (1250, 0.995))]  # fmt: skip
    assert q.passes_to(pts, lambda p: p["r"] >= 0.99) == 1000  # not 500: it fell back
    assert q.passes_to(pts, lambda p: p["r"] >= 0.999) is None


def test_stop_point_waits_for_the_minimum_blocks():
    curve = [{"passes": 250 * k, "r": 0.99, "r_est": 0.995} for k in range(1, 6)]
    assert q.stop_point(curve, 250)["passes"] == 1000  # 4 blocks of 250
    assert q.stop_point([dict(c, r_est=0.9) for c in curve], 250) is None


def test_curve_of_a_linear_box_approaches_its_reference(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, w = torch.rand(40, 48, generator=g) + 0.5, torch.randn(40, 48, generator=g)

    def box(y):
        return (y * w).sum((1, 2))

    from asdxai.explain import RISE, RISEMaskConfig

    ref = RISE(box, RISEMaskConfig(block_size=1000)).attribute(
        x, n_masks=8000, seed=99, estimator="cv"
    )
    pts = q.curve(box, x, q.Variant("cv", "latin-antithetic"), ref.importance,
                  Path(tmp_path / "none.wav"), max_passes=1000, block_size=100)  # fmt: skip
    assert [p["passes"] for p in pts] == list(range(100, 1001, 100))
    assert pts[-1]["r"] > 0.95 and np.isnan(pts[0]["r_est"])  # one block: no halves yet
    assert pts[-1]["focus"] == {}  # a clip without ground truth has no focus measures
