"""Reading clips: every bad-wav case gives one clear line naming the file."""

from __future__ import annotations

import logging
import os
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdxai.data.audio import clip_duration, read_clip, write_wav
from asdxai.errors import AudioError
from asdxai.features import FeatureConfig

SR = 16_000
CFG = FeatureConfig(sample_rate=SR, duration_s=1.0)  # 16,000 samples per clip


def _tone(n: int = SR, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(n) / sr
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    if channels > 1:
        x = np.stack([x * (c + 1) / channels for c in range(channels)], axis=1)
    return x.astype(np.float32)


def _write(path: Path, data: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), data, sr, subtype=subtype, format="WAV")
    return path


def _raises(path: Path, match: str, **kwargs) -> str:
    with pytest.raises(AudioError, match=match) as info:
        read_clip(path, CFG, **kwargs)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    return msg


def test_reads_mono_16bit(tmp_path):
    x = _tone()
    wave = read_clip(_write(tmp_path / "ok.wav", x), CFG)
    assert wave.shape == (CFG.n_samples,) and wave.dtype == np.float32
    np.testing.assert_allclose(wave, x, atol=1 / 32768 + 1e-7)


def test_default_config_gives_ten_seconds(tmp_path):
    path = _write(tmp_path / "ten.wav", _tone(10 * SR))
    assert read_clip(path, FeatureConfig()).shape == (160_000,)
    assert clip_duration(path) == pytest.approx(10.0)


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.wav", "file not found")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _raises(path, r"empty file \(0 bytes\)")


def test_header_only(tmp_path):
    full = _write(tmp_path / "full.wav", _tone()).read_bytes()
    assert full[36:40] == b"data"
    # header whose data chunk is empty
    path = tmp_path / "header.wav"
    path.write_bytes(full[:4] + struct.pack("<I", 36) + full[8:40] + struct.pack("<I", 0))
    _raises(path, "no audio frames")
    # the header of a full file with every sample cut away
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full[:44])
    _raises(cut, "truncated wav file: header declares 32000 bytes of audio, file holds 0")


def test_truncated_mid_frame_and_at_frame_boundary(tmp_path):
    full = _write(tmp_path / "full.wav", _tone()).read_bytes()
    mid = tmp_path / "mid.wav"
    mid.write_bytes(full[: 44 + 20001])  # half a 16-bit sample
    _raises(mid, "truncated wav file.*holds 20001, ending mid-frame")
    edge = tmp_path / "edge.wav"
    edge.write_bytes(full[: 44 + 20000])
    msg = _raises(edge, "truncated wav file.*holds 20000")
    assert "mid-frame" not in msg


def test_streaming_header_size_is_not_truncation(tmp_path):
    full = bytearray(_write(tmp_path / "full.wav", _tone()).read_bytes())
    full[40:44] = struct.pack("<I", 0xFFFFFFFF)  # size unknown, as written to a pipe
    path = tmp_path / "stream.wav"
    path.write_bytes(bytes(full))
    assert read_clip(path, CFG).shape == (CFG.n_samples,)


def test_not_a_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    _raises(path, "not a readable audio file")
    _raises(tmp_path, "not a file")


def test_stereo_needs_a_channel_choice(tmp_path):
    x = _tone(channels=2)
    path = _write(tmp_path / "stereo.wav", x)
    msg = _raises(path, "2 channels, expected mono; downmix")
    assert "channel=" not in msg  # the CLI has no such option; library errors name no flags
    np.testing.assert_allclose(read_clip(path, CFG, channel=1), x[:, 1], atol=1e-4)
    np.testing.assert_allclose(read_clip(path, CFG, channel="mean"), x.mean(axis=1), atol=1e-4)
    _raises(path, "channel 2 requested but the file has 2 channels", channel=2)
    _raises(path, "invalid channel choice", channel="left")


def test_8bit_pcm_is_accepted_and_scaled(tmp_path):
    x = _tone()
    path = _write(tmp_path / "u8.wav", x, subtype="PCM_U8")
    assert sf.info(str(path)).subtype == "PCM_U8"
    wave = read_clip(path, CFG)
    assert wave.dtype == np.float32
    np.testing.assert_allclose(wave, x, atol=1 / 128 + 1e-6)
    assert 0.45 < np.abs(wave).max() <= 0.51


@pytest.mark.parametrize("rate", [44_100, 48_000, 8_000])
def test_wrong_sample_rate_is_an_error(tmp_path, rate):
    path = _write(tmp_path / f"r{rate}.wav", _tone(rate, rate), sr=rate)
    _raises(path, f"sample rate {rate} Hz, expected 16000 Hz")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_wav(tmp_path, bad):
    x = _tone()
    x[100] = bad
    x[200] = bad
    path = _write(tmp_path / "nan.wav", x, subtype="FLOAT")
    _raises(path, "2 non-finite samples")


def test_silent_clip(tmp_path):
    path = _write(tmp_path / "silent.wav", np.zeros(SR, np.float32))
    _raises(path, "silent clip")
    wave = read_clip(path, CFG, allow_silent=True)
    assert wave.shape == (CFG.n_samples,) and not wave.any()


def test_short_clip_is_zero_padded_at_the_end(tmp_path):
    x = _tone(int(0.7 * SR))
    wave = read_clip(_write(tmp_path / "short.wav", x), CFG)
    assert wave.shape == (CFG.n_samples,)
    np.testing.assert_allclose(wave[: len(x)], x, atol=1e-4)
    assert not wave[len(x) :].any()
    # exactly half the duration is still accepted
    half = read_clip(_write(tmp_path / "half.wav", _tone(SR // 2)), CFG)
    assert half.shape == (CFG.n_samples,)


def test_clip_shorter_than_half_is_an_error(tmp_path):
    path = _write(tmp_path / "tiny.wav", _tone(SR // 2 - 1))
    _raises(path, "shorter than half the configured duration 1 s")


def test_long_clip_is_trimmed_at_the_end(tmp_path):
    x = _tone(int(1.6 * SR))
    wave = read_clip(_write(tmp_path / "long.wav", x), CFG)
    np.testing.assert_allclose(wave, x[: CFG.n_samples], atol=1e-4)


def test_float_wav_keeps_values(tmp_path):
    x = _tone() * 3  # float wavs may exceed 1; read as stored
    wave = read_clip(_write(tmp_path / "f.wav", x, subtype="FLOAT"), CFG)
    np.testing.assert_array_equal(wave, x)


def test_write_wav_round_trip_atomic(tmp_path):
    x = _tone()
    out = write_wav(tmp_path / "sub" / "out.wav", x, SR)
    assert out == tmp_path / "sub" / "out.wav"
    info = sf.info(str(out))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (
        "WAV", "PCM_16", SR, 1,
    )  # fmt: skip
    np.testing.assert_allclose(read_clip(out, CFG), x, atol=1 / 32768 + 1e-7)
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.wav"]  # no temp file left
    assert clip_duration(out) == pytest.approx(1.0)


def test_write_wav_clips_and_rejects_bad_input(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        out = write_wav(tmp_path / "loud.wav", np.array([2.0, -3.0, 0.5] * 100), SR)
    assert "clipping" in caplog.text
    data, _ = sf.read(str(out))
    assert data.max() <= 1.0 and data.min() >= -1.0 and data[2] == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(AudioError, match="non-finite"):
        write_wav(tmp_path / "nan.wav", np.array([0.0, np.nan]), SR)
    with pytest.raises(AudioError, match="mono"):
        write_wav(tmp_path / "st.wav", np.zeros((10, 2)), SR)
    assert not (tmp_path / "nan.wav").exists()
    assert not list(tmp_path.glob("*.part"))


def test_clip_duration_errors(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        clip_duration(path)
    assert clip_duration(_write(tmp_path / "d.wav", _tone(24_000))) == pytest.approx(1.5)


def test_float_wav_whose_spectrum_would_overflow_is_an_error(tmp_path):
    x = _tone() * np.float32(1e36)  # finite float32 samples; their FFT overflows
    path = _write(tmp_path / "huge.wav", x, subtype="FLOAT")
    _raises(path, r"sample values too large \(peak 5e\+35\); the clip's spectrum would overflow")
    ok = _write(tmp_path / "loud.wav", _tone() * 1000, subtype="FLOAT")
    assert np.isfinite(read_clip(ok, CFG)).all()


def test_only_the_kept_frames_are_read(tmp_path):
    """A header declaring 64 MiB of audio (a sparse file) costs one clip of memory, not 128 MiB."""
    path = _write(tmp_path / "big.wav", _tone())
    declared = 64 * 2**20
    with open(path, "r+b") as fh:
        fh.seek(40)
        fh.write(struct.pack("<I", declared))  # the data chunk's size
        fh.seek(4)
        fh.write(struct.pack("<I", 36 + declared))  # the RIFF size
        fh.truncate(44 + declared)  # sparse: the rest of the declared audio is zeros
    tracemalloc.start()
    try:
        wave = read_clip(path, CFG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(wave, _tone(), atol=1e-4)
    assert peak < 8 * CFG.n_samples * 4  # a few copies of one float32 clip, not 32M frames


def test_truncated_flac_is_an_error(tmp_path):
    path = tmp_path / "cut.flac"
    sf.write(str(path), _tone(2 * SR), SR, format="FLAC")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioError, match="cut.flac: ") as info:
        read_clip(path, CFG)
    assert "\n" not in str(info.value)


def test_non_utf8_file_name_is_read_and_named(tmp_path):
    folder = os.fsencode(tmp_path)
    raw = os.path.join(folder, b"section_00_\xff.wav")
    path = Path(os.fsdecode(raw))  # how Python holds an undecodable byte: a surrogate escape
    write_wav(path, _tone(), SR)
    assert os.path.exists(raw)
    np.testing.assert_allclose(read_clip(path, CFG), _tone(), atol=1e-4)
    assert clip_duration(path) == 1.0
    silent = Path(os.fsdecode(os.path.join(folder, b"silent_\xfe.wav")))
    write_wav(silent, np.zeros(SR), SR)
    with pytest.raises(AudioError, match=r"silent_\\xfe\.wav: silent clip") as info:
        read_clip(silent, CFG)
    str(info.value).encode("utf-8")  # printable anywhere: no surrogates left in the message


def test_too_many_channels_are_refused_before_decoding(tmp_path):
    path = _write(tmp_path / "many.wav", np.tile(_tone()[:, None], (1, 65)))
    _raises(path, "65 channels; at most 64 are supported", channel=0)


def test_a_clip_with_two_problems_reports_both(tmp_path):
    path = _write(tmp_path / "cd.wav", _tone(44_100, 44_100, channels=2), 44_100)
    msg = _raises(path, "sample rate 44100 Hz, expected 16000 Hz; 2 channels, expected mono")
    assert "resample and downmix the file (e.g. sox in.wav -r 16000 -c 1 out.wav)" in msg
