"""Library-level fuzzing: damaged checkpoints and wav files give one typed line, never a traceback.

Every mutant of a tiny good file (truncations, flipped bytes, rewritten header fields) must
either load or raise the module's typed error, in one line that names the file. Anything else
(an IndexError, a MemoryError, a struct.error, a traceback from torch or libsndfile) is a bug.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_checkpoint

from asdxai.checkpoint import load_checkpoint
from asdxai.data.audio import read_clip, write_wav
from asdxai.errors import AudioError, CheckpointError
from asdxai.features import FeatureConfig

FEAT = FeatureConfig(duration_s=0.25, n_fft=256, hop_length=128)
SR = FEAT.sample_rate


def _mutants(good: bytes, rng: np.random.Generator, n_flips: int) -> list[tuple[str, bytes]]:
    """Truncations at spread-out points and copies with a few random bytes replaced."""
    out = [(f"cut{k}", good[:k]) for k in np.linspace(1, len(good) - 1, 12).astype(int)]
    for i in range(n_flips):
        data = bytearray(good)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            data[pos] = int(rng.integers(0, 256))
        out.append((f"flip{i}", bytes(data)))
    return out


def _one_line_naming(exc: Exception, path: Path) -> None:
    msg = str(exc)
    assert str(path) in msg and "\n" not in msg, msg


def test_damaged_checkpoints(tmp_path):
    good = tiny_checkpoint(tmp_path / "good.pt", FEAT).read_bytes()
    rng = np.random.default_rng(0)
    loaded = 0
    for name, data in _mutants(good, rng, n_flips=40):
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        try:
            load_checkpoint(path)
            loaded += 1
        except CheckpointError as exc:
            _one_line_naming(exc, path)
    assert loaded < 52  # the mutants are not all harmless


def _riff(fmt: bytes, data: bytes) -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt(tag=1, channels=1, rate=SR, bits=16) -> bytes:
    align = (channels * bits // 8) & 0xFFFF
    return struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)


HEADER_CASES = {
    "65535-channels": _fmt(channels=65535),
    "0-channels": _fmt(channels=0),
    "0-rate": _fmt(rate=0),
    "huge-rate": _fmt(rate=2**32 - 1),
    "0-bits": _fmt(bits=0),
    "7-bits": _fmt(bits=7),
    "float-16bit": _fmt(tag=3, bits=16),
    "unknown-tag": _fmt(tag=0x1234),
    "short-fmt": _fmt()[:10],
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_wav_headers_with_impossible_fields(tmp_path, case):
    samples = (0.3 * np.sin(np.arange(FEAT.n_samples) / 3) * 32767).astype("<i2").tobytes()
    path = tmp_path / f"{case}.wav"
    path.write_bytes(_riff(HEADER_CASES[case], samples))
    for channel in (None, "mean", 0):
        try:
            read_clip(path, FEAT, channel=channel)
        except AudioError as exc:
            _one_line_naming(exc, path)


def test_damaged_wavs(tmp_path):
    t = np.arange(FEAT.n_samples) / SR
    good = write_wav(tmp_path / "good.wav", 0.3 * np.sin(2 * np.pi * 440 * t), SR).read_bytes()
    rng = np.random.default_rng(1)
    for name, data in _mutants(good, rng, n_flips=60):
        path = tmp_path / f"{name}.wav"
        path.write_bytes(data)
        for channel in (None, "mean"):
            try:
                wave = read_clip(path, FEAT, channel=channel)
            except AudioError as exc:
                _one_line_naming(exc, path)
            else:
                assert wave.shape == (FEAT.n_samples,) and np.isfinite(wave).all()
