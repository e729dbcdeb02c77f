"""asdxai bench rise (speed): one measurement per estimator, and its results file."""

from __future__ import annotations

import json
import platform

import pytest

from asdxai.cli import main

_SMALL = ["bench", "rise", "--frames", "24", "--bins", "65", "--width", "0.25", "--threads", "1",
          "--batch-size", "8", "--batches", "1", "--repeats", "1", "--no-naive"]  # fmt: skip


def test_one_row_per_estimator_in_the_results_file(tmp_path, capsys):
    stem = tmp_path / "speed"
    assert main([*_SMALL, "--estimator", "plain", "cv", "--out", str(stem)]) == 0
    doc = json.loads(stem.with_suffix(".json").read_text())
    assert [r["estimator"] for r in doc["runs"]] == ["plain", "cv"]
    for r in doc["runs"]:
        assert r["ratio"] == pytest.approx(r["asdxai"] / r["bare"]) and r["n_masks"] == 8
    printed = capsys.readouterr().out
    assert stem.with_suffix(".md").read_text().count("(b)/(a) = ") == 2
    assert printed.count("(b)/(a) = ") == 2
    if platform.libc_ver()[0] == "glibc":
        assert doc["malloc"] == "asdxai thresholds"


def test_default_malloc_is_named_in_the_results_file(tmp_path):
    stem = tmp_path / "speed"
    assert main([*_SMALL, "--default-malloc", "--out", str(stem)]) == 0
    assert json.loads(stem.with_suffix(".json").read_text())["malloc"] == "glibc default"
