"""Streaming clip datasets and loaders: shapes, seeded shuffling, unreadable files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

import asdxai.data.dataset as dataset_mod
from asdxai.data.audio import read_clip
from asdxai.data.dataset import ClipDataset, clip_loader
from asdxai.data.records import scan
from asdxai.errors import AudioError, ConfigError
from asdxai.features import FeatureConfig

SR = 16_000
CFG = FeatureConfig(sample_rate=SR, duration_s=1.0)
N_CLIPS = 10
BAD = (3, 7)  # positions (in scan order) of unreadable clips in the "bad" tree


def _tree(root: Path, bad: bool = False) -> list:
    rng = np.random.default_rng(0)
    folder = root / "dev_data" / "fan" / "train"
    folder.mkdir(parents=True)
    for i in range(N_CLIPS):
        path = folder / f"section_00_source_train_normal_{i:04d}_a_{i}.wav"
        if bad and i == BAD[0]:
            path.write_bytes(b"")
        elif bad and i == BAD[1]:
            path.write_text("not audio at all\n" * 10)
        else:
            length = SR if i % 2 else int(0.75 * SR)  # some need padding
            sf.write(str(path), 0.1 * rng.standard_normal(length), SR, subtype="PCM_16")
    return scan(root, split="dev-train")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return _tree(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def bad_records(tmp_path_factory):
    return _tree(tmp_path_factory.mktemp("bad"), bad=True)


def _order(loader) -> list[int]:
    return [int(i) for _, idx in loader for i in idx]


def test_dataset_items(records):
    ds = ClipDataset(records, CFG)
    assert len(ds) == N_CLIPS
    wave, index = ds[4]
    assert isinstance(wave, torch.Tensor) and wave.dtype == torch.float32
    assert wave.shape == (CFG.n_samples,) and index == 4
    np.testing.assert_array_equal(wave.numpy(), read_clip(records[4].path, CFG))


def test_loader_batches_in_order(records):
    loader = clip_loader(records, CFG, batch_size=4)
    assert isinstance(loader, DataLoader)
    batches = list(loader)
    assert [tuple(w.shape) for w, _ in batches] == [(4, SR), (4, SR), (2, SR)]
    assert all(w.dtype == torch.float32 and i.dtype == torch.int64 for w, i in batches)
    assert _order(loader) == list(range(N_CLIPS))
    wave, idx = batches[1]
    for row, i in zip(wave, idx, strict=True):
        np.testing.assert_array_equal(row.numpy(), read_clip(records[int(i)].path, CFG))
    assert len(list(clip_loader(records, CFG, batch_size=4, drop_last=True))) == 2


def test_shuffle_is_seeded(records):
    a = _order(clip_loader(records, CFG, batch_size=3, shuffle=True, seed=11))
    b = _order(clip_loader(records, CFG, batch_size=3, shuffle=True, seed=11))
    c = _order(clip_loader(records, CFG, batch_size=3, shuffle=True, seed=12))
    assert a == b and sorted(a) == list(range(N_CLIPS))
    assert a != c and a != list(range(N_CLIPS))
    # epochs differ from each other, but reproducibly
    loader1 = clip_loader(records, CFG, batch_size=3, shuffle=True, seed=11)
    loader2 = clip_loader(records, CFG, batch_size=3, shuffle=True, seed=11)
    epochs1 = [_order(loader1) for _ in range(2)]
    epochs2 = [_order(loader2) for _ in range(2)]
    assert epochs1 == epochs2 and epochs1[0] != epochs1[1]


def test_loader_streams_from_disk(records, monkeypatch):
    calls = []
    real = dataset_mod.read_clip

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(dataset_mod, "read_clip", counting)
    loader = clip_loader(records, CFG, batch_size=2)
    assert calls == []  # building the loader reads nothing
    it = iter(loader)
    next(it)
    assert len(calls) == 2  # one batch read, not the tree


def test_unreadable_clip_raises_by_default(bad_records):
    with pytest.raises(AudioError, match="empty file") as info:
        list(clip_loader(bad_records, CFG, batch_size=4))
    assert bad_records[BAD[0]].name in str(info.value)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_skip_unreadable_clips_with_count(bad_records, caplog, num_workers):
    loader = clip_loader(bad_records, CFG, batch_size=4, on_error="skip", num_workers=num_workers)
    with caplog.at_level(logging.WARNING):
        batches = list(loader)
    order = [int(i) for _, idx in batches for i in idx]
    assert order == [i for i in range(N_CLIPS) if i not in BAD]
    assert [w.shape[0] for w, _ in batches] == [3, 3, 2]
    ds = loader.dataset
    assert ds.skipped == 2
    assert ds.skipped_paths == [str(bad_records[i].path) for i in BAD]
    if num_workers == 0:  # worker processes log to their own handlers
        for i in BAD:
            assert bad_records[i].name in caplog.text
    list(loader)  # a second epoch does not double-count
    assert ds.skipped == 2


def test_all_skipped_batch_is_not_yielded(bad_records):
    only_bad = [bad_records[i] for i in BAD]
    loader = clip_loader(only_bad, CFG, batch_size=2, on_error="skip")
    assert list(loader) == []
    assert loader.dataset.skipped == 2
    wave, index = ClipDataset(only_bad, CFG, on_error="skip")[1]
    assert wave is None and index == 1


def test_bad_options(records):
    with pytest.raises(ConfigError, match="batch_size"):
        clip_loader(records, CFG, batch_size=0)
    with pytest.raises(ConfigError, match="on_error"):
        ClipDataset(records, CFG, on_error="ignore")
    with pytest.raises(ConfigError, match="num_workers"):
        clip_loader(records, CFG, batch_size=2, num_workers=-1)
