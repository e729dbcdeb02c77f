"""Synthetic data in the exact DCASE2022 Task 2 layout (the embedded default data).

``generate(out, preset="mini")`` writes::

    out/dev_data/<machine>/train/section_00_source_train_normal_0000_<attrs>.wav
    out/dev_data/<machine>/test/section_00_target_test_anomaly_0003_<attrs>.wav
    out/dev_data/<machine>/attributes_00.csv          file_name,d1p,d1v[,d2p,d2v]
    out/eval_data/<machine>/train/section_03_source_train_normal_0000_<attrs>.wav
    out/eval_data/<machine>/test/section_03_0000.wav  (unlabeled, shuffled)
    out/ground_truth/ground_truth_data/ground_truth_<machine>_section_03_test.csv  (wav,label)
    out/ground_truth/ground_truth_domain/...  (wav,domain)
    out/ground_truth/ground_truth_attributes/...  (wav,full_name)
    out/anomaly_masks.h5
    out/components.h5
    out/synth.json

16 kHz mono 16-bit PCM wav files. Ground-truth CSVs follow the organisers' evaluator
(no header; label 1 = anomaly; domain 0 = source, 1 = target; full name without
``.wav``).

How a clip is made (see :mod:`asdxai.data.synth_sounds` for the sound models)
----------------------------------------------------------------------------
* **Machine** (label-bearing): seven machine types with structured sound -- fan
  (blade-pass harmonics with a housing resonance), gearbox (meshing harmonics with
  shaft-rate sidebands), bearing (resonances excited by a periodic impact train),
  slider (on/off strokes: friction noise, motor whine, end-stop clicks), valve
  (broadband openings in a fixed pattern over a pump hum whose pitch follows the
  speed), ToyCar (motor whine with speed-dependent pitch, gear whine, running noise),
  ToyTrain (motor whine and click pairs at the rail joints of one track shared by
  every unit). A section is a fixed machine unit; in section ``s`` the
  attribute changes one knob, ``("speed", "load", "variant")[s % 3]``: speed
  factors 0.94/1.00/1.06 (source) and 0.88/1.12 (target); load 0/1/2 (source) and
  3 (target, spectral tilt / noise share); structural variant A/B (source) and C/D
  (target: housing resonance, harmonic profile, resonance set, stroke or valve
  pattern, bogie gap).
* **Target domain**: the shifted attribute values above, another microphone
  colouring (a presence bump and a low cut) and another background bank (other
  mix of event types and tilts); 10 training clips per section.
* **Background** (label-free, drawn from its own random stream, identical in
  distribution for normal and anomalous clips): coloured noise with a random tilt
  (-6..+2 dB/octave), 1-3 random spectral bumps and a slow level fluctuation, plus
  random events -- impacts, hammering, hums of other machines at random
  fundamentals (40-500 Hz), babble-like formant noise, door slams, trains of short
  clicks in a random band ("ticks", a neighbouring machine's rattle). The
  machine -- at unit RMS, with or without its anomaly -- is mixed at a
  machine-to-background ratio drawn per clip uniformly in -6..+6 dB.
* **Anomalies** (half of each test domain): small, machine-specific changes of the
  machine's own structure in a direction no normal clip takes, over the whole clip
  or a random 40-70 % segment: speed wobble (8-14 %, 0.5-2 Hz), speed drift (12-20 %
  beyond every attribute's speed range), rattles / knocks (out-of-pattern clicks
  0-4 dB below the machine), a bearing-fault impact train at a new rate, a
  stalled slider (2-3 stroke cycles that do not happen), missing / extra valve
  openings, a valve stuck open 0.3-0.6 s (every pattern's openings last
  0.05-0.14 s), missing rail clicks, clicks of a loose part (its own ring). A speed
  anomaly of the toy train moves its rail clicks too (the wheels pass the joints at
  the train's speed). A test checks that every non-speed anomaly changes its
  machine inside its segment and nowhere else.
* **Placement and level**: a per-clip spectral tilt (normal, sd 2 dB/octave) on the
  mix, which the models do not see (their input subtracts each bin's temporal mean);
  the final mix is normalised to an RMS drawn uniformly in -36..-26 dBFS
  (label-independent), the mean removed, peaks limited to 0.99 by scaling (which
  then almost never acts, so the level does not follow the crest factor).

Ground-truth masks (``anomaly_masks.h5``)
-----------------------------------------
Every anomalous clip is rendered twice from the same random draws, with and
without its anomaly; both machine signals (after microphone colouring) go through
:func:`asdxai.features.spectrogram` (n_fft 1024, hop 512, Hann, no centre
padding). The mask is ``|S_anomalous - S_normal| >= max(S_normal) * 10**(-30/20)``,
i.e. the cells where the magnitude changes by more than -30 dB relative to the
loudest machine cell of the clip. One ``bool`` dataset of shape ``(T, F)`` per
anomalous clip, at the HDF5 path equal to the clip's path relative to ``out``
(``f["dev_data/fan/test/section_00_source_test_anomaly_0000_rpm_94.wav"]``; HDF5
groups follow the folders), with attributes ``kind``, ``t0``, ``t1`` (seconds),
``threshold_db``, ``machine``, ``section``, ``domain`` and ``full_name``.

Component ground truth (``components.h5``)
-------------------------------------------
Machine and background come from separate random streams, and the mix is linear, so
every test clip (normal and anomalous, dev and eval) is also split into its machine,
its whole background and the background's transient events, each exactly as mixed
into the clip. On the spectrogram grid this gives the machine-to-background level of
every (T, F) cell (dB, ``int8`` in 0.5 dB steps) and a ``bool`` mask of the cells
where transient events (impacts, hammering, other machines' hums, babble, door
slams) hold at least half of the power; one HDF5 group per clip at the clip's path,
as in ``anomaly_masks.h5``. Rules, layout and the loader:
:mod:`asdxai.data.components`.

Determinism
-----------
Clip ``i`` (its position in the sorted job list) uses only
``np.random.default_rng([seed, i])`` (spawned into background, machine, anomaly and
mix streams); section designs are fixed. Parallel and serial runs write identical
bytes (``components.h5`` is written in clip-index order as clips arrive).

Generator versions
------------------
Trees record their version in ``synth.json``; every change serves a SYNTH.md
principle, stated where it is made in :mod:`asdxai.data.synth_sounds`.

* **v3**: wobble 8-14 % and drift 12-20 % beyond the speed range (v2's stayed inside
  one attribute step and were at chance for every model).
* **v4** (measured with a dual width-0.25 SC-AdaCos attribute model on ``small``):
  a stalled slider replaces the stretched stroke, which turned one variant's stroke
  into another's (kind AUC source / target 0.71 / 0.60 -> 0.98 / 0.97); a valve
  stuck open replaces the leak hiss (0.60 / 0.55 -> 0.76 / 0.72; a chatter, a water
  hammer and a tempo drift tried in its place stayed near chance); loose-part
  clicks ring at their own frequency (0.51 -> 0.78 / 0.72); rail clicks follow the
  train's speed track; toy-train units share the track's rail joints and click ring
  (v3's clicks alone told every ToyTrain class apart); the valve pump's pitch
  follows the speed. The last two were meant to make the classifier listen to the
  train's motor and the valve's tempo; it still does not (removing the motor moves
  an embedding by 0.015), so the train's wobble stays near chance. Training clips of
  fan, gearbox, bearing, slider and ToyCar are byte-identical to v3.
* **v5**: ``components.h5`` (machine-to-background level and background-event mask of
  every test clip, SYNTH.md principle 7). Every wav file and ``anomaly_masks.h5`` are
  byte-identical to v4.

* **v6** (SYNTH.md principle 5: no global clip statistic finds the anomalies of any
  machine type; :mod:`asdxai.benchmarks.leakage`): the machine is mixed at unit RMS
  with or without its anomaly (v5 scaled both by the normal counterpart, so an anomaly
  that added or removed sound moved the clip's spectral balance); background "ticks"
  give normal clips the impulsive events a rattle adds; how hard the slider's end stops
  hit and how rough and evenly the bearing runs vary per clip; the placement tilt's sd
  is 2 dB/octave (v5: 0.5); the level range is 4 dB lower, so the peak limiter (which
  lowered impulsive clips) is idle; a bearing fault's impact train runs slower or
  faster than the normal one (v5: only faster); knock and rattle bands are drawn; a
  slider's rattle sits 10-4 dB below the machine and a stall drops 1-2 stroke cycles
  (v5: 0-4 dB, 2-3 cycles, which raised every such clip's crest factor). The trivial
  unsupervised detector's AUC per machine type, on section 00 with 90 training and
  100 test clips: v5 / v6 bearing 0.654 / 0.596, fan 0.701 / 0.620, slider 0.634 /
  0.463, ToyCar 0.676 / 0.588, ToyTrain 0.636 / 0.608, gearbox 0.532 / 0.435, valve
  0.504 / 0.532 (one sample of 100 clips: standard error about 0.06); the full
  measurement on ``small`` is in ``docs/results/leakage_small_g6.md``. A fix made after
  those measurements keeps the end-stop clicks of a stalled slider's remaining strokes as
  in its normal counterpart (the first v6 trees re-drew their jitter, so the stall also
  changed clicks outside its segment); it changes only the anomalous slider-stall test
  clips and their masks, every other file is byte-identical.

Presets
-------
========  ========  ============  =========  ===============  ==============  =======
preset    machines  dev + eval    clip (s)   train / section  test / domain   clips
========  ========  ============  =========  ===============  ==============  =======
mini      4         2 + 1         2.0        40 src + 10 tgt  10 + 10         1,080
small     7         3 + 1         3.0        150 src + 10 tgt 25 + 25         7,280
full      7         3 + 3         10.0       990 src + 10 tgt 50 + 50         50,400
========  ========  ============  =========  ===============  ==============  =======
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import io
import json
import logging
import multiprocessing
import os
import resource
import shutil
import signal
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf
import torch
from tqdm.auto import tqdm

from .._atomic import atomic_path, atomic_write_text, ensure_writable_dir
from .._checks import Integral, Interval, Real, check_params
from .._h5 import write_h5
from ..errors import ConfigError
from ..features import FeatureConfig, spectrogram
from .components import (
    COMPONENTS_FILE,
    EVENT_RULE,
    LEVEL_RANGE_DB,
    LEVEL_RULE,
    LEVEL_STEP_DB,
    component_truth,
    encode_level,
)
from .records import SPLITS
from .synth_sounds import (
    MACHINES,
    SR,
    Condition,
    attribute_values,
    draw_anomaly,
    draw_clip,
    mic_gain_db,
    render_background_parts,
    render_machine,
)

log = logging.getLogger(__name__)

GENERATOR_VERSION = "6"
MASK_THRESHOLD_DB = 30.0  # mask: |S_anom - S_norm| >= max(S_norm) * 10**(-30/20)
MBR_RANGE_DB = (-6.0, 6.0)  # machine-to-background ratio, uniform per clip
# v6: 4 dB lower (v5: -32..-22) so that the peak limiter (which lowers the level of
# impulsive clips) almost never acts: the level must not follow the crest factor
LEVEL_RANGE_DBFS = (-36.0, -26.0)  # final RMS, uniform per clip
#: Shortest clip the sound models can render (s): a background babble event lasts at least 1 s
#: (``synth_sounds._event``); shorter clips are refused up front.
MIN_DURATION_S = 1.0
MASK_RULE = (
    "mask = |S_anomalous - S_normal| >= max(S_normal) * 10**(-threshold_db/20); S = magnitude "
    "spectrogram (n_fft 1024, hop 512, Hann, no centre padding) of the machine signal alone, "
    "rendered with and without the anomaly from the same random draws"
)

__all__ = ["PRESETS", "PresetConfig", "generate", "GENERATOR_VERSION", "MASK_THRESHOLD_DB"]


@dataclass(frozen=True)
class PresetConfig:
    """Size of a synthetic tree (see the table in the module docstring)."""

    name: str
    machines: tuple[str, ...] = MACHINES  # machine types, in this order
    dev_sections: tuple[int, ...] = (0, 1, 2)  # written under dev_data/ (labelled test names)
    eval_sections: tuple[int, ...] = (3,)  # written under eval_data/ (unlabeled test names)
    duration_s: float = 3.0  # clip length in seconds
    n_train_source: int = 150  # source-domain normal training clips per section
    n_train_target: int = 10  # target-domain normal training clips per section
    n_test: int = 25  # test clips per domain and label (normal = anomalous = n_test)
    extra: dict = field(default_factory=dict, compare=False)  # free-form notes

    def __post_init__(self) -> None:
        bad = [m for m in self.machines if m not in MACHINES]
        if bad:
            raise ConfigError(f"unknown machine types {bad}; choose from {list(MACHINES)}")
        if set(self.dev_sections) & set(self.eval_sections):
            raise ConfigError("a section cannot be both a dev and an eval section")
        if any(not 0 <= s <= 99 for s in self.dev_sections + self.eval_sections):
            raise ConfigError("sections must lie in 0..99")
        count = (Integral, Interval(1, None))
        check_params({"n_train_source": count, "n_train_target": count, "n_test": count,
                      "duration_s": (Real, Interval(MIN_DURATION_S, None))},
                     n_train_source=self.n_train_source, n_train_target=self.n_train_target,
                     n_test=self.n_test, duration_s=self.duration_s)  # fmt: skip

    @property
    def n_samples(self) -> int:
        return int(round(self.duration_s * SR))

    def feature_config(self) -> FeatureConfig:
        """The :class:`FeatureConfig` that matches the clips (16 kHz, this duration)."""
        return FeatureConfig(sample_rate=SR, duration_s=self.duration_s)

    def counts(self) -> dict[str, dict[str, int]]:
        """Clips per machine type and split (dev-train, dev-test, eval-train, eval-test)."""
        train = self.n_train_source + self.n_train_target
        test = 4 * self.n_test
        per = {
            "dev-train": train * len(self.dev_sections),
            "dev-test": test * len(self.dev_sections),
            "eval-train": train * len(self.eval_sections),
            "eval-test": test * len(self.eval_sections),
        }
        return {m: dict(per) for m in self.machines}

    @property
    def n_clips(self) -> int:
        return sum(sum(c.values()) for c in self.counts().values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


PRESETS: dict[str, PresetConfig] = {
    "mini": PresetConfig(
        "mini",
        machines=("fan", "gearbox", "valve", "ToyCar"),
        dev_sections=(0, 1),
        eval_sections=(3,),
        duration_s=2.0,
        n_train_source=40,
        n_train_target=10,
        n_test=10,
    ),
    "small": PresetConfig(
        "small",
        machines=MACHINES,
        dev_sections=(0, 1, 2),
        eval_sections=(3,),
        duration_s=3.0,
        n_train_source=150,
        n_train_target=10,
        n_test=25,
    ),
    "full": PresetConfig(
        "full",
        machines=MACHINES,
        dev_sections=(0, 1, 2),
        eval_sections=(3, 4, 5),
        duration_s=10.0,
        n_train_source=990,
        n_train_target=10,
        n_test=50,
    ),
}


@dataclass(frozen=True)
class _Job:
    idx: int  # global clip index (seeds the clip)
    rel: str  # path relative to out
    full_name: str  # labelled file name (differs from rel's name for eval test clips)
    machine: str
    section: int
    domain: str
    label: str
    attr: str
    cond: Condition


def _jobs(cfg: PresetConfig, seed: int) -> list[_Job]:
    """Every clip of the tree in a fixed order (the order defines the clip indices)."""
    out: list[_Job] = []
    for machine in cfg.machines:
        for section in sorted(cfg.dev_sections + cfg.eval_sections):
            split = "dev_data" if section in cfg.dev_sections else "eval_data"
            base = f"{split}/{machine}"
            sec = f"section_{section:02d}"
            items = []  # (subset, domain, label, index, attr, cond)
            for domain, count in (("source", cfg.n_train_source), ("target", cfg.n_train_target)):
                attrs = attribute_values(machine, section, domain)
                for i in range(count):
                    attr, cond = attrs[i % len(attrs)]
                    items.append(("train", domain, "normal", i, attr, cond))
            test = []
            for domain in ("source", "target"):
                attrs = attribute_values(machine, section, domain)
                for label in ("normal", "anomaly"):
                    for i in range(cfg.n_test):
                        attr, cond = attrs[i % len(attrs)]
                        test.append((domain, label, i, attr, cond))
            if split == "eval_data":  # unlabeled names in a shuffled order, as the organisers
                perm = np.random.default_rng([seed, zlib.crc32(machine.encode()), section, 99])
                order = perm.permutation(len(test))
                test = [test[j] for j in order]
                test = [(d, lab, k, a, c) for k, (d, lab, _, a, c) in enumerate(test)]
            for domain, label, i, attr, cond in test:
                items.append(("test", domain, label, i, attr, cond))
            for subset, domain, label, i, attr, cond in items:
                full = f"{sec}_{domain}_{subset}_{label}_{i:04d}_{attr}.wav"
                name = f"{sec}_{i:04d}.wav" if (subset == "test" and split == "eval_data") else full
                out.append(
                    _Job(
                        len(out),
                        f"{base}/{subset}/{name}",
                        full,
                        machine,
                        section,
                        domain,
                        label,
                        attr,
                        cond,
                    )
                )
    return out


def _filter(x: np.ndarray, gain_db: np.ndarray) -> np.ndarray:
    return np.fft.irfft(np.fft.rfft(x) * 10.0 ** (gain_db / 20.0), len(x))


@dataclass(frozen=True)
class RenderedClip:
    """One rendered clip and, when asked for, its components.

    Attributes
    ----------
    pcm : np.ndarray [shape=(L,)] int16, the samples written to the wav file
    mask : np.ndarray [shape=(T, F)] bool or None, ground-truth anomaly mask (anomalies)
    anomaly : dict or None, the anomaly draw (kind, t0, t1, ...)
    mbr_db : float, the drawn machine-to-background ratio
    machine, background, events : np.ndarray [shape=(L,)] float or None, the machine, the
        whole background and its transient events exactly as mixed into the clip, in
        the units of ``pcm / 32767`` (``machine + background`` is the clip before 16-bit
        rounding; ``events`` is part of ``background``); None unless ``components``
    """

    pcm: np.ndarray
    mask: np.ndarray | None
    anomaly: dict | None
    mbr_db: float
    machine: np.ndarray | None = None
    background: np.ndarray | None = None
    events: np.ndarray | None = None


def render_clip(job: _Job, seed: int, n: int, components: bool = False) -> RenderedClip:
    """Render one clip: int16 samples, its (T, F) anomaly mask and, if asked, its components."""
    root = np.random.default_rng([seed, job.idx])
    r_bg, r_clip, r_anom, r_mix = root.spawn(4)
    clip = draw_clip(r_clip)
    anomaly = draw_anomaly(r_anom, job.cond, n / SR) if job.label == "anomaly" else None
    normal = render_machine(job.cond, clip, None, n)
    gain = 1.0 / (np.sqrt(np.mean(normal**2)) + 1e-12)
    anomalous = render_machine(job.cond, clip, anomaly, n) if anomaly else normal
    # v6: the machine is mixed at unit RMS with or without its anomaly, so the drawn
    # machine-to-background ratio holds for both (v5 scaled by the normal counterpart's
    # RMS: an anomaly that added or removed sound moved the clip's spectral balance --
    # SYNTH.md principle 5); the mask compares the two renders at one scale
    machine = anomalous / (np.sqrt(np.mean(anomalous**2)) + 1e-12)
    bank = 0 if job.domain == "source" else 1
    background, events = render_background_parts(r_bg, n, bank)
    mbr_db = r_mix.uniform(*MBR_RANGE_DB)
    level_db = r_mix.uniform(*LEVEL_RANGE_DBFS)
    mic = mic_gain_db(job.machine, job.section, job.domain, n)
    lf = np.log2(np.maximum(np.fft.rfftfreq(n, 1 / SR), 10.0) / 1000.0)
    # per-clip placement tilt (dB / octave). v6: sd 2 (v5: 0.5), so that band energies
    # of normal clips spread as far as an anomaly moves them (SYNTH.md principle 5); the
    # models do not see a static tilt (their input subtracts each bin's temporal mean)
    mic = mic + r_mix.normal(0, 2.0) * lf
    y = _filter(machine + background * 10 ** (-mbr_db / 20), mic)
    raw = y.copy() if components else None
    y -= y.mean()
    scale = 10 ** (level_db / 20) / (np.sqrt(np.mean(y**2)) + 1e-12)
    y *= scale
    peak = np.abs(y).max()
    if peak > 0.99:
        y *= 0.99 / peak
        scale *= 0.99 / peak
    pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
    mask = None
    cfg = FeatureConfig(sample_rate=SR, duration_s=n / SR)
    if anomaly is not None:
        both = np.stack([_filter(normal * gain, mic), _filter(anomalous * gain, mic)])
        with torch.no_grad():
            s_norm, s_anom = spectrogram(torch.from_numpy(both), cfg=cfg).numpy()
        mask = np.abs(s_anom - s_norm) >= s_norm.max() * 10 ** (-MASK_THRESHOLD_DB / 20)
    if not components:
        return RenderedClip(pcm, mask, anomaly, float(mbr_db))
    # the mix is linear: machine + background = raw, then the same mean removal and scale
    m = _filter(machine, mic)
    e = _filter(events * 10 ** (-mbr_db / 20), mic)
    b = raw - m
    parts = [(c - c.mean()) * scale for c in (m, b, e)]
    return RenderedClip(pcm, mask, anomaly, float(mbr_db), *parts)


def _work(args: tuple[str, int, int, list[_Job]]) -> list[tuple]:
    """Render and write a batch of clips; return, per clip, its path, its packed anomaly
    mask (or None), the mask shape, the anomaly draw and, for test clips, its components
    (int8 level steps, packed event mask, machine-to-background ratio) or None."""
    out, seed, n, jobs = args
    cfg = FeatureConfig(sample_rate=SR, duration_s=n / SR)
    results = []
    for job in jobs:
        test = job.rel.split("/")[2] == "test"
        clip = render_clip(job, seed, n, components=test)
        path = Path(out) / job.rel
        with atomic_path(path) as tmp:
            sf.write(tmp, clip.pcm, SR, subtype="PCM_16", format="WAV")
        parts = None
        if test:
            truth = component_truth(clip.machine, clip.background, clip.events, cfg=cfg)
            parts = (
                encode_level(truth.level_db).tobytes(),
                np.packbits(truth.events).tobytes(),
                clip.mbr_db,
            )
        if clip.mask is None:
            results.append((job.rel, None, (), None, parts))
        else:
            mask = clip.mask
            results.append((job.rel, np.packbits(mask).tobytes(), mask.shape, clip.anomaly, parts))
    return results


def _check_room(out: Path, jobs: list, n: int, cfg: PresetConfig, *, with_truth: bool) -> None:
    """Refuse, before any clip is written, a tree the disk or the file-size limit cannot hold.

    The wav files' bytes are known exactly (16-bit PCM plus a 44-byte header); the ground-truth
    files are bounded by their uncompressed size (one int8 level and one bit per cell and test
    clip), which is checked against ``RLIMIT_FSIZE`` (``ulimit -f``), the limit of one file. A
    disk that fills up during the run (other writers) is still an ``OSError`` at the write.
    """
    wav_bytes = len(jobs) * (2 * n + 44)
    free = shutil.disk_usage(out).free
    if wav_bytes > free:
        raise OSError(errno.ENOSPC, f"{wav_bytes / 2**20:.0f} MB of clips need more than the "
                      f"{free / 2**20:.0f} MB free", os.fspath(out))  # fmt: skip
    feat = cfg.feature_config()
    n_test = sum(j.rel.split("/")[2] == "test" for j in jobs) if with_truth else 0
    largest = max(2 * n + 44, int(n_test * feat.n_frames * feat.n_bins * 1.125))
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and largest > limit:
        raise OSError(errno.EFBIG, f"the ground-truth file may need {largest / 2**20:.0f} MB, "
                      f"the file-size limit is {limit / 2**20:.1f} MB", os.fspath(out))  # fmt: skip


def _exit_worker(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _init_worker(parent: int) -> None:
    """Pool workers are forked: keep torch's intra-op pool out of them (as DataLoader does).

    A worker never outlives ``parent`` (its process id): on Linux the kernel kills it when
    the parent dies, however it dies (``PR_SET_PDEATHSIG``). It leaves Ctrl-C to the parent,
    which ends the pool with SIGTERM (:func:`generate`); that unwinds the worker, so the clip
    it was writing leaves no temporary file.
    """
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_worker)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux: the parent's pool.terminate() ends it
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _grid_attrs(h5: h5py.File, cfg: PresetConfig) -> None:
    """The STFT grid and keying of a ground-truth file (anomaly masks, components)."""
    feat = cfg.feature_config()
    h5.attrs["n_fft"] = feat.n_fft
    h5.attrs["hop_length"] = feat.hop_length
    h5.attrs["sample_rate"] = SR
    h5.attrs["duration_s"] = cfg.duration_s
    h5.attrs["shape"] = (feat.n_frames, feat.n_bins)
    h5.attrs["key"] = "clip path relative to the tree root; HDF5 groups follow the folders"


def _components_header(h5: h5py.File, cfg: PresetConfig) -> None:
    h5.attrs["level_rule"] = LEVEL_RULE
    h5.attrs["event_rule"] = EVENT_RULE
    h5.attrs["level_step_db"] = LEVEL_STEP_DB
    h5.attrs["level_range_db"] = LEVEL_RANGE_DB
    _grid_attrs(h5, cfg)


def _write_components(h5: h5py.File, job: _Job, parts: tuple, shape: tuple[int, int]) -> None:
    level, events, mbr_db = parts
    group = h5.create_group(job.rel, track_order=True)
    count = shape[0] * shape[1]
    level = np.frombuffer(level, np.int8).reshape(shape)
    events = np.unpackbits(np.frombuffer(events, np.uint8), count=count).reshape(shape)
    for name, data in (("level", level), ("events", events.astype(bool))):
        group.create_dataset(
            name, data=data, compression="gzip", compression_opts=4, track_times=False
        )
    group.attrs["mbr_db"] = mbr_db
    group.attrs["machine"] = job.machine
    group.attrs["section"] = f"{job.section:02d}"
    group.attrs["domain"] = job.domain
    group.attrs["label"] = job.label
    group.attrs["full_name"] = job.full_name


def _attr_pairs(attr: str) -> list[str]:
    toks = attr.split("_")
    return toks if len(toks) % 2 == 0 else [attr, ""]


def _write_csvs(out: Path, jobs: list[_Job]) -> None:
    groups: dict[tuple[str, str, int], list[_Job]] = {}
    for job in jobs:
        split = job.rel.split("/")[0]
        groups.setdefault((split, job.machine, job.section), []).append(job)
    for (split, machine, section), group in sorted(groups.items()):
        rows = []
        for job in sorted(group, key=lambda j: j.rel):
            subset = job.rel.split("/")[2]
            if split == "eval_data" and subset == "test":
                continue
            rows.append([f"{machine}/{subset}/{job.rel.split('/')[-1]}", *_attr_pairs(job.attr)])
        width = max(len(r) - 1 for r in rows) // 2
        header = ["file_name"] + [f"d{k}{c}" for k in range(1, width + 1) for c in ("p", "v")]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for r in rows:
            writer.writerow(r + [""] * (len(header) - len(r)))
        atomic_write_text(out / split / machine / f"attributes_{section:02d}.csv", buf.getvalue())
        if split == "eval_data":
            test = sorted((j for j in group if j.rel.split("/")[2] == "test"), key=lambda j: j.rel)
            name = f"ground_truth_{machine}_section_{section:02d}_test.csv"
            for kind, value in (
                ("data", lambda j: str(int(j.label == "anomaly"))),
                ("domain", lambda j: str(int(j.domain == "target"))),
                ("attributes", lambda j: j.full_name[: -len(".wav")]),
            ):
                text = "".join(f"{j.rel.split('/')[-1]},{value(j)}\n" for j in test)
                gt = ensure_writable_dir(out / "ground_truth" / f"ground_truth_{kind}")
                atomic_write_text(gt / name, text)


def _resolve(preset: str | PresetConfig) -> PresetConfig:
    if isinstance(preset, PresetConfig):
        return preset
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    return PRESETS[preset]


def _write_masks(out: Path, results: list[tuple], by_rel: dict, cfg: PresetConfig) -> None:
    """``anomaly_masks.h5``: one ``(T, F)`` bool dataset per anomalous test clip."""
    with write_h5(out / "anomaly_masks.h5", track_order=True) as h5:
        h5.attrs["rule"] = MASK_RULE
        h5.attrs["threshold_db"] = MASK_THRESHOLD_DB
        _grid_attrs(h5, cfg)
        for rel, packed, shape, anomaly in sorted(results, key=lambda r: r[0]):
            if packed is None:
                continue
            count = int(np.prod(shape))
            mask = np.unpackbits(np.frombuffer(packed, np.uint8), count=count).reshape(shape)
            ds = h5.create_dataset(
                rel,
                data=mask.astype(bool),
                compression="gzip",
                compression_opts=4,
                track_times=False,
            )
            job = by_rel[rel]
            ds.attrs["kind"] = anomaly["kind"]
            ds.attrs["t0"] = anomaly["t0"]
            ds.attrs["t1"] = anomaly["t1"]
            ds.attrs["threshold_db"] = MASK_THRESHOLD_DB
            ds.attrs["machine"] = job.machine
            ds.attrs["section"] = f"{job.section:02d}"
            ds.attrs["domain"] = job.domain
            ds.attrs["full_name"] = job.full_name


#: The parts a tree is generated in: the test clips (with their ground-truth files) and the
#: training clips. A split needs the part of its subset.
PARTS = ("test", "train")


def _parts_for(splits: Sequence[str] | None) -> tuple[str, ...]:
    if splits is None:
        return PARTS
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"unknown split(s) {bad}; choose from {', '.join(SPLITS)}")
    return tuple(p for p in PARTS if any(s.endswith(f"-{p}") for s in splits))


def missing_splits(root: str | os.PathLike, splits: Sequence[str] | None = None) -> list[str]:
    """The parts (``test``, ``train``) of ``splits`` (None = all) a synthetic tree lacks."""
    meta = json.loads((Path(root) / "synth.json").read_text())
    have = meta.get("parts", list(PARTS))  # trees written before parts existed are whole
    return [p for p in _parts_for(splits) if p not in have]


#: Hidden file naming the run writing a tree until ``synth.json`` is written, so the same
#: command re-run after an interruption (a kill, SIGTERM, a full disk) continues it.
_STARTED = ".synth-started.json"


def _run_id(cfg: PresetConfig, seed: int, sections: Sequence[int] | None) -> str:
    return json.dumps({"preset": cfg.to_dict(), "seed": seed,
                       "sections": None if sections is None else sorted(sections)})  # fmt: skip


def _mark_started(out: Path, cfg: PresetConfig, seed: int, sections: Sequence[int] | None) -> None:
    if not (out / "synth.json").exists():
        atomic_write_text(out / _STARTED, _run_id(cfg, seed, sections))


def _interrupted(out: Path, cfg: PresetConfig, seed: int, sections: Sequence[int] | None) -> bool:
    """Whether ``out`` holds the partial tree of an interrupted run of these settings."""
    try:
        return (out / _STARTED).read_text() == _run_id(cfg, seed, sections)
    except OSError:
        return False


def generate(
    out: str | os.PathLike,
    *,
    preset: str | PresetConfig = "mini",
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    splits: Sequence[str] | None = None,
    sections: Sequence[int] | None = None,
) -> Path:
    """Write a synthetic tree in the DCASE2022 Task 2 layout.

    Parameters
    ----------
    out : path, output directory (created; files of an earlier run with the same
        preset and seed are overwritten, a tree of another preset is refused)
    preset : "mini" | "small" | "full" or a :class:`PresetConfig`
    seed : int, seeds every clip as ``np.random.default_rng([seed, clip_index])``
    workers : int or None, processes (None: up to 2, bounded by the CPU count; 1: serial).
        The bytes written do not depend on it.
    progress : bool, show a tqdm bar
    splits : the splits to write (None = all). The tree is written in two parts, the test
        clips with their ground-truth files and the training clips; a part already in the tree
        is kept, so a tree grown part by part has the same bytes as one written at once.
    sections : only the clips of these section numbers (None = all), e.g. a quick test set;
        the clips are those of the whole tree (same indices, same bytes). A tree of a section
        subset cannot be grown with other sections.

    Returns
    -------
    Path of the tree (``out``).
    """
    cfg = _resolve(preset)
    out = ensure_writable_dir(out)
    meta_path = out / "synth.json"
    wanted = _parts_for(splits)
    have: list[str] = []
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        same = old.get("preset") == json.loads(json.dumps(cfg.to_dict()))
        if not same or old.get("seed") != seed:
            raise ConfigError(
                f"{out} already holds a synthetic tree with another preset or seed; "
                "choose an empty directory"
            )
        if old.get("sections") != (None if sections is None else sorted(sections)):
            raise ConfigError(f"{out} already holds a synthetic tree of other sections")
        have = [p for p in old.get("parts", PARTS) if p not in wanted]
    elif ((out / "dev_data").exists() or (out / "eval_data").exists()) and not (
        _interrupted(out, cfg, seed, sections)
    ):
        raise ConfigError(f"{out} already holds a DCASE tree that is not synthetic; choose another")
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    check_params({"workers": (Integral, Interval(1, None))}, workers=workers)
    all_jobs = _jobs(cfg, seed)
    if sections is not None:
        unknown = sorted(set(sections) - set(cfg.dev_sections + cfg.eval_sections))
        if unknown:
            raise ConfigError(f"the {cfg.name!r} preset has no section(s) {unknown}")
        all_jobs = [j for j in all_jobs if j.section in sections]
    jobs = [j for j in all_jobs if j.rel.split("/")[2] in wanted]
    _check_room(out, jobs, cfg.n_samples, cfg, with_truth="test" in wanted)
    _mark_started(out, cfg, seed, sections)
    for d in sorted({str(Path(j.rel).parent) for j in jobs}):
        (out / d).mkdir(parents=True, exist_ok=True)
    n = cfg.n_samples
    chunk = 8
    batches = [(str(out), seed, n, jobs[i : i + chunk]) for i in range(0, len(jobs), chunk)]
    # no path here: ``out`` may be a temporary folder the caller renames (the caller names it)
    log.info("writing %d clips (%s preset, %.1f s each)", len(jobs), cfg.name, cfg.duration_s)
    results = []
    by_rel = {j.rel: j for j in jobs}
    feat = cfg.feature_config()
    bar = tqdm(total=len(jobs), desc="synth", unit="clip", disable=not progress)
    # components are written as clips arrive (in job order, so serial and parallel runs
    # write the same bytes): the `full` preset's would not fit in memory at once
    with contextlib.ExitStack() as stack:
        comp = None
        if "test" in wanted:  # the ground-truth files belong to the test part
            comp_tmp = stack.enter_context(atomic_path(out / COMPONENTS_FILE))
            comp = stack.enter_context(h5py.File(comp_tmp, "w", track_order=True))
            _components_header(comp, cfg)

        def keep(res: list[tuple]) -> None:
            for rel, packed, shape, anomaly, parts in res:
                results.append((rel, packed, shape, anomaly))
                if parts is not None and comp is not None:
                    _write_components(comp, by_rel[rel], parts, (feat.n_frames, feat.n_bins))
            bar.update(len(res))

        try:
            if workers == 1:
                for b in batches:
                    keep(_work(b))
            else:  # leaving the block early (error, Ctrl-C, SIGTERM) terminates the workers
                with multiprocessing.Pool(workers, _init_worker, (os.getpid(),)) as pool:
                    for res in pool.imap(_work, batches):
                        keep(res)
                    # done: let the idle workers exit on the pool's sentinel. Terminating them
                    # (what leaving the block does) races with a worker waiting on the task
                    # queue's lock, which the pool holds while it terminates: a hang seen in tests
                    pool.close()
                    pool.join()
        finally:
            bar.close()
    _write_csvs(out, all_jobs)
    if "test" in wanted:
        _write_masks(out, results, by_rel, cfg)
    meta = {
        "generator": "asdxai.data.synth",
        "generator_version": GENERATOR_VERSION,
        "preset": cfg.to_dict(),
        "preset_name": cfg.name,
        "seed": seed,
        "sample_rate": SR,
        "duration_s": cfg.duration_s,
        "n_samples": n,
        "spectrogram_shape": [feat.n_frames, feat.n_bins],
        "counts": cfg.counts(),
        "n_clips": len(all_jobs),
        "parts": [p for p in PARTS if p in wanted or p in have],
        "sections": None if sections is None else sorted(sections),
        "mask_rule": MASK_RULE,
        "mask_threshold_db": MASK_THRESHOLD_DB,
        "machine_to_background_db": list(MBR_RANGE_DB),
        "components_file": COMPONENTS_FILE,
        "component_level_rule": LEVEL_RULE,
        "component_event_rule": EVENT_RULE,
        "level_dbfs": list(LEVEL_RANGE_DBFS),
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    (out / _STARTED).unlink(missing_ok=True)
    return out
