"""Tests of the synthetic DCASE-layout generator (asdxai.data.synth)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch

from asdxai.data.anomaly_masks import load_anomaly_mask
from asdxai.data.components import COMPONENTS_FILE, component_truth, load_components
from asdxai.data.records import parse_name, scan
from asdxai.data.synth import PRESETS, PresetConfig, _jobs, generate, render_clip
from asdxai.data.synth_sounds import MACHINES
from asdxai.errors import ConfigError
from asdxai.features import FeatureConfig, spectrogram

TINY = PresetConfig(
    "tiny",
    machines=("fan", "valve", "bearing"),
    dev_sections=(0,),
    eval_sections=(3,),
    duration_s=1.0,
    n_train_source=4,
    n_train_target=2,
    n_test=2,
)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "synth.json"
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("tiny"), preset=TINY, seed=0, workers=1, progress=False)


def test_same_seed_same_bytes_and_parallel_equals_serial(tiny, tmp_path):
    again = generate(tmp_path / "par", preset=TINY, seed=0, workers=2, progress=False)
    assert _digest(tiny) == _digest(again)


def test_tree_grown_part_by_part_equals_the_whole_tree(tiny, tmp_path):
    from asdxai.data.synth import missing_splits

    grown = generate(
        tmp_path / "g", preset=TINY, seed=0, workers=1, progress=False, splits=["dev-test"]
    )
    assert missing_splits(grown, ["dev-test", "eval-test"]) == []
    assert missing_splits(grown, ["dev-train"]) == ["train"]
    assert not list(grown.rglob("train/*.wav")) and (grown / "anomaly_masks.h5").is_file()
    generate(grown, preset=TINY, seed=0, workers=1, progress=False, splits=["eval-train"])
    assert missing_splits(grown) == []
    assert _digest(grown) == _digest(tiny)
    with pytest.raises(ConfigError, match="unknown split"):
        generate(tmp_path / "h", preset=TINY, seed=0, progress=False, splits=["dev-tset"])


def test_different_seed_different_clips(tiny, tmp_path):
    other = generate(tmp_path / "s1", preset=TINY, seed=1, workers=1, progress=False)
    a, b = _digest(tiny), _digest(other)
    wavs = [k for k in a if k.endswith(".wav")]
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in wavs) == len(wavs)


def test_counts_match_config(tiny):
    counts = TINY.counts()
    for machine in TINY.machines:
        for split in ("dev-train", "dev-test", "eval-train", "eval-test"):
            part, subset = split.split("-")
            files = list((tiny / f"{part}_data" / machine / subset).glob("*.wav"))
            assert len(files) == counts[machine][split]
    meta = json.loads((tiny / "synth.json").read_text())
    assert meta["duration_s"] == TINY.duration_s and meta["n_clips"] == TINY.n_clips


def test_preset_counts():
    full = PRESETS["full"].counts()
    assert set(full) == set(MACHINES)
    assert full["fan"] == {"dev-train": 3000, "dev-test": 600, "eval-train": 3000, "eval-test": 600}
    assert PRESETS["full"].duration_s == 10.0
    small = PRESETS["small"]
    assert len(small.machines) == 7 and small.dev_sections == (0, 1, 2)
    assert small.counts()["valve"]["dev-train"] == 3 * 160
    mini = PRESETS["mini"]
    assert mini.n_clips == 4 * 3 * (50 + 40)


def test_layout_names_parse_and_scan(tiny):
    for p in (tiny / "dev_data").rglob("*.wav"):
        f = parse_name(p.name)
        assert f["label"] in ("normal", "anomaly") and f["domain"] in ("source", "target")
        assert f["attributes"]
    for p in (tiny / "eval_data").glob("*/test/*.wav"):
        f = parse_name(p.name)
        assert f["label"] is None and f["section"] == "03"
    recs = scan(tiny, split="eval-test")
    assert all(r.label in ("normal", "anomaly") and r.domain for r in recs)
    dev = scan(tiny, split="dev-train")
    assert {r.domain for r in dev} == {"source", "target"}
    header = (tiny / "dev_data" / "fan" / "attributes_00.csv").read_text().splitlines()[0]
    assert header == "file_name,d1p,d1v"
    with open(tiny / "dev_data" / "fan" / "attributes_00.csv") as fh:
        rows = list(csv.reader(fh))[1:]
    assert rows[0][0].startswith("fan/") and len(rows) == 6 + 8


def test_wav_format_is_label_independent(tiny):
    infos = {sf.info(p).subtype for p in tiny.rglob("*.wav")}
    assert infos == {"PCM_16"}
    lengths = {sf.info(p).frames for p in tiny.rglob("*.wav")}
    assert lengths == {16000}


def test_masks(tiny):
    cfg = FeatureConfig(duration_s=TINY.duration_s)
    with h5py.File(tiny / "anomaly_masks.h5") as h5:
        keys = set()
        h5.visititems(lambda name, obj: keys.add(name) if isinstance(obj, h5py.Dataset) else None)
        for key in keys:
            mask = h5[key][()]
            assert mask.dtype == bool and mask.shape == (cfg.n_frames, cfg.n_bins)
            assert mask.any()
            assert h5[key].attrs["threshold_db"] > 0 and h5[key].attrs["kind"]
    anomalous = {
        str(r.path.relative_to(tiny))
        for split in ("dev-test", "eval-test")
        for r in scan(tiny, split=split)
        if r.label == "anomaly"
    }
    assert keys == anomalous


def _keys(h5: h5py.File, kind: type) -> set[str]:
    keys: set[str] = set()
    h5.visititems(lambda name, obj: keys.add(name) if isinstance(obj, kind) else None)
    return keys


def test_components_cover_every_test_clip(tiny):
    cfg = FeatureConfig(duration_s=TINY.duration_s)
    shape = (cfg.n_frames, cfg.n_bins)
    test_clips = {
        str(r.path.relative_to(tiny))
        for split in ("dev-test", "eval-test")
        for r in scan(tiny, split=split)
    }
    with h5py.File(tiny / COMPONENTS_FILE) as h5:
        keys = {k for k in _keys(h5, h5py.Group) if k.endswith(".wav")}
        assert keys == test_clips
        assert tuple(h5.attrs["shape"]) == shape and h5.attrs["n_fft"] == cfg.n_fft
        for key in keys:
            assert h5[key]["level"].dtype == np.int8 and h5[key]["level"].shape == shape
            assert h5[key]["events"].dtype == bool and h5[key]["events"].shape == shape
            assert h5[key].attrs["label"] in ("normal", "anomaly")
    some = sorted(keys)[0]
    truth = load_components(tiny / some)
    assert truth.level_db.dtype == np.float32 and truth.level_db.shape == shape
    assert truth.machine.any() and (~truth.machine).any()
    assert any(load_components(tiny / k).events.any() for k in keys)
    train = next((tiny / "dev_data" / "fan" / "train").glob("*.wav"))
    assert load_components(train) is None and load_anomaly_mask(train) is None


def test_components_absent_outside_a_synthetic_tree(tmp_path):
    clip = tmp_path / "dev_data" / "fan" / "test" / "section_00_source_test_normal_0000_a_1.wav"
    clip.parent.mkdir(parents=True)
    sf.write(clip, np.zeros(16000), 16000)
    assert load_components(clip) is None


@pytest.mark.parametrize("label", ["normal", "anomaly"])
def test_components_remix_to_the_clip(tiny, label):
    """The components add up to the written clip, their spectrograms re-mixed in power give
    the clip's spectrogram, and the stored ground truth is theirs."""
    cfg = FeatureConfig(duration_s=TINY.duration_s)
    job = next(j for j in _jobs(TINY, 0) if j.label == label and j.rel.split("/")[2] == "test")
    clip = render_clip(job, 0, TINY.n_samples, components=True)
    wav, _ = sf.read(tiny / job.rel, dtype="int16")
    np.testing.assert_array_equal(wav, clip.pcm)
    x = wav / 32767.0
    np.testing.assert_allclose(clip.machine + clip.background, x, atol=2e-5)
    parts = np.stack([x, clip.machine, clip.background])
    s, m, b = spectrogram(torch.from_numpy(parts), cfg=cfg).numpy()
    remix = np.sqrt(m**2 + b**2)
    floor = 1e-6 * s.max()
    r = np.corrcoef(np.log(s + floor).ravel(), np.log(remix + floor).ravel())[0, 1]
    assert r >= 0.95
    stored = load_components(tiny / job.rel)
    again = component_truth(clip.machine, clip.background, clip.events, cfg=cfg)
    np.testing.assert_array_equal(stored.level_db, again.level_db)
    np.testing.assert_array_equal(stored.events, again.events)
    eps = 1e-10 * (m**2 + b**2).max()  # the documented level rule, on the clip's 16-bit grid
    level = np.clip(10 * np.log10((m**2 + eps) / (b**2 + eps)), -64.0, 63.5)
    loud = (m**2 + b**2) > 1e-6 * (m**2 + b**2).max()
    assert np.abs(stored.level_db - level)[loud].max() <= 0.26


def test_refuses_other_tree_and_bad_preset(tiny):
    with pytest.raises(ConfigError):
        generate(tiny, preset="mini", seed=0, progress=False)
    with pytest.raises(ConfigError):
        generate(tiny, preset="huge", progress=False)
    with pytest.raises(ConfigError):
        PresetConfig("x", machines=("drone",))


def test_clips_shorter_than_the_sound_models_are_refused_up_front(tmp_path):
    from asdxai.data.synth import MIN_DURATION_S

    with pytest.raises(ConfigError, match=r"^duration_s must be a number >= 1, got 0.5$"):
        PresetConfig("x", duration_s=0.5)  # was a ValueError deep in the babble event model
    short = PresetConfig("short", machines=MACHINES, dev_sections=(0,), eval_sections=(3,),
                         duration_s=MIN_DURATION_S, n_train_source=1, n_train_target=1,
                         n_test=2)  # fmt: skip
    generate(tmp_path / "short", preset=short, seed=0, workers=1, progress=False)


def test_cli(tmp_path, monkeypatch, capsys):
    from asdxai.cli import main

    monkeypatch.setitem(PRESETS, "mini", TINY)
    assert (
        main(["synth", str(tmp_path / "t"), "--seed", "2", "--workers", "1", "--no-progress"]) == 0
    )
    out = capsys.readouterr().out
    assert "written to" in out and "fan" in out
    assert (tmp_path / "t" / "anomaly_masks.h5").is_file()
