"""Thread counts are capped at the cores this process may use."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from asdxai import _runtime
from asdxai._runtime import available_cores, cap_threads
from asdxai.errors import ConfigError


def test_available_cores_is_positive():
    assert available_cores() >= 1


def test_requests_are_capped_at_the_cores(monkeypatch, caplog):
    monkeypatch.setattr(_runtime, "available_cores", lambda: 2)
    assert cap_threads(1) == 1 and cap_threads(2) == 2 and cap_threads(np.int64(2)) == 2
    assert cap_threads(-1) == 2
    with caplog.at_level(logging.WARNING, logger="asdxai._runtime"):
        assert cap_threads(100_000) == 2
        assert cap_threads(2**70, name="tsne n_jobs") == 2
    assert "tsne n_jobs 1180591620717411303424 capped at the 2 available CPU cores" in caplog.text


@pytest.mark.parametrize("bad", [0, -2, 1.5, "4", True, None])
def test_bad_counts_are_refused(bad):
    with pytest.raises(ConfigError, match="n_jobs must be"):
        cap_threads(bad)
