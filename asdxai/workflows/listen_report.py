"""Hear and check a RISE explanation: flagged / rest / original wav files, scores, overlay.

:func:`listen_to_map` takes a RISE result file (``.h5`` from ``asdxai rise``), reads
the clip and the checkpoint it records, selects the top ``q`` percent of the
time–frequency cells by importance with a soft mask (:func:`asdxai.listen.soft_top_mask`)
and resynthesises three versions with the clip's own phase
(:func:`asdxai.listen.resynthesise`):

* ``<stem>_flagged.wav``  — only the flagged (most anomalous) regions,
* ``<stem>_rest.wav``     — everything else (the flagged regions removed),
* ``<stem>_original.wav`` — the resynthesised original (= flagged + rest),

plus ``<stem>_overlay.png`` (log spectrogram, flagged region shaded and outlined).

The explanation is then checked by number: the same black box (the detector that
made the map, :mod:`asdxai.detectors`, in the clip's section) scores every
version. As a baseline, regions of the *same shape and size* at random places are
removed instead (the soft mask rolled by a random offset in time and frequency,
overlapping the flagged region by at most half; seeded). If the map is faithful,
removing the flagged region lowers the anomaly score more than removing any of
the random regions; the report says plainly when it does not. For dual-branch
checkpoints every version's whole-clip spectrum is recomputed from its own audio.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import check_output_file, ensure_writable_dir
from .._checks import Integral, Interval, Real, check_params
from .._runtime import resolve_device
from ..data.audio import read_clip, write_wav
from ..detectors import CheckedDetector, load_detector
from ..errors import CheckpointError, ResultError
from ..explain.result import load_result
from ..features import FeatureConfig, log_spectrogram, spectrogram
from ..layout import Layout
from ..listen import check_smoothing, resynthesise, soft_top_mask
from ..plots.listen import plot_flagged_overlay
from ..plots.tsne import save_figure

log = logging.getLogger(__name__)

N_RANDOM = 5  # random same-size regions removed as a baseline
MAX_RANDOM = 1000  # their versions are held and scored at once (one clip each)
MAX_OVERLAP = 0.5  # largest share of the flagged cells a random region may cover
LOW_AGREEMENT = 0.9  # below this split-half agreement the report warns: not converged
_MAX_TRIES = 200  # draws per random region before the overlap limit is dropped


@dataclass
class ListenReport:
    """What :func:`listen_to_map` wrote and measured.

    Attributes
    ----------
    map_path, clip : Path, the RISE result and the explained clip
    section : str, section key the clip was scored in
    checkpoint : Path or str, the detector that produced the scores (its file, else its name)
    top_percent, smooth_cells : float, settings of the soft mask
    flagged_share : float, mean of the soft mask (share of the spectrogram flagged)
    scores : dict[str, float], anomaly scores (higher = more anomalous) of
        ``"original"`` (resynthesised clip), ``"flagged"`` (flagged part only) and
        ``"rest"`` (flagged part removed)
    random_removed : list[float], scores after removing random regions of the same
        shape and size (the baseline)
    paths : dict[str, Path], ``"flagged"``, ``"rest"``, ``"original"`` (wav) and
        ``"overlay"`` (png)
    seed : int, seed of the random baseline regions
    n_masks, agreement : masks and split-half agreement of the map
    notes : list[str], warnings worth showing beside the numbers
    """

    map_path: Path
    clip: Path
    section: str
    checkpoint: Path | str
    top_percent: float
    smooth_cells: float
    flagged_share: float
    scores: dict[str, float]
    random_removed: list[float]
    paths: dict[str, Path]
    seed: int = 0
    n_masks: int = 0
    agreement: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def drop(self) -> float:
        """Score change when the flagged region is removed (rest − original)."""
        return self.scores["rest"] - self.scores["original"]

    @property
    def n_random_lower(self) -> int:
        """Random same-size removals that lowered the score at least as much as the flagged one."""
        return int(sum(s <= self.scores["rest"] for s in self.random_removed))

    @property
    def flagged_lowers_most(self) -> bool:
        """True when removing the flagged region lowers the score, and more than every baseline."""
        return self.drop < 0 and self.n_random_lower == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "map": str(self.map_path),
            "clip": str(self.clip),
            "section": self.section,
            "checkpoint": str(self.checkpoint),
            "top_percent": self.top_percent,
            "smooth_cells": self.smooth_cells,
            "flagged_share": self.flagged_share,
            "scores": dict(self.scores),
            "random_removed": list(self.random_removed),
            "flagged_lowers_most": self.flagged_lowers_most,
            "paths": {k: str(v) for k, v in self.paths.items()},
            "n_masks": self.n_masks,
            "agreement": self.agreement,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """A few lines of plain text for the terminal."""
        s = self.scores
        rnd = np.asarray(self.random_removed, dtype=np.float64)
        lines = [
            f"clip {self.clip}" + (f" ({self.section})" if self.section else ""),
            f"map {self.map_path} ({self.n_masks} masks, split-half agreement "
            f"{self.agreement:.3f})",
            f"flagged: top {self.top_percent:g}% of time-frequency cells "
            f"(soft mask, smoothing {self.smooth_cells:g} cells; mean mask value "
            f"{100 * self.flagged_share:.1f}%)",
            "anomaly scores (higher = more anomalous):",
            f"  original                    {s['original']:.4f}",
            f"  flagged part only           {s['flagged']:.4f}",
            f"  flagged part removed        {s['rest']:.4f}  ({self.drop:+.4f})",
        ]
        if rnd.size:
            lines.append(
                f"  random same-size removed    {rnd.mean():.4f}  (mean of {rnd.size}; "
                f"lowest {rnd.min():.4f}, {rnd.mean() - s['original']:+.4f} on average)"
            )
        if self.flagged_lowers_most:
            lines.append(
                f"OK: removing the flagged region lowers the anomaly score, and more than each of "
                f"{rnd.size} random regions of the same size."
            )
        elif self.drop >= 0:
            lines += [
                "NOTE: removing the flagged region does NOT lower the anomaly score "
                f"({self.drop:+.4f}): without it the clip looks more anomalous, not less, so the "
                "score does not rest on that region alone. Either the flagged cells are what "
                "the clip is compared with (normal-sounding parts) rather than the anomaly, or "
                "the removal itself (a silent gap the model never heard in training) is what "
                "the model reacts to.",
                "next: listen to the 'rest' file below; flag a smaller or a larger share of "
                "cells; and if the split-half agreement is below 0.9, compute the map with more "
                "masks before reading it.",
            ]
        else:
            lines.append(
                f"NOTE: removing the flagged region does NOT lower the score the most: "
                f"{self.n_random_lower} of {rnd.size} random regions of the same size lowered it "
                "at least as much; the map is at best partly faithful for this clip."
            )
        lines += [f"note: {n}" for n in self.notes]
        lines.append("files:")
        lines += [f"  {key:9s} {path}" for key, path in self.paths.items()]
        return "\n".join(lines)


def listen_to_map(
    map_path: str | os.PathLike,
    *,
    top_percent: float = 10.0,
    smooth_cells: float = 1.0,
    checkpoint: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    n_random: int = N_RANDOM,
    detector: Any = None,
) -> ListenReport:
    """Resynthesise, write and score the flagged / rest / original versions of a clip.

    Parameters
    ----------
    map_path : path of a RISE result (``.h5``) written by ``asdxai rise``; its meta
        data name the clip, the section and the checkpoint
    top_percent : float in (0, 100), share of time–frequency cells counted as flagged
    smooth_cells : float ≥ 0, Gaussian smoothing of the selection in cells (0 = hard)
    checkpoint : detector spec (checkpoint ``*.pt``, ``*.onnx``, ``module:function``),
        optional, score with it instead of the detector the map records (``detector_spec``)
    detector : a detector object to score with (overrides ``checkpoint``); its
        ``sample_rate`` must be that of the map's grid
    out_dir : folder for the outputs (default: next to the map; created)
    device : torch device for scoring ("auto": CUDA if available)
    seed : int ≥ 0, seed of the random baseline regions
    n_random : int in 0 ... :data:`MAX_RANDOM`, random baseline regions

    Returns
    -------
    ListenReport

    Raises
    ------
    ResultError
        The map is unreadable, names no clip / section, or its clip is missing.
    CheckpointError
        No checkpoint recorded or given, or its spectrogram shape differs from the map.
    ConfigError
        Bad ``top_percent`` / ``smooth_cells`` / ``seed``.
    """

    check_params({"seed": (Integral, Interval(0, None)),
                  "n_random": (Integral, Interval(0, MAX_RANDOM)),
                  "top_percent": (Real, Interval(0, 100, closed="neither")),
                  "smooth_cells": (Real, Interval(0, None))},
                 seed=seed, n_random=n_random, top_percent=top_percent,
                 smooth_cells=smooth_cells)  # fmt: skip
    map_path = Path(map_path)
    res = load_result(map_path)
    check_smoothing(smooth_cells, tuple(res.importance.shape))
    # every output target is checked before the clip is read and scored
    out = Path(out_dir) if out_dir is not None else map_path.parent
    ensure_writable_dir(out)
    targets = Layout(out).listen_files(map_path.stem)
    for target in targets.values():
        check_output_file(target)
    meta = res.meta
    notes: list[str] = []
    if not res.complete:
        notes.append(f"the map is a partial (checkpointed) result of {res.n_masks} masks")
    if not res.agreement >= LOW_AGREEMENT:
        notes.append(
            f"the map's split-half agreement is {res.agreement:.3f}: it has not converged; "
            "rerun `asdxai rise` with more masks (e.g. --until-agreement 0.99)"
        )
    clip_text = meta.get("clip")
    if not clip_text:
        raise ResultError(
            f"{map_path}: the result records no clip path (not written by `asdxai rise`?)"
        )
    clip = Path(clip_text)
    if not clip.is_file():
        raise ResultError(f"{map_path}: the clip it explains, {clip}, does not exist (moved?)")
    section = meta.get("section") or None
    dev = resolve_device(device)
    if detector is None:
        spec = checkpoint or meta.get("detector_spec") or meta.get("checkpoint")
        if not spec:
            raise CheckpointError(
                f"{map_path}: the result records no loadable detector; name the model that made it",
                param="checkpoint",
            )
        if checkpoint is None and ":" not in str(spec) and not Path(spec).is_file():
            raise CheckpointError(
                f"{map_path}: recorded detector {spec} does not exist; name the model that made it",
                param="checkpoint",
            )
        detector = load_detector(spec, device=dev)
    det = CheckedDetector(detector)
    known = meta.get("detector_fingerprint") or meta.get("checkpoint_sha256")
    if known and det.fingerprint != known:
        msg = f"detector {det.name} is not the one that produced the map (fingerprint differs)"
        log.warning(msg)
        notes.append(msg)
    grid, own = meta.get("grid"), getattr(det, "features", None)
    if meta.get("domain", "input") == "input" and isinstance(own, FeatureConfig):
        feat = own  # an input-domain map lies on the detector's own grid
    elif isinstance(grid, dict):
        feat = FeatureConfig(**grid)
    else:
        raise ResultError(f"{map_path}: the result records no STFT grid to resynthesise on")
    if feat.sample_rate != det.sample_rate:
        raise CheckpointError(f"{map_path}: the map is at {feat.sample_rate} Hz, detector "
                              f"{det.name} reads {det.sample_rate} Hz")  # fmt: skip
    if tuple(res.importance.shape) != (feat.n_frames, feat.n_bins):
        raise CheckpointError(
            f"{map_path}: map shape {tuple(res.importance.shape)} does not match the "
            f"spectrogram {(feat.n_frames, feat.n_bins)} of detector {det.name} (another "
            "feature configuration?)"
        )
    if section is None and getattr(det, "sections", None):
        raise ResultError(f"{map_path}: the result records no section key")
    wave = read_clip(clip, feat)
    mask = soft_top_mask(res.importance, top_percent, smooth_cells=smooth_cells)
    parts = resynthesise(wave, mask, cfg=feat)

    rng = np.random.default_rng(seed)
    hard = soft_top_mask(res.importance, top_percent, smooth_cells=0.0) > 0.5
    random_rest = [
        resynthesise(wave, _random_region(mask, hard, rng), cfg=feat).rest for _ in range(n_random)
    ]
    versions = [parts.original, parts.flagged, parts.rest, *random_rest]
    scores = _score(det, section, versions, dev)

    paths: dict[str, Path] = {}
    for key, audio in (
        ("flagged", parts.flagged),
        ("rest", parts.rest),
        ("original", parts.original),
    ):
        paths[key] = write_wav(targets[key], audio.astype(np.float32), feat.sample_rate)
    paths["overlay"] = _write_overlay(
        targets["overlay"], wave, mask, feat,
        f"{clip.name} ({section}): top {top_percent:g}% flagged",
    )  # fmt: skip
    report = ListenReport(
        map_path=map_path, clip=clip, section=section, checkpoint=spec_of(det),
        top_percent=float(top_percent), smooth_cells=float(smooth_cells),
        flagged_share=float(mask.mean()),
        scores={"original": scores[0], "flagged": scores[1], "rest": scores[2]},
        random_removed=scores[3:], paths=paths, seed=int(seed), n_masks=res.n_masks,
        agreement=res.agreement, notes=notes,
    )  # fmt: skip
    log.info(
        "%s: original %.4f, flagged %.4f, rest %.4f, random removed %s",
        clip.name, scores[0], scores[1], scores[2], np.round(scores[3:], 4).tolist(),
    )  # fmt: skip
    return report


def _random_region(mask: np.ndarray, hard: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The soft mask rolled by a random (time, frequency) offset, overlapping ``hard`` ≤ half.

    mask : np.ndarray [shape=(T, F)] soft mask; hard : bool [shape=(T, F)] its selection.
    Returns np.ndarray [shape=(T, F)], the same shape and size at another place.
    """
    t, f = mask.shape
    n = max(int(hard.sum()), 1)
    best, best_overlap = mask, np.inf
    for _ in range(_MAX_TRIES):
        dt, df = int(rng.integers(0, t)), int(rng.integers(0, f))
        overlap = float((np.roll(hard, (dt, df), axis=(0, 1)) & hard).sum()) / n
        if overlap < best_overlap:
            best, best_overlap = np.roll(mask, (dt, df), axis=(0, 1)), overlap
        if overlap <= MAX_OVERLAP:
            break
    return best


@torch.no_grad()
def _score(
    detector, section: str | None, waves: list[np.ndarray], device: torch.device
) -> list[float]:
    """Anomaly scores of waveforms [each shape=(L,)] by the detector (``score``: a checkpoint
    recomputes every model input, the dual-branch spectrum included, from each version)."""
    batch = torch.from_numpy(np.stack(waves).astype(np.float32)).to(device)  # (n, L)
    return [float(v) for v in detector.score(batch, section).cpu()]


def spec_of(detector) -> str | Path:
    """How a report names its detector: the checkpoint / ONNX path, else the name."""
    path = getattr(detector, "path", None)
    return Path(path) if path is not None else detector.name


def _write_overlay(
    path: Path, wave: np.ndarray, mask: np.ndarray, feat: FeatureConfig, title: str
) -> Path:
    # matplotlib costs 0.8 s at import (measured after ``import asdxai.workflows``): only the
    # overlay needs it, so ``import asdxai.workflows`` does not pay for it

    spec_log = log_spectrogram(spectrogram(torch.from_numpy(wave), cfg=feat)).numpy()
    fig = plot_flagged_overlay(spec_log, mask, cfg=feat, title=title)
    return save_figure(fig, path, dpi=110)
