"""SYNTH.md principle 5, per machine type: global clip statistics do not find the anomalies."""

from __future__ import annotations

import numpy as np
import pytest

from asdxai.benchmarks.leakage import (
    MAX_UNSUPERVISED_AUC,
    STAT_NAMES,
    clip_statistics,
    leakage_table,
    probe_machine,
    probe_tree,
)
from asdxai.data.synth import PresetConfig, generate
from asdxai.data.synth_sounds import MACHINES, SR
from asdxai.errors import DataError

#: Full clip length (3 s, as ``small``), one section, reduced counts: 30 + 1 normal
#: training clips and 20 normal + 20 anomalous test clips per machine type.
PROBE = PresetConfig(
    "leak",
    machines=MACHINES,
    dev_sections=(0,),
    eval_sections=(),
    duration_s=3.0,
    n_train_source=30,
    n_train_target=1,
    n_test=10,
)
#: The AUC of 20 + 20 clips has a sampling error of about 0.09: the reduced set is held to
#: the bound plus that margin (the full measurement on ``small`` is in the synth docs).
MARGIN = 0.10


def test_clip_statistics_of_a_sine():
    t = np.arange(SR) / SR
    x = 0.5 * np.sin(2 * np.pi * 1500.0 * t)
    s = dict(zip(STAT_NAMES, clip_statistics(x, SR), strict=True))
    assert s["level"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert s["crest"] == pytest.approx(20 * np.log10(np.sqrt(2)), abs=0.01)
    assert s["kurtosis"] == pytest.approx(np.log(1.5), abs=0.01)
    assert s["zcr"] == pytest.approx(2 * 1500.0 / SR, abs=1e-3)
    assert s["centroid"] == pytest.approx(1.5, abs=0.05)
    assert s["rolloff"] == pytest.approx(1.5, abs=0.05)
    assert s["band_5"] > -0.1 and s["band_1"] < -60  # 1-2 kHz holds all the power


def test_probes_find_a_planted_shift_and_not_noise():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, len(STAT_NAMES)))
    test = rng.normal(size=(100, len(STAT_NAMES)))
    labels = np.arange(100) < 50
    null = probe_machine(train, test, labels)
    assert abs(null.unsupervised - 0.5) < 0.15 and abs(null.supervised - 0.5) < 0.15
    test[labels, STAT_NAMES.index("crest")] += 3.0
    found = probe_machine(train, test, labels, machine="slider")
    assert found.unsupervised > 0.75 and found.supervised > 0.9  # one of 15 dimensions
    assert found.shortcut()[0] == "crest" and "| slider |" in leakage_table({"slider": found})
    with pytest.raises(DataError):
        probe_machine(train, test[:6], labels[:6])


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    root = generate(
        tmp_path_factory.mktemp("leak"), preset=PROBE, seed=0, workers=1, progress=False
    )
    return probe_tree(root)


def test_the_probes_run_per_machine_type_on_full_length_clips(probed):
    assert list(probed) == sorted(MACHINES)
    for r in probed.values():
        assert (r.n_normal, r.n_anomaly, r.n_train) == (20, 20, 31)
        assert 0.0 <= r.unsupervised <= 1.0 and 0.0 <= r.supervised <= 1.0


def test_no_global_statistic_finds_the_anomalies_of_any_machine_type(probed):
    worst = max(r.unsupervised for r in probed.values())
    assert worst <= MAX_UNSUPERVISED_AUC + MARGIN, leakage_table(probed)


@pytest.mark.parametrize("bad", [{"folds": 1}, {"folds": 2.5}, {"seed": -1}])
def test_probe_tree_refuses_bad_folds_and_seeds_before_reading(bad, tmp_path):
    from asdxai.benchmarks.leakage import probe_tree
    from asdxai.errors import ConfigError

    with pytest.raises(ConfigError, match="folds|seed"):
        probe_tree(tmp_path / "missing", **bad)
