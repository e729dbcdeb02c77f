"""Machine / background ground truth of synthetic test clips (``components.h5`` at the tree root).

The generator draws a clip's machine and its background from separate random
streams (:mod:`asdxai.data.synth`), so it can say for every cell of the model's
input spectrogram how much of it is machine and how much background, and where
transient background events are. That is the ground truth for *where a map looks*
(:mod:`asdxai.explain.focus`), which no real recording can give.

Definitions, on the grid of :func:`asdxai.features.spectrogram` (n_fft 1024, hop 512,
Hann, no centre padding), with ``M``, ``B``, ``E`` and ``Q = B - E`` the magnitude
spectrograms of the clip's machine, background, background events and stationary
background bed, each exactly as it is mixed into the clip (microphone colouring,
level, mean removal, peak limit; the waveforms add up to the clip up to 16-bit
rounding):

* **level** ``L = 10 log10((M^2 + eps) / (B^2 + eps))`` dB, the machine-to-background
  level of the cell (> 0: machine-dominant), ``eps = max(M^2 + B^2) * 1e-10`` (a floor
  100 dB below the clip's loudest cell). Stored in steps of 0.5 dB, clipped to
  -64..+63.5 dB.
* **events** ``E^2 >= M^2 + Q^2``: the transient background events (impacts, hammering,
  hums of other machines, babble, door slams) hold at least half of the cell's power.

Layout: one HDF5 group per test clip (normal and anomalous, dev and eval) at the path
equal to the clip's path relative to the tree root, as in ``anomaly_masks.h5``::

    f["dev_data/fan/test/section_00_source_test_normal_0000_rpm_94.wav"]
        level   int8 (T, F), machine-to-background level in units of attrs["level_step_db"]
        events  bool (T, F)
        attrs:  mbr_db (the clip's drawn machine-to-background ratio), machine, section,
                domain, label, full_name

File attributes: ``n_fft``, ``hop_length``, ``sample_rate``, ``duration_s``, ``shape``,
``level_step_db``, ``level_range_db``, ``event_rule``, ``level_rule``, ``key``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..features import FeatureConfig, spectrogram
from .anomaly_masks import find_in_tree, read_entry

COMPONENTS_FILE = "components.h5"
LEVEL_STEP_DB = 0.5  # storage resolution of the level
LEVEL_RANGE_DB = (-64.0, 63.5)  # int8 x LEVEL_STEP_DB
FLOOR_DB = -100.0  # eps: relative to the clip's loudest cell
LEVEL_RULE = (
    "level = 10 log10((M^2 + eps) / (B^2 + eps)) dB, M / B = magnitude spectrograms (n_fft 1024, "
    "hop 512, Hann, no centre padding) of the machine / the whole background as mixed into "
    "the clip, eps = 1e-10 * max(M^2 + B^2)"
)
EVENT_RULE = (
    "events = E^2 >= M^2 + Q^2, E / Q = magnitude spectrograms of the background's transient "
    "events (impacts, hammering, other machines' hums, babble, door slams) / its stationary bed"
)

__all__ = [
    "COMPONENTS_FILE",
    "ComponentTruth",
    "component_truth",
    "decode_level",
    "encode_level",
    "find_components",
    "load_components",
]


@dataclass(frozen=True)
class ComponentTruth:
    """Machine / background ground truth of one clip.

    Attributes
    ----------
    level_db : np.ndarray [shape=(T, F)] float32, machine-to-background level (dB)
    events : np.ndarray [shape=(T, F)] bool, cells dominated by transient background events
    """

    level_db: np.ndarray
    events: np.ndarray

    @property
    def machine(self) -> np.ndarray:
        """Machine-dominant cells (level > 0 dB) [shape=(T, F)] bool."""
        return self.level_db > 0


def component_truth(
    machine: np.ndarray,
    background: np.ndarray,
    events: np.ndarray,
    *,
    cfg: FeatureConfig,
) -> ComponentTruth:
    """Level and event mask of a clip from its component waveforms (see the module docstring).

    Parameters
    ----------
    machine, background, events : np.ndarray [shape=(L,)], the machine, the whole
        background and the background's transient events as mixed into the clip
        (``events`` is part of ``background``)
    cfg : FeatureConfig, the spectrogram grid

    Returns
    -------
    ComponentTruth with ``level_db`` quantised to :data:`LEVEL_STEP_DB` as stored.
    """
    waves = np.stack([machine, background, events, background - events]).astype(np.float64)
    with torch.no_grad():
        spec = spectrogram(torch.from_numpy(waves), cfg=cfg).numpy()
    m2, b2, e2, q2 = spec**2
    eps = float((m2 + b2).max()) * 10 ** (FLOOR_DB / 10) + 1e-300
    level = 10.0 * np.log10((m2 + eps) / (b2 + eps))
    return ComponentTruth(decode_level(encode_level(level)), e2 >= m2 + q2)


def encode_level(level_db: np.ndarray) -> np.ndarray:
    """Level (dB) as stored: int8 steps of :data:`LEVEL_STEP_DB`, clipped to the range."""
    return np.clip(np.round(np.asarray(level_db) / LEVEL_STEP_DB), -128, 127).astype(np.int8)


def decode_level(steps: np.ndarray) -> np.ndarray:
    """Stored int8 steps back to dB (float32)."""
    return np.asarray(steps, dtype=np.float32) * np.float32(LEVEL_STEP_DB)


def find_components(clip: str | os.PathLike) -> tuple[Path, str] | None:
    """The ``components.h5`` file and key that hold ``clip``'s ground truth, or None."""
    return find_in_tree(clip, COMPONENTS_FILE)


def load_components(clip: str | os.PathLike) -> ComponentTruth | None:
    """Component ground truth of ``clip``, or None (not a synthetic test clip, or a tree
    generated before the components were recorded)."""
    found = find_components(clip)
    if found is None:
        return None
    path, key = found
    level, events = read_entry(path, key, ("level", "events"))
    return ComponentTruth(decode_level(level), np.asarray(events, dtype=bool))
