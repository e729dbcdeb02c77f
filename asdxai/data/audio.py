"""Reading and writing clips: validated mono float32 waveforms of a fixed length.

Every problem with a wav file raises :class:`asdxai.errors.AudioError` with one
line that names the file and says what is wrong; nothing is fixed silently.

Rules
-----
* Format: anything libsndfile reads. 8-bit PCM is accepted and scaled to
  [-1, 1) like every other PCM depth (quantisation step 1/128).
* Channels: mono. A multi-channel file is an error unless ``channel`` picks one
  channel (int) or asks for the mean over channels (``"mean"``).
* Reading: only the frames a clip keeps are read, so a header declaring hours of
  audio costs no more memory than ``cfg.n_samples`` frames.
* Sample rate: must equal ``cfg.sample_rate``; there is no silent resampling.
* Truncation: for RIFF/WAVE files the size declared in the ``data`` chunk is
  checked against the bytes present, so a file cut short (mid-frame or at a
  frame boundary) is an error rather than a shorter clip. Other containers are
  read as far as libsndfile can and are then subject to the length rule.
* Values: NaN/inf samples are an error, and so are samples so large that the
  clip's spectrum would overflow float32; an all-zero clip is an error unless
  ``allow_silent=True``.
* Length: a clip shorter than ``cfg.n_samples`` is zero-padded at the end, a
  longer one is trimmed at the end; a clip shorter than half of
  ``cfg.duration_s`` is an error.
* Names: a file name with bytes that are not UTF-8 is read like any other; messages
  show such bytes as ``\\xNN`` escapes (:func:`display_name`).
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from .._atomic import atomic_path
from .._checks import Integral, Interval, check_params
from ..errors import AudioError
from ..features import FeatureConfig

logger = logging.getLogger(__name__)

_STREAMING_SIZES = (0, 0xFFFFFFFF)  # data-chunk sizes written by streaming encoders
#: Most channels a file may have (even when one is picked, all are decoded).
MAX_CHANNELS = 64
#: Largest sum of sample magnitudes whose spectrum (a sum of at most that much) and spectrogram
#: stay finite in float32, with a 4x margin for rounding and the mean normalisation.
_MAX_MAGNITUDE_SUM = float(np.finfo(np.float32).max) / 4


def display_name(path: str | os.PathLike) -> str:
    """``path`` as text that can always be printed or written as UTF-8.

    Bytes of the name that are not valid UTF-8 (held by Python as surrogate escapes)
    are shown as ``\\xNN``.

    Parameters
    ----------
    path : path-like
        A file name.

    Returns
    -------
    str
        The name, with undecodable bytes escaped.
    """
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


def _riff_data_check(path: Path, size: int) -> None:
    """Raise AudioError when a RIFF/WAVE file holds fewer data bytes than its header declares."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return
            endian = "<" if head[:4] == b"RIFF" else ">"
            block_align = None
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                chunk_id, chunk_size = struct.unpack(endian + "4sI", fh.read(8))
                if chunk_id == b"fmt " and chunk_size >= 14:
                    block_align = struct.unpack(endian + "HHIIH", fh.read(14))[4]
                if chunk_id == b"data":
                    present = size - (pos + 8)
                    if chunk_size in _STREAMING_SIZES:
                        return
                    if present < chunk_size:
                        partial = ""
                        if block_align and present % block_align:
                            partial = ", ending mid-frame"
                        raise AudioError(
                            f"{display_name(path)}: truncated wav file: header declares "
                            f"{chunk_size} bytes of audio, file holds {present}{partial}"
                        )
                    return
                pos += 8 + chunk_size + (chunk_size & 1)
    except OSError as exc:
        raise AudioError(f"{display_name(path)}: cannot read file ({exc.strerror})") from None


def _open_info(path: Path) -> sf._SoundFileInfo:
    name = display_name(path)
    if not path.exists():
        raise AudioError(f"{name}: file not found")
    if not path.is_file():
        raise AudioError(f"{name}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{name}: empty file (0 bytes)")
    try:
        info = sf.info(os.fsencode(path))
    except (sf.SoundFileError, RuntimeError) as exc:
        reason = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
        raise AudioError(f"{name}: not a readable audio file ({reason.strip()})") from None
    _riff_data_check(path, size)
    if info.frames <= 0:
        raise AudioError(f"{name}: no audio frames (header only or truncated)")
    return info


def clip_duration(path: str | os.PathLike) -> float:
    """Duration of an audio file in seconds (header only, no samples read).

    Raises
    ------
    AudioError
        Missing, empty, unreadable or truncated file, or a file with no frames.
    """
    path = Path(path)
    return _open_info(path).duration


def read_clip(
    path: str | os.PathLike,
    cfg: FeatureConfig,
    *,
    channel: int | str | None = None,
    allow_silent: bool = False,
) -> np.ndarray:
    """Read, validate and pad/trim one clip.

    Parameters
    ----------
    path : path-like
        Audio file (wav).
    cfg : FeatureConfig
        Gives the required sample rate (Hz) and clip length ``cfg.n_samples``.
    channel : int, "mean" or None
        For multi-channel files: None (default) raises, an int selects that
        channel (0-based), ``"mean"`` averages the channels.
    allow_silent : bool
        Accept a clip whose samples are all zero (default: error).

    Returns
    -------
    np.ndarray [shape=(cfg.n_samples,), dtype=float32]
        Waveform in [-1, 1] for PCM files; zero-padded or trimmed at the end.
        A clip shorter than half of ``cfg.duration_s`` is an error.

    Raises
    ------
    AudioError
        One line naming the file: missing, empty, not audio, header only,
        truncated, wrong channel count, wrong sample rate, non-finite samples,
        samples so large that the spectrum would overflow, silent, too short.
        Values are checked on the samples the clip keeps.
    """
    path = Path(path)
    name = display_name(path)
    info = _open_info(path)
    # every problem the header shows, in one line (a stereo 44.1 kHz file names both)
    problems, fixes = [], []
    if info.samplerate != cfg.sample_rate:
        problems.append(f"sample rate {info.samplerate} Hz, expected {cfg.sample_rate} Hz")
        fixes.append(("resample", f"-r {cfg.sample_rate}"))
    if info.channels > MAX_CHANNELS:
        problems.append(f"{info.channels} channels; at most {MAX_CHANNELS} are supported")
    elif info.channels > 1 and channel is None:
        problems.append(f"{info.channels} channels, expected mono")
        fixes.append(("downmix", "-c 1"))
    if problems:
        how = ""
        if fixes:
            verbs, args = " and ".join(f[0] for f in fixes), " ".join(f[1] for f in fixes)
            how = f"; {verbs} the file (e.g. sox in.wav {args} out.wav)"
        raise AudioError(f"{name}: {'; '.join(problems)}{how}")
    n = cfg.n_samples
    wanted = min(info.frames, n)  # never more than the clip keeps, whatever the header says
    try:
        data, _ = sf.read(os.fsencode(path), frames=wanted, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(f"{name}: cannot decode audio ({_first_line(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{name}: no audio frames (header only or truncated)")
    if data.shape[0] < wanted:
        raise AudioError(
            f"{name}: truncated audio file: header declares {info.frames} frames, "
            f"only {data.shape[0]} could be read"
        )
    if info.channels > 1:
        if channel == "mean":
            wave = data.mean(axis=1, dtype=np.float64).astype(np.float32)
        elif isinstance(channel, (int, np.integer)) and not isinstance(channel, bool):
            if not 0 <= channel < info.channels:
                raise AudioError(
                    f"{name}: channel {channel} requested but the file has "
                    f"{info.channels} channels (0..{info.channels - 1})"
                )
            wave = np.ascontiguousarray(data[:, channel])
        else:
            raise AudioError(f"{name}: invalid channel choice {channel!r} (an int or 'mean')")
    else:
        wave = data[:, 0]

    bad = int(np.count_nonzero(~np.isfinite(wave)))
    if bad:
        raise AudioError(f"{name}: {bad} non-finite samples (NaN or inf)")
    magnitude = float(np.abs(wave).sum(dtype=np.float64))
    if magnitude > _MAX_MAGNITUDE_SUM:
        raise AudioError(
            f"{name}: sample values too large (peak {float(np.abs(wave).max()):.3g}); the "
            "clip's spectrum would overflow float32"
        )
    if not allow_silent and not np.any(wave):
        raise AudioError(f"{name}: silent clip (all samples are zero)")

    if wave.shape[0] * 2 < n:
        raise AudioError(
            f"{name}: clip is {wave.shape[0] / cfg.sample_rate:.3f} s long, shorter than half "
            f"the configured duration {cfg.duration_s:g} s"
        )
    if wave.shape[0] < n:
        logger.debug("%s: %d samples, zero-padded to %d", name, wave.shape[0], n)
        wave = np.concatenate([wave, np.zeros(n - wave.shape[0], dtype=np.float32)])
    elif info.frames > n:
        logger.debug("%s: %d samples, trimmed to %d", name, info.frames, n)
    return np.ascontiguousarray(wave, dtype=np.float32)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def write_wav(path: str | os.PathLike, wave: np.ndarray, sample_rate: int) -> Path:
    """Write a mono clip as 16-bit PCM wav, atomically (temporary name + rename).

    Parameters
    ----------
    path : path-like
        Output file.
    wave : np.ndarray [shape=(L,)]
        Samples, nominally in [-1, 1]; values outside are clipped (with a warning).
    sample_rate : int
        Hz.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise AudioError(
            f"{display_name(path)}: expected a mono waveform (L,), got shape {wave.shape}"
        )
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{display_name(path)}: refusing to write non-finite samples (NaN or inf)")
    check_params({"sample_rate": (Integral, Interval(1, None))}, sample_rate=sample_rate)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak > 1.0:
        logger.warning("%s: peak %.3f exceeds 1.0; clipping", path, peak)
        wave = np.clip(wave, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(os.fsencode(tmp), wave, int(sample_rate), subtype="PCM_16", format="WAV")
    return path
