"""``check_params``: one declarative check of parameter values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asdxai._checks import Integral, Interval, Real, check_params
from asdxai.errors import ConfigError

POSITIVE = (Integral, Interval(1, None))


@pytest.mark.parametrize(
    ("constraint", "value", "message"),
    [
        (POSITIVE, 0, "n must be a positive integer, got 0"),
        (POSITIVE, 2.0, "n must be a positive integer, got 2.0"),
        (POSITIVE, True, "n must be a positive integer, got True"),
        ((Integral, Interval(0, None)), -1, "n must be a non-negative integer, got -1"),
        ((Real, Interval(0, None, "neither")), math.nan, "n must be a positive number, got nan"),
        ((Real, Interval(0, None, "neither")), "1", "n must be a positive number, got '1'"),
        ((Real, Interval(0, None)), -0.5, "n must be a non-negative number, got -0.5"),
        ((Real, Interval(0, 1)), 1.5, r"n must be a number in \[0, 1\], got 1.5"),
        ((Real, Interval(0, 1, "neither")), 1.0, r"n must be a number in \(0, 1\), got 1.0"),
        ((Integral, Interval(2, None)), 1, "n must be an integer >= 2, got 1"),
        ((Real, None), math.inf, "n must be a number, got inf"),
    ],
)
def test_a_bad_value_names_its_parameter(constraint, value, message):
    with pytest.raises(ConfigError, match=f"^{message}$") as info:
        check_params({"n": constraint}, n=value)
    assert info.value.param == "n"


def test_good_values_pass_numpy_included():
    check_params({"n": POSITIVE, "x": (Real, Interval(0, 1))}, n=np.int64(3), x=np.float32(1))


def test_the_first_bad_value_is_reported():
    with pytest.raises(ConfigError, match="^b must"):
        check_params({"a": POSITIVE, "b": POSITIVE, "c": POSITIVE}, a=1, b=0, c=0)


def test_library_entry_points_use_it():
    from asdxai.data.dataset import clip_loader
    from asdxai.features import FeatureConfig

    with pytest.raises(ConfigError, match="^batch_size must be a positive integer, got 0$") as info:
        clip_loader([], FeatureConfig(), 0)
    assert info.value.param == "batch_size"
