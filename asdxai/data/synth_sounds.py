"""Sound models of the synthetic DCASE-layout generator (see :mod:`asdxai.data.synth`).

Three independent parts make a clip:

* **machine** (label-bearing): one structured sound model per machine type whose
  parameters are set by the section (a fixed machine unit), the attribute value of
  the clip (speed, load or variant) and the domain;
* **anomaly** (optional): a small, machine-specific change of the machine's own
  structure in a direction no normal class takes (speed wobble / drift beyond the
  section's speed range, out-of-pattern impulsive events, missing / extra valve
  openings, a stalled slider, a bearing-fault impact train at a
  new rate);
* **background** (label-free): coloured noise with random tilt and spectral bumps
  plus random factory events (impacts, hammering, hums of other machines,
  babble-like formant noise, door slams), drawn independently of every label.

All renderers are pure functions of parameter dicts: every random draw happens in
``draw_*`` functions (or from integer seeds stored in the dicts), so the machine
can be rendered twice -- with and without its anomaly -- from the same draws, and
the difference of the two gives the ground-truth time-frequency mask.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

SR = 16_000  # Hz, sample rate of every synthetic clip

MACHINES = ("fan", "gearbox", "bearing", "slider", "valve", "ToyCar", "ToyTrain")

# The knob an attribute changes in section s is KNOBS[s % 3].
KNOBS = ("speed", "load", "variant")
SPEED_SOURCE = (0.94, 1.0, 1.06)  # speed factors of the source-domain attribute values
SPEED_TARGET = (0.88, 1.12)  # target domain: a shifted speed range
LOAD_SOURCE = (0, 1, 2)
LOAD_TARGET = (3,)
VARIANT_SOURCE = (0, 1)
VARIANT_TARGET = (2, 3)

# Attribute parameter names per machine type and knob (DCASE-like spelling).
ATTR_NAMES = {
    "fan": {"speed": "rpm", "load": "n-lv", "variant": "m-n"},
    "gearbox": {"speed": "volt", "load": "wt", "variant": "id"},
    "bearing": {"speed": "vel", "load": "load", "variant": "loc"},
    "slider": {"speed": "vel", "load": "ac", "variant": "f-n"},
    "valve": {"speed": "tempo", "load": "pres", "variant": "pat"},
    "ToyCar": {"speed": "spd", "load": "load", "variant": "car"},
    "ToyTrain": {"speed": "spd", "load": "load", "variant": "car"},
}

# Anomaly kinds per machine type (one is drawn per anomalous clip).
ANOMALY_KINDS = {
    "fan": ("wobble", "drift", "rattle"),
    "gearbox": ("wobble", "drift", "knock"),
    "bearing": ("fault_train", "rattle"),
    "slider": ("rattle", "stall"),
    "valve": ("missing_opening", "extra_opening", "stuck_open"),
    "ToyCar": ("wobble", "drift", "rattle"),
    "ToyTrain": ("extra_clicks", "missing_clicks", "wobble"),
}


@dataclass(frozen=True)
class Condition:
    """Label-bearing settings of one clip's machine sound."""

    machine: str
    section: int
    domain: str  # "source" | "target"
    speed: float = 1.0  # factor on every rate and frequency
    load: int = 1  # 0..3
    variant: int = 0  # 0..3


# ----------------------------------------------------------------------------- helpers


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SR


def _freqs(n: int) -> np.ndarray:
    return np.fft.rfftfreq(n, 1.0 / SR)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x)) + 1e-12)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / _rms(x)


def _filter(x: np.ndarray, gain_db: np.ndarray) -> np.ndarray:
    """Zero-phase FFT filter with a gain (dB) given on the rfft grid of ``x``."""
    return np.fft.irfft(np.fft.rfft(x) * 10.0 ** (gain_db / 20.0), len(x))


def _log2f(n: int) -> np.ndarray:
    return np.log2(np.maximum(_freqs(n), 10.0) / 1000.0)


def _band_gain(n: int, lo: float, hi: float, slope_db_oct: float = 0.0) -> np.ndarray:
    """Gain (dB) of a soft band-pass lo..hi with a tilt inside the band."""
    f = np.maximum(_freqs(n), 1.0)
    g = slope_db_oct * np.log2(f / 1000.0)
    g -= 12.0 * np.log2(np.maximum(lo / f, 1.0)) ** 1.0 * 2.0
    g -= 12.0 * np.log2(np.maximum(f / hi, 1.0)) * 2.0
    return g


def _band_noise(rng: np.random.Generator, n: int, lo: float, hi: float, slope: float = 0.0):
    return _normalise(_filter(rng.standard_normal(n), _band_gain(n, lo, hi, slope)))


def _smooth_noise(rng: np.random.Generator, n: int, cutoff_hz: float) -> np.ndarray:
    """Unit-variance random curve varying slower than ``cutoff_hz``."""
    x = rng.standard_normal(n)
    f = _freqs(n)
    x = np.fft.irfft(np.fft.rfft(x) * np.exp(-0.5 * (f / cutoff_hz) ** 2), n)
    return x / (x.std() + 1e-12)


def _seg_env(n: int, t0: float, t1: float, fade: float = 0.03) -> np.ndarray:
    """0..1 envelope that is 1 on [t0, t1] seconds with raised-cosine fades."""
    t = _t(n)
    up = np.clip((t - t0) / fade + 0.5, 0.0, 1.0)
    down = np.clip((t1 - t) / fade + 0.5, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(up, down))


def _partials(f_inst: np.ndarray, mults, amps, phases) -> np.ndarray:
    """Sum of sinusoids at ``mult x f_inst(t)`` (f_inst in Hz per sample)."""
    phase = 2.0 * np.pi * np.cumsum(f_inst) / SR
    out = np.zeros_like(phase)
    nyq = 0.45 * SR
    fmax = float(f_inst.max())
    for m, a, p in zip(mults, amps, phases, strict=True):
        if m * fmax < nyq and a > 0:
            out += a * np.sin(m * phase + p)
    return out


def _resonator(fcs, taus, n_k: int, amps=None, phase=0.0) -> np.ndarray:
    """Impulse response: sum of exponentially decaying sinusoids (an impact on a structure)."""
    t = np.arange(n_k) / SR
    amps = np.ones(len(fcs)) if amps is None else amps
    k = sum(
        a * np.exp(-t / tau) * np.sin(2 * np.pi * fc * t + phase)
        for fc, tau, a in zip(fcs, taus, amps, strict=True)
    )
    return k / (np.abs(k).max() + 1e-12)


def _noise_burst(rng: np.random.Generator, n_k: int, lo: float, hi: float, tau: float):
    """Decaying band-limited noise burst (a click, knock or slam transient)."""
    x = _filter(rng.standard_normal(n_k), _band_gain(n_k, lo, hi)) * np.exp(
        -np.arange(n_k) / SR / tau
    )
    return x / (np.abs(x).max() + 1e-12)


def _place(n: int, times, amps, kernel: np.ndarray) -> np.ndarray:
    """Put ``kernel`` at every time (s) with its amplitude; events outside the clip drop out."""
    x = np.zeros(n + len(kernel))
    for t, a in zip(times, amps, strict=True):
        i = int(round(t * SR))
        if 0 <= i < n:
            x[i] += a
    if not x.any():
        return np.zeros(n)
    return fftconvolve(x, kernel)[:n]


def _anomaly_speed(n: int, anomaly: dict | None) -> np.ndarray:
    """Relative speed factor of a wobble / drift anomaly over time (all ones otherwise)."""
    if anomaly is None or anomaly["kind"] not in ("wobble", "drift"):
        return np.ones(n)
    t = _t(n)
    env = _seg_env(n, anomaly["t0"], anomaly["t1"], fade=0.15)
    if anomaly["kind"] == "wobble":
        mod = anomaly["depth"] * np.sin(2 * np.pi * anomaly["rate"] * t + anomaly["phase"])
    else:  # drift: glide to a factor outside every attribute range of the section
        ramp = np.clip((t - anomaly["t0"]) / max(anomaly["glide"], 1e-3), 0.0, 1.0)
        mod = (anomaly["factor"] - 1.0) * ramp
    return 1.0 + mod * env


def _speed_track(n: int, f0: float, clip: dict, anomaly: dict | None) -> np.ndarray:
    """Instantaneous frequency f0(t): tiny natural drift, plus the anomaly's wobble / drift."""
    nat = _smooth_noise(np.random.default_rng(clip["seed_speed"]), n, 0.5)
    return f0 * (1.0 + clip["nat_depth"] * nat) * _anomaly_speed(n, anomaly)


def _travel_times(nominal: np.ndarray, rel_speed: np.ndarray) -> np.ndarray:
    """Times (s) at which a process running at ``rel_speed(t)`` reaches ``nominal`` positions.

    ``nominal`` are the times at constant speed 1; the position is the integral of the
    relative speed track, so events bunch up when the machine runs faster. Positions
    before the clip start keep their nominal times; those beyond its end become ``inf``.
    """
    pos = (np.cumsum(rel_speed) - rel_speed[0]) / SR
    out = np.asarray(nominal, dtype=float).copy()
    inside = (out >= 0) & (out <= pos[-1])
    beyond = out > pos[-1]
    out[inside] = np.interp(out[inside], pos, _t(len(rel_speed)))
    out[beyond] = np.inf
    return out


def _rattle(n: int, anomaly: dict, ref_rms: float) -> np.ndarray:
    """Out-of-pattern impulsive events (rattle / knock / clicks) inside the anomaly segment."""
    rng = np.random.default_rng(anomaly["seed"])
    t0, t1 = anomaly["t0"], anomaly["t1"]
    if anomaly.get("irregular", False):
        count = max(2, int(round((t1 - t0) * anomaly["rate"])))
        times = np.sort(rng.uniform(t0, t1, count))
    else:
        times = np.arange(t0 + rng.uniform(0, 1 / anomaly["rate"]), t1, 1 / anomaly["rate"])
        times = times + rng.normal(0, 0.004, len(times))
    amps = rng.uniform(0.6, 1.0, len(times))
    n_k = int(0.06 * SR)
    kernel = _noise_burst(rng, n_k, anomaly["lo"], anomaly["hi"], anomaly["tau"])
    x = _place(n, times, amps, kernel)
    seg = _seg_env(n, t0, t1) > 0.5
    level = _rms(x[seg]) if seg.any() else _rms(x)
    return x / level * ref_rms * 10 ** (anomaly["level_db"] / 20)


# ----------------------------------------------------------------------------- sections


def _section_rng(machine: str, section: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(machine.encode()), section, 2022])


def section_params(machine: str, section: int) -> dict:
    """Fixed design of one machine unit (section): base frequencies, resonances, patterns.

    Sections do not depend on the generator seed: a section is a physical machine.
    """
    r = _section_rng(machine, section)
    p: dict = {}
    if machine == "fan":
        p["f0"] = r.uniform(150, 260)  # blade-pass frequency
        p["formants"] = list(
            r.permutation([700, 1100, 1600, 2300])
        )  # housing resonance per variant
        p["tilt"] = r.uniform(0.8, 1.1)
    elif machine == "gearbox":
        p["f0"] = r.uniform(280, 420)  # meshing frequency
        p["teeth"] = int(r.integers(7, 11))  # shaft rate = mesh / teeth (sidebands >= 28 Hz away)
        p["profiles"] = [
            r.uniform(0.2, 1.0, 6) * np.array(m)
            for m in (
                [1, 1, 1, 0, 0, 0],
                [1, 0, 1, 0, 1, 0],
                [1, 1, 0, 1, 0, 0],
                [1, 0, 0, 1, 0, 1],
            )
        ]
        p["out_rate"] = r.uniform(4.0, 8.0)
    elif machine == "bearing":
        p["f_rot"] = r.uniform(25, 45)
        p["rate"] = r.uniform(6.0, 10.0)  # impacts per second
        p["res"] = [
            sorted(r.uniform(lo, hi, 2))
            for lo, hi in ((900, 2500), (2500, 4500), (1500, 3500), (4000, 6500))
        ]
    elif machine == "slider":
        p["period"] = r.uniform(0.55, 0.8)  # stroke period (s)
        p["f_motor"] = r.uniform(90, 160)
        p["band"] = (r.uniform(300, 600), r.uniform(2500, 4500))
        p["duty"] = [0.45, 0.6, 0.35, 0.7]
        p["double"] = [False, False, True, True]
    elif machine == "valve":
        p["cycle"] = r.uniform(0.45, 0.7)
        p["f_pump"] = r.uniform(50, 110)
        p["band"] = (r.uniform(400, 900), r.uniform(3000, 6000))
        pool = [
            [(0.0, 0.08), (0.40, 0.08)],
            [(0.0, 0.14)],
            [(0.0, 0.05), (0.2, 0.05), (0.5, 0.09)],
            [(0.0, 0.10), (0.6, 0.05)],
            [(0.0, 0.06), (0.3, 0.12)],
        ]
        order = r.permutation(len(pool))[:4]
        p["patterns"] = [pool[i] for i in order]
    elif machine == "ToyCar":
        p["f0"] = r.uniform(170, 260)  # motor whine fundamental
        p["gear"] = r.uniform(2.3, 3.7)  # gear whine at a non-integer multiple
        p["formants"] = list(r.permutation([900, 1400, 2000, 2800]))
        p["wheel"] = r.uniform(5.0, 9.0)
    elif machine == "ToyTrain":
        p["f0"] = r.uniform(90, 150)
        p["gear"] = r.uniform(3.2, 4.6)
        p["gaps"] = [0.07, 0.11, 0.15, 0.19]  # bogie gap (s) per variant
        # v4: the rail joints belong to the track, which every unit runs on: one joint
        # interval and one click ring for all sections, so only the motor (pitch, gear
        # whine) and the bogie tell units apart. In v3 each section had its own joints and
        # ring, and the clicks alone told every ToyTrain class apart (SYNTH.md principle
        # 2). Measured: the attribute model still all but ignores the motor (removing it
        # moves an embedding by 0.015 cosine distance, v3: 0.003), so the motor's wobble
        # stays near chance -- the model listens only to what its auxiliary task needs.
        track = np.random.default_rng([zlib.crc32(b"ToyTrain track"), 2022])
        p["joint"] = track.uniform(0.35, 0.55)  # rail-joint interval (s) at speed 1
        p["click_fc"] = track.uniform(1800, 3500)
    else:
        raise ValueError(f"unknown machine type {machine!r}")
    return p


def speed_range(section: int) -> tuple[float, float]:
    """Lowest and highest speed factor any attribute of the section takes (both domains)."""
    if KNOBS[section % 3] == "speed":
        return min(SPEED_TARGET + SPEED_SOURCE), max(SPEED_TARGET + SPEED_SOURCE)
    return 1.0, 1.0


def attribute_values(machine: str, section: int, domain: str) -> list[tuple[str, Condition]]:
    """The attribute strings of one section and domain with the condition each one sets."""
    knob = KNOBS[section % 3]
    name = ATTR_NAMES[machine][knob]
    if knob == "speed":
        values = SPEED_SOURCE if domain == "source" else SPEED_TARGET
        items = [(f"{name}_{int(round(100 * v))}", {"speed": v}) for v in values]
    elif knob == "load":
        values = LOAD_SOURCE if domain == "source" else LOAD_TARGET
        items = [(f"{name}_{v}", {"load": v}) for v in values]
    else:
        values = VARIANT_SOURCE if domain == "source" else VARIANT_TARGET
        items = [(f"{name}_{'ABCD'[v]}", {"variant": v}) for v in values]
    mic = "1" if domain == "source" else "2"
    out = []
    for attr, kw in items:
        if machine in ("ToyCar", "ToyTrain"):
            attr = f"{attr}_mic_{mic}"
        out.append((attr, Condition(machine, section, domain, **kw)))
    return out


def mic_gain_db(machine: str, section: int, domain: str, n: int) -> np.ndarray:
    """Microphone colouring (dB on the rfft grid): mild for source, a stronger tilt for target."""
    r = np.random.default_rng(
        [zlib.crc32(machine.encode()), section, 0 if domain == "source" else 1]
    )
    lf = _log2f(n)
    g = np.zeros_like(lf)
    if domain == "source":
        g += r.uniform(-3, 3) * np.exp(-0.5 * ((lf - r.uniform(-2, 2)) / 0.8) ** 2)
    else:
        g += r.uniform(4, 7) * np.exp(-0.5 * ((lf - r.uniform(1.2, 2.2)) / 0.6) ** 2)
        g -= 6.0 * np.log2(np.maximum(r.uniform(150, 300) / np.maximum(_freqs(n), 1.0), 1.0))
    return g


# ----------------------------------------------------------------------------- draws


def draw_clip(rng: np.random.Generator) -> dict:
    """Per-clip natural variation of the machine (label-independent)."""
    return {
        "seed_noise": int(rng.integers(2**31)),
        "seed_speed": int(rng.integers(2**31)),
        "jit": float(1.0 + rng.normal(0, 0.006)),  # unit-to-unit speed scatter
        "nat_depth": float(rng.uniform(0.001, 0.003)),
        "amp_jit_db": rng.normal(0, 1.0, 32),
        "phases": rng.uniform(0, 2 * np.pi, 64),
        "offset": float(rng.uniform(0, 1)),  # phase of the cycle / pattern
        "noise_db": float(rng.normal(0, 1.0)),
        # v6: per-clip nuisance of the impulsive parts (SYNTH.md principle 5): how hard the
        # slider's end stops hit and how rough and how evenly the bearing runs vary from clip
        # to clip, so the crest factor and kurtosis of normal clips spread as far as an
        # anomaly moves them
        "hardness_db": float(rng.uniform(-12.0, 8.0)),
        "roughness_db": float(rng.uniform(-18.0, -4.0)),
        "irregularity_db": float(rng.uniform(0.0, 5.0)),
    }


def draw_anomaly(rng: np.random.Generator, cond: Condition, duration: float) -> dict:
    """Kind, segment and parameters of one anomaly (part of the clip or all of it)."""
    kinds = ANOMALY_KINDS[cond.machine]
    kind = kinds[int(rng.integers(len(kinds)))]
    if rng.uniform() < 0.5:
        t0, t1 = 0.0, duration
    else:
        length = rng.uniform(0.4, 0.7) * duration
        t0 = rng.uniform(0, duration - length)
        t1 = t0 + length
    a = {"kind": kind, "t0": float(t0), "t1": float(t1), "seed": int(rng.integers(2**31))}
    if kind == "wobble":
        # v3: deeper than two attribute speed steps (6 % each) so the excursion leaves every
        # normal class's range on the 15.6 Hz grid (SYNTH.md principle 4)
        a.update(
            depth=float(rng.uniform(0.08, 0.14)),
            rate=float(rng.uniform(0.5, 2.0)),
            phase=float(rng.uniform(0, 2 * np.pi)),
        )
    elif kind == "drift":
        lo, hi = speed_range(cond.section)
        up = rng.uniform() < 0.5
        beyond = rng.uniform(1.12, 1.20)  # v3: at least two attribute steps beyond the range
        target = hi * beyond if up else lo / beyond
        a.update(factor=float(target / cond.speed), glide=float(rng.uniform(0.2, 0.6)))
    elif kind in ("rattle", "knock"):
        # v6: the band of a knock / rattle is drawn (v5: a knock always 300-3000 Hz)
        if kind == "knock":
            fc = np.exp(rng.uniform(np.log(500), np.log(2500)))
            a.update(rate=float(rng.uniform(3.0, 7.0)), lo=fc / 2, hi=fc * 2, tau=0.012)
        else:
            fc = np.exp(rng.uniform(np.log(800), np.log(5000)))
            a.update(
                rate=float(rng.uniform(5.0, 11.0)),
                lo=float(fc / 1.5),
                hi=float(fc * 1.5),
                tau=0.006,
            )
        # v6: a slider is quiet between its strokes, so its rattle sits 10-4 dB below the
        # machine (v5: 4-0 dB like the others, which raised the crest factor of every
        # rattling slider clip far beyond the normal ones' -- SYNTH.md principles 4 and 5)
        lo, hi = (-10.0, -4.0) if cond.machine == "slider" else (-4.0, 0.0)
        a.update(level_db=float(rng.uniform(lo, hi)), irregular=bool(rng.uniform() < 0.4))
    elif kind == "fault_train":
        # v6: the fault's impact train runs slower or faster than the normal one (v5: only
        # faster, so a fault always added impacts and the kurtosis fell -- SYNTH.md principle 5)
        ratio = rng.uniform(0.45, 0.7) if rng.uniform() < 0.5 else rng.uniform(1.55, 2.5)
        a.update(ratio=float(ratio), amp=float(rng.uniform(0.6, 1.0)))
    elif kind == "stall":
        # v6: 1-2 of the clip's 4-5 stroke cycles (v5: 2-3, which removed half the machine's
        # sound: not a small change, and its crest factor alone found it -- SYNTH.md 4 and 5)
        a.update(n=int(rng.integers(1, 3)))
    elif kind in ("missing_opening", "missing_clicks"):
        a.update(n=int(rng.integers(2, 4)))
    elif kind == "extra_opening":
        a.update(n=int(rng.integers(2, 5)), level=float(rng.uniform(0.9, 1.3)))
    elif kind == "stuck_open":
        # v4 (replaces v3's "leak"): 1-2 openings in the segment stay open 0.3-0.6 s, beyond
        # every pattern's opening length (0.05-0.14 s), as the drift of the rotating machines
        # leaves every speed. v3's leak hiss and three replacements tried in v4 stayed near
        # chance for the attribute model (AUC source / target): a chatter of short
        # re-openings (0.61 / 0.53), a water hammer ringing the pipe at each closure
        # (0.56 / 0.49) -- both add sound of the kinds the background makes (noise, impacts),
        # which a classifier learns to ignore: the study's mechanism -- and a drift of the
        # valve's tempo (0.69 / 0.70), which it barely resolves (SYNTH.md principle 4)
        a.update(n=int(rng.integers(1, 3)), length=float(rng.uniform(0.3, 0.6)))
    elif kind == "extra_clicks":
        # v4: a loose part rings at its own frequency, away from the rail click's two modes
        # (1.0 and 1.6 x click_fc); same-ring clicks at random times only added click energy,
        # which the load attribute also does (+30 % per step) -- SYNTH.md principle 4
        ring = rng.uniform(0.6, 0.75) if rng.uniform() < 0.5 else rng.uniform(1.25, 1.4)
        a.update(n=int(rng.integers(2, 5)), level=float(rng.uniform(0.9, 1.3)), ring=float(ring))
    return a


# ----------------------------------------------------------------------------- machines


def render_machine(cond: Condition, clip: dict, anomaly: dict | None, n: int) -> np.ndarray:
    """The machine sound of one clip (before microphone colouring), about unit RMS.

    Rendering is deterministic given ``cond``, ``clip`` and ``anomaly``; with
    ``anomaly=None`` it gives the normal counterpart of the same clip.
    """
    sp = section_params(cond.machine, cond.section)
    return _RENDER[cond.machine](sp, cond, clip, anomaly, n)


def _harm_amps(count: int, tilt: float, formant: float | None, f0: float, clip: dict) -> np.ndarray:
    h = np.arange(1, count + 1)
    db = -20 * tilt * np.log10(h) + clip["amp_jit_db"][:count]
    if formant is not None:
        db += 12 * np.exp(-0.5 * (np.log2(h * f0 / formant) / 0.3) ** 2)
    return 10 ** (db / 20)


def _with_rattle(x: np.ndarray, anomaly: dict | None, n: int) -> np.ndarray:
    if anomaly is not None and anomaly["kind"] in ("rattle", "knock"):
        return x + _rattle(n, anomaly, _rms(x))
    return x


def _fan(sp, c: Condition, clip, a, n):
    rng = np.random.default_rng(clip["seed_noise"])
    f0 = sp["f0"] * c.speed * clip["jit"]
    track = _speed_track(n, f0, clip, a)
    count = min(24, int(5000 / f0))
    tilt = sp["tilt"] + 0.25 * c.load
    amps = _harm_amps(count, tilt, sp["formants"][c.variant], f0, clip)
    tonal = _normalise(_partials(track, np.arange(1, count + 1), amps, clip["phases"][:count]))
    air = _band_noise(rng, n, 80, 1200 * c.speed, -3.0) * 10 ** ((-10 + 2.5 * c.load) / 20)
    return _with_rattle(tonal + air, a, n)


def _gearbox(sp, c, clip, a, n):
    rng = np.random.default_rng(clip["seed_noise"])
    f0 = sp["f0"] * c.speed * clip["jit"]
    track = _speed_track(n, f0, clip, a)
    prof = sp["profiles"][c.variant]
    sb_db = -18 + 4 * c.load
    mults, amps = [], []
    for h in range(1, 7):
        if prof[h - 1] <= 0:
            continue
        base = prof[h - 1] * 10 ** (clip["amp_jit_db"][h] / 20)
        mults += [h, h - 1 / sp["teeth"], h + 1 / sp["teeth"]]
        amps += [base, base * 10 ** (sb_db / 20), base * 10 ** (sb_db / 20)]
    tonal = _normalise(_partials(track, mults, amps, clip["phases"][: len(mults)]))
    rumble = _band_noise(rng, n, 30, 400, -6.0) * 10 ** (-12 / 20)
    return _with_rattle(tonal + rumble, a, n)


def _bearing(sp, c, clip, a, n):
    rng = np.random.default_rng(clip["seed_noise"])
    dur = n / SR
    f_rot = sp["f_rot"] * c.speed * clip["jit"]
    track = _speed_track(n, f_rot, clip, None)
    low = _partials(track, [1, 2, 3], [1.0, 0.5, 0.25], clip["phases"][:3])
    rate = sp["rate"] * c.speed * clip["jit"]
    times = np.arange(clip["offset"] / rate, dur, 1 / rate)
    times = times + rng.normal(0, 0.002, len(times))
    amps = 1.0 + rng.normal(0, 0.1 + 0.05 * c.load, len(times))
    amps = amps * 10 ** (rng.normal(0, clip["irregularity_db"], len(times)) / 20)
    res = sp["res"][c.variant]
    tau = 0.004 + 0.002 * c.load
    kernel = _resonator(res, [tau, tau * 0.7], int(0.05 * SR), amps=[1.0, 0.7])
    impacts = _place(n, times, amps, kernel)
    norm = _rms(impacts)
    if a is not None and a["kind"] == "fault_train":
        # a second impact train at a rate no normal clip has, on slightly shifted resonances
        ar = np.random.default_rng(a["seed"])
        fr = rate * a["ratio"]
        ft = np.arange(a["t0"] + ar.uniform(0, 1 / fr), a["t1"], 1 / fr)
        k2 = _resonator([r * 1.07 for r in res], [tau, tau * 0.7], int(0.05 * SR), amps=[0.7, 1.0])
        impacts = impacts + _place(n, ft, a["amp"] * ar.uniform(0.8, 1.2, len(ft)), k2)
    impacts = impacts / norm
    friction = _band_noise(rng, n, 200, 6000, -2.0) * 10 ** (clip["roughness_db"] / 20)
    x = 0.35 * low + impacts + friction
    return _with_rattle(x, a, n)


def _slider(sp, c, clip, a, n):
    rng = np.random.default_rng(clip["seed_noise"])
    dur = n / SR
    period = sp["period"] / c.speed / clip["jit"]
    duty = sp["duty"][c.variant]
    strokes = []  # (start, end)
    cycle = []  # the stroke cycle (period) each stroke belongs to
    start = -clip["offset"] * period
    k = 0
    while start < dur:
        if sp["double"][c.variant]:
            half = duty * period / 2.2
            strokes += [(start, start + half), (start + 1.2 * half, start + 2.2 * half)]
            cycle += [k, k]
        else:
            strokes.append((start, start + duty * period))
            cycle.append(k)
        start += period
        k += 1
    if a is not None and a["kind"] == "stall":
        # v4 (replaces v3's stretched stroke, which turned a single stroke into a
        # double-stroke variant's half or merged a double stroke into a single one -- a
        # direction the variant attribute takes): the slide stalls, 2-3 strokes in the
        # segment do not happen (both halves of a double stroke) while the motor keeps
        # running (SYNTH.md principle 4)
        ar = np.random.default_rng(a["seed"])
        inside = [
            i
            for i, (s, e) in enumerate(strokes)
            if max(a["t0"], 0.05) <= s and e <= min(a["t1"], dur - 0.05)
        ]
        if not inside:
            mid = (a["t0"] + a["t1"]) / 2
            inside = [min(range(len(strokes)), key=lambda i: abs(strokes[i][0] - mid))]
        cycles = sorted({cycle[i] for i in inside})
        drop = set(ar.choice(cycles, size=min(a["n"], len(cycles)), replace=False).tolist())
        kept = [k not in drop for k in cycle]
    else:
        kept = [True] * len(strokes)
    n_all = len(strokes)  # the normal counterpart's strokes: the click jitter is drawn for all
    strokes = [st for st, keep in zip(strokes, kept, strict=True) if keep]
    env = np.zeros(n)
    for s, e in strokes:
        env = np.maximum(env, _seg_env(n, s, e, fade=0.02))
    bright = 2.0 - 1.5 * c.load
    fric = _band_noise(rng, n, sp["band"][0], sp["band"][1] * (0.8 + 0.15 * c.load), bright)
    f0 = sp["f_motor"] * c.speed * clip["jit"]
    track = _speed_track(n, f0, clip, None)
    motor = _normalise(
        _partials(track, np.arange(1, 9), _harm_amps(8, 1.0, None, f0, clip), clip["phases"][:8])
    )
    ends = [e for _, e in strokes] + [s for s, _ in strokes]
    kern = _noise_burst(rng, int(0.03 * SR), 800, 5000, 0.005)
    # one jitter per stroke end and start of the normal counterpart, so a stall leaves the
    # clicks of the strokes that do happen as they are (the first v6 trees drew it per
    # surviving stroke, and a stall changed clicks outside its segment too)
    jitter = rng.normal(0, 4.0, 2 * n_all)
    keep = np.array(kept + kept)
    hits = 2.0 * 10 ** ((clip["hardness_db"] + jitter[keep]) / 20)
    clicks = _place(n, ends, hits, kern)
    x = env * (fric + 0.6 * motor) + clicks * 0.5 + 0.05 * motor
    if a is not None and a["kind"] == "rattle":
        r = _rattle(n, a, _rms(x))
        x = x + r * np.maximum(env, 0.2)  # the rattle sounds mostly while the slider moves
    return x


def _valve_openings(sp, c, clip, dur):
    cycle = sp["cycle"] / c.speed / clip["jit"]
    pattern = sp["patterns"][c.variant]
    ops = []
    start = -clip["offset"] * cycle
    while start < dur:
        for rel, length in pattern:
            ops.append((start + rel * cycle, length))
        start += cycle
    return [(s, ln) for s, ln in ops if s + ln > 0 and s < dur]


def _valve(sp, c, clip, a, n):
    rng = np.random.default_rng(clip["seed_noise"])
    dur = n / SR
    ops = _valve_openings(sp, c, clip, dur)
    lo, hi = sp["band"]
    bright = -3.0 + 1.5 * c.load
    burst = _band_noise(rng, n, lo, hi * (0.8 + 0.1 * c.load), bright)
    kern = _noise_burst(rng, int(0.02 * SR), 1000, 7000, 0.003)

    def openings(ops):
        env = np.zeros(n)
        for s, ln in ops:
            env = np.maximum(env, _seg_env(n, s, s + ln, fade=0.008))
        closes = [s + ln for s, ln in ops]
        return burst * env + _place(n, closes, np.full(len(closes), 1.5), kern)

    ref = _rms(openings(ops))  # of the normal pattern: an anomaly leaves the pump level as is
    extra = []
    if a is not None:
        ar = np.random.default_rng(a["seed"])
        lo_t, hi_t = max(a["t0"], 0.05), min(a["t1"], dur - 0.05)
        inside = [i for i, (s, ln) in enumerate(ops) if lo_t <= s and s + ln <= hi_t]
        if not inside:
            inside = [int(np.argmin([abs(s - (a["t0"] + a["t1"]) / 2) for s, _ in ops]))]
        if a["kind"] == "missing_opening":
            drop = set(ar.choice(inside, size=min(a["n"], len(inside)), replace=False).tolist())
            ops = [o for i, o in enumerate(ops) if i not in drop]
        elif a["kind"] == "stuck_open":
            fits = [i for i in inside if ops[i][0] + a["length"] <= hi_t] or inside[:1]
            stuck = set(ar.choice(fits, size=min(a["n"], len(fits)), replace=False).tolist())
            ops = [
                (s, min(a["length"], hi_t - s) if i in stuck else ln)
                for i, (s, ln) in enumerate(ops)
            ]
        elif a["kind"] == "extra_opening":
            # out-of-pattern times: halfway between two openings
            gaps = [(s + ln + nxt) / 2 for (s, ln), (nxt, _) in zip(ops[:-1], ops[1:], strict=True)]
            mids = [m for m in gaps if lo_t <= m <= hi_t]
            if not mids:
                mids = [(a["t0"] + a["t1"]) / 2]
            picks = ar.choice(len(mids), size=min(a["n"], len(mids)), replace=False)
            extra = [(mids[i] - 0.04, 0.08) for i in sorted(picks)]
    x = openings(ops)
    if extra:
        ar2 = np.random.default_rng(a["seed"] + 1)
        eb = _band_noise(ar2, n, lo, hi * (0.8 + 0.1 * c.load), bright)
        eenv = sum(_seg_env(n, s, s + ln, fade=0.008) for s, ln in extra)
        x = x + eb * eenv * a["level"]
    # v4: the pump drives the flow, so the speed attribute sets its pitch with the valve's
    # tempo; in v3 a 6 % tempo step (about one 32 ms frame per cycle) moved a trained
    # embedding less than another clip of the same class did, i.e. the speed attribute was
    # not "clearly separable" for a classifier (SYNTH.md principle 2). Measured: the
    # quiet pump (-16 dB) did not change that (0.07 vs 0.24 within a class).
    f_p = sp["f_pump"] * c.speed * clip["jit"]
    pump = _partials(np.full(n, f_p), [1, 2, 3, 4], [1, 0.6, 0.4, 0.2], clip["phases"][:4])
    x = x + 0.15 * ref * _normalise(pump) + 0.05 * ref * _band_noise(rng, n, 100, 2000, -3)
    return x


def _toy_motor(sp, c, clip, a, n, formant):
    f0 = sp["f0"] * c.speed * clip["jit"]
    track = _speed_track(n, f0, clip, a)
    count = min(20, int(5500 / f0))
    amps = _harm_amps(count, 0.7 + 0.25 * c.load, formant, f0, clip)
    mults = list(np.arange(1, count + 1)) + [sp["gear"], 2 * sp["gear"]]
    amps = list(amps) + [0.5, 0.25]
    return _normalise(_partials(track, mults, amps, clip["phases"][: len(mults)]))


def _toycar(sp, c, clip, a, n):
    rng = np.random.default_rng(clip["seed_noise"])
    motor = _toy_motor(sp, c, clip, a, n, sp["formants"][c.variant])
    rough = 1.0 + 0.3 * _smooth_noise(rng, n, 6.0)
    run = _band_noise(rng, n, 100, 2500, -4.0) * np.clip(rough, 0.2, None) * 10 ** (-8 / 20)
    return _with_rattle(motor + run, a, n)


def _toytrain(sp, c, clip, a, n):
    rng = np.random.default_rng(clip["seed_noise"])
    dur = n / SR
    motor = _toy_motor(sp, c, clip, a, n, None)
    joint = sp["joint"] / c.speed / clip["jit"]
    gap = sp["gaps"][c.variant] / c.speed
    starts = np.arange(-clip["offset"] * joint, dur + joint, joint)
    # v4: the wheels pass the rail joints at the train's speed, so a speed anomaly moves the
    # clicks as it moves the motor pitch (as the speed attribute does); v3 wobbled only the
    # motor, which a classifier of ToyTrain units need not listen to (SYNTH.md principle 4)
    rel = _speed_track(n, 1.0, clip, a)
    times = _travel_times(np.sort(np.concatenate([starts, starts + gap])), rel)
    times = times[(times > -0.05) & (times < dur)]
    amps = np.ones(len(times)) * (1.0 + 0.3 * c.load)
    if a is not None and a["kind"] == "missing_clicks":
        ar = np.random.default_rng(a["seed"])
        inside = np.flatnonzero((times >= max(a["t0"], 0.05)) & (times <= min(a["t1"], dur - 0.05)))
        if len(inside) == 0:
            inside = np.array([int(np.argmin(np.abs(times - (a["t0"] + a["t1"]) / 2)))])
        amps[ar.choice(inside, size=min(2 * a["n"], len(inside)), replace=False)] = 0.0
    kern = _resonator([sp["click_fc"], sp["click_fc"] * 1.6], [0.006, 0.004], int(0.04 * SR))
    clicks = _place(n, times, amps, kern)
    ref = _rms(_place(n, times, np.ones(len(times)), kern))
    x = motor + 1.2 * clicks / ref
    if a is not None and a["kind"] == "extra_clicks":
        ar = np.random.default_rng(a["seed"])
        count = a["n"] + 1
        et = np.sort(ar.uniform(a["t0"], a["t1"], count))
        fc = sp["click_fc"] * a["ring"]
        loose = _resonator([fc, fc * 1.6], [0.006, 0.004], int(0.04 * SR))
        x = x + 1.2 * a["level"] * _place(n, et, np.ones(count), loose) / ref
    x = x + _band_noise(rng, n, 80, 2000, -4.0) * 10 ** (-12 / 20)
    return x


_RENDER = {
    "fan": _fan,
    "gearbox": _gearbox,
    "bearing": _bearing,
    "slider": _slider,
    "valve": _valve,
    "ToyCar": _toycar,
    "ToyTrain": _toytrain,
}


# ----------------------------------------------------------------------------- background


def render_background(rng: np.random.Generator, n: int, bank: int) -> np.ndarray:
    """Factory background, unit RMS, drawn independently of every label.

    ``bank`` 0 (source) or 1 (target) changes only the mix of event types and the
    tilt range (a different factory), never anything tied to the machine or label.
    """
    return render_background_parts(rng, n, bank)[0]


def render_background_parts(
    rng: np.random.Generator, n: int, bank: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`render_background` and its transient events alone, on the same scale.

    Returns ``(background, events)``: ``background`` is exactly what
    :func:`render_background` returns for the same ``rng`` state (same draws, same
    arithmetic); ``events`` is the sum of its impacts, hammering, hums of other
    machines, babble and door slams, so ``background - events`` is the stationary bed.
    """
    lf = _log2f(n)
    tilt = rng.uniform(-6.0, 1.0) if bank == 0 else rng.uniform(-4.0, 2.0)  # dB per octave
    g = tilt * lf
    for _ in range(int(rng.integers(1, 4))):
        g += rng.uniform(-10, 15) * np.exp(
            -0.5 * ((lf - rng.uniform(-3.3, 2.6)) / rng.uniform(0.2, 1.0)) ** 2
        )
    g -= 24 * np.log2(np.maximum(30.0 / np.maximum(_freqs(n), 1.0), 1.0))
    x = _normalise(_filter(rng.standard_normal(n), g))
    x *= 1.0 + rng.uniform(0, 0.5) * np.clip(
        _smooth_noise(rng, n, rng.uniform(0.2, 1.5)), -1.8, 1.8
    )
    dur = n / SR
    events = np.zeros(n)
    # v6: "tick" -- trains of short clicks in a random band (a neighbouring machine's
    # rattle), so normal clips carry the impulsive events a rattle anomaly adds (SYNTH.md
    # principle 5)
    rates = {"impact": 0.5, "hammer": 0.2, "hum": 0.6, "babble": 0.2, "slam": 0.12, "tick": 1.0}
    if bank == 1:
        rates = {
            "impact": 0.3,
            "hammer": 0.35,
            "hum": 0.9,
            "babble": 0.35,
            "slam": 0.2,
            "tick": 0.6,
        }
    for kind, rate in rates.items():
        lam = rate * (1.0 if kind in ("hum", "babble", "hammer", "tick") else dur)
        for _ in range(int(rng.poisson(lam))):
            event = _event(rng, kind, n) * 10 ** (rng.uniform(-12, 4) / 20)
            x += event
            events += event
    scale = _rms(x)
    return x / scale, events / scale


def _event(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    dur = n / SR
    if kind == "impact":
        fc = np.exp(rng.uniform(np.log(150), np.log(6000)))
        kern = _noise_burst(rng, int(0.25 * SR), fc / 2, fc * 2, rng.uniform(0.01, 0.12))
        return 6 * _place(n, [rng.uniform(0, dur)], [1.0], kern)
    if kind == "hammer":
        fc = np.exp(rng.uniform(np.log(300), np.log(5000)))
        rate = rng.uniform(1.5, 6.0)
        t0 = rng.uniform(-1, dur)
        times = np.arange(t0, t0 + rng.uniform(0.5, 3.0), 1 / rate)
        kern = _resonator(
            [fc, fc * rng.uniform(1.3, 2.7)],
            [0.02, 0.01],
            int(0.12 * SR),
            phase=rng.uniform(0, 6.28),
        )
        return 4 * _place(n, times, rng.uniform(0.6, 1.0, len(times)), kern)
    if kind == "hum":
        f0 = np.exp(rng.uniform(np.log(40), np.log(500)))
        count = int(rng.integers(3, 11))
        amps = np.arange(1, count + 1) ** -rng.uniform(0.5, 2.0)
        track = f0 * (1 + 0.002 * _smooth_noise(rng, n, 0.5))
        x = _partials(track, np.arange(1, count + 1), amps, rng.uniform(0, 6.28, count))
        if rng.uniform() < 0.5:
            t0 = rng.uniform(-dur / 2, dur)
            x *= _seg_env(n, t0, t0 + rng.uniform(0.5, dur), fade=0.2)
        return _normalise(x) if x.any() else x
    if kind == "babble":
        out = np.zeros(n)
        t = rng.uniform(-0.5, dur * 0.5)
        stop = t + rng.uniform(1.0, dur)
        while t < stop:
            syl = rng.uniform(0.12, 0.3)
            i0, i1 = int(max(t, 0) * SR), int(min(t + syl, dur) * SR)
            if i1 - i0 > 64:
                seg = rng.standard_normal(i1 - i0)
                lfs = _log2f(i1 - i0)
                g = -30 + sum(
                    30 * np.exp(-0.5 * ((lfs - np.log2(fm / 1000)) / 0.12) ** 2)
                    for fm in (
                        rng.uniform(300, 900),
                        rng.uniform(900, 2500),
                        rng.uniform(2300, 3500),
                    )
                )
                seg = _filter(seg, g) * np.hanning(i1 - i0)
                out[i0:i1] += seg / (_rms(seg) + 1e-12)
            t += syl + rng.uniform(0.0, 0.08)
        return out
    if kind == "tick":
        fc = np.exp(rng.uniform(np.log(500), np.log(6000)))
        rate = rng.uniform(3.0, 11.0)
        t0 = rng.uniform(0, 0.6 * dur)
        t1 = min(dur, t0 + rng.uniform(0.4, 1.0) * dur)
        if rng.uniform() < 0.4:
            times = np.sort(rng.uniform(t0, t1, max(2, int(round((t1 - t0) * rate)))))
        else:
            times = np.arange(t0 + rng.uniform(0, 1 / rate), t1, 1 / rate)
        kern = _noise_burst(rng, int(0.06 * SR), fc / 1.5, fc * 1.5, rng.uniform(0.004, 0.012))
        x = _place(n, times, rng.uniform(0.6, 1.0, len(times)), kern)
        seg = _seg_env(n, t0, t1) > 0.5
        return x / (_rms(x[seg]) if seg.any() else _rms(x)) if x.any() else x
    if kind == "slam":
        t0 = rng.uniform(0, dur)
        tt = np.arange(int(0.4 * SR)) / SR
        thump = np.sin(2 * np.pi * rng.uniform(50, 120) * tt) * np.exp(
            -tt / rng.uniform(0.05, 0.15)
        )
        crack = _noise_burst(rng, int(0.4 * SR), 200, 6000, 0.015)
        return 8 * _place(n, [t0], [1.0], thump + crack)
    raise ValueError(kind)
