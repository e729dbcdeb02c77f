"""Explain clips with RISE: the one per-clip pipeline behind ``asdxai rise``, the demo and Fig. 4.

:class:`Explainer` takes any detector (:mod:`asdxai.detectors`: an asdxai checkpoint, an ONNX
file, a Python factory or an object following the protocol), wraps it in the checking
:class:`~asdxai.detectors.CheckedDetector` and, for each clip, reads the wav at the detector's
rate, resolves the section, builds what is masked in the chosen *domain* and runs RISE
(resuming a matching partial result), measures the map against whatever ground truth the clip
has and writes ``<stem>.h5`` and ``<stem>.png``.

Domains: ``input`` masks the detector's own time-frequency input (``time_frequency``; for a
dual-branch checkpoint the whole-clip spectrum is held fixed at the clip's own spectrum);
``signal`` masks the clip's complex STFT on a stated grid (:mod:`asdxai.explain.signal`,
default n_fft 1024 / hop 512), resynthesises it and scores the waveform with ``score`` (a
dual-branch checkpoint is then explained as it is used: both inputs recomputed).

The ``meta`` contract of a result written here (what ``listen`` and the figures read):

======================== ===================================================================
``clip``                 absolute path of the wav
``clip_sha256``          SHA-256 of the wav file (resume refuses a different clip at that path)
``section``              section key the detector scored in, e.g. ``fan_section_00`` (or None)
``detector``             the detector's name
``detector_spec``        how to load it again (checkpoint / ONNX path, ``module:function``;
                         None for an object handed over from Python)
``detector_fingerprint`` the detector's fingerprint (SHA-256 hex)
``detector_describe``    the detector's ``describe()`` (a checkpoint: path, feature settings,
                         architecture, task)
``domain``               ``input`` or ``signal``
``fill``                 what a masked cell became: the constant of the mask settings (a
                         float, 0.0 = silence) or a normal fill of
                         :data:`~asdxai.constants.NORMAL_FILLS` (``normal-mean``,
                         ``normal-nearest``; resume refuses another fill)
``grid``                 the map's STFT grid (``FeatureConfig`` dict: sample rate, clip length,
                         n_fft, hop), None for an input domain of unknown grid
``clip_score``           anomaly score of the unmasked clip
``measures``             dict of map measures (pixel AUC, pointing game, focus measures ...)
                         and the same of the clip's energy map (``energy_*``)
``placement``            only for a clip whose section was not named: the chosen section,
                         its probability and how it was chosen (:mod:`.placement`)
======================== ===================================================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import sha256_file
from .._runtime import provenance, resolve_device
from ..constants import (
    DEFAULT_STOP_AGREEMENT,
    DOMAINS,
    NORMAL_FILLS,
    STUDY_MASKS,
    default_estimator,
)
from ..data.anomaly_masks import find_anomaly_mask, load_anomaly_mask
from ..data.audio import clip_duration, read_clip
from ..data.components import load_components
from ..data.records import normal_train_clips, parse_name
from ..detectors import CheckedDetector, has_time_frequency, load_detector
from ..errors import ConfigError, DataError, ResultError
from ..explain import RISE
from ..explain import distributed as D
from ..explain.focus import map_focus
from ..explain.masks import RISEMaskConfig
from ..explain.reference import normal_reference
from ..explain.result import check_resumable, load_log_spectrogram, load_result, save_result
from ..explain.rise import ESTIMATORS, RISEExecution, RISEResult
from ..explain.signal import signal_grid, stft_masking
from ..features import FeatureConfig, log_spectrogram, spectrogram
from ..layout import Layout, output_stem, with_suffix  # noqa: F401  (output_stem: re-exported)
from .placement import Placement, place_clip

log = logging.getLogger(__name__)

#: Keys every result written by :meth:`Explainer.explain` carries in ``meta``.
META_KEYS = (
    "clip", "clip_sha256", "section", "detector", "detector_spec", "detector_fingerprint",
    "detector_describe", "domain", "fill", "grid", "clip_score", "measures",
)  # fmt: skip
#: Keys that must agree between a partial result and the run that continues it.
RESUME_KEYS = ("clip", "clip_sha256", "section", "detector_fingerprint", "domain", "fill", "grid")


@dataclass(frozen=True)
class MapSettings:
    """What map to compute: masks, how many, seed, estimator, stopping rule and fill.

    The default is a *converged* map: the control-variate estimator "cv" (same expectation as
    the study's plain one, far less noise; "centered" for "grid" masks, see
    :func:`asdxai.constants.default_estimator`), stopped once the split-half agreement reaches
    0.961, i.e. an estimated correlation of 0.99 with the converged map
    (``asdxai.explain.rise.estimated_correlation``), at most 640,000 masks. :meth:`study` gives
    the study's exact setting. ``estimator=None`` (the default) becomes the mask mode's default
    estimator.

    ``normal_fill``, one of :data:`~asdxai.constants.NORMAL_FILLS`, fills masked cells with
    normal content built from the normal training clips of the clip's section
    (:meth:`Explainer.normal_fill`) instead of the mask settings' constant ``fill``.
    """

    mask_config: RISEMaskConfig = field(default_factory=RISEMaskConfig)
    n_masks: int = STUDY_MASKS
    seed: int = 0
    estimator: str | None = None
    until_agreement: float | None = DEFAULT_STOP_AGREEMENT
    normal_fill: str | None = None

    def __post_init__(self) -> None:
        if self.estimator is None:
            object.__setattr__(self, "estimator", default_estimator(self.mask_config.mode))
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.normal_fill is not None and self.normal_fill not in NORMAL_FILLS:
            raise ConfigError(f"normal_fill must be one of {tuple(NORMAL_FILLS)}, got "
                              f"{self.normal_fill!r}", param="fill")  # fmt: skip
        if self.normal_fill is not None and self.mask_config.fill:
            raise ConfigError("a normal fill replaces the mask settings' constant fill; leave "
                              "that at 0", param="fill")  # fmt: skip

    @property
    def fill(self) -> float | str:
        """What a masked cell becomes: the normal fill's name, else the constant."""
        return self.normal_fill or float(self.mask_config.fill)

    @classmethod
    def study(cls, *, seed: int = 0, mask_config: RISEMaskConfig | None = None) -> MapSettings:
        """The study's setting: plain estimator, exactly 640,000 masks."""
        return cls(mask_config or RISEMaskConfig(), STUDY_MASKS, seed, "plain", None)


@dataclass(frozen=True)
class ClipInputs:
    """The model inputs of one clip.

    Attributes
    ----------
    spec : Tensor [shape=(T, F)], linear magnitude spectrogram (the explained input)
    spectrum : Tensor [shape=(1, L // 2)] or None, whole-clip magnitude spectrum (dual only)
    log_spec : np.ndarray [shape=(T, F)], dB, for plots
    wave : Tensor [shape=(L,)], the clip as the model reads it (``read_clip``)
    """

    spec: torch.Tensor
    spectrum: torch.Tensor | None
    log_spec: np.ndarray
    wave: torch.Tensor


@dataclass
class ExplainedClip:
    """One explained clip: the map and where it was written.

    ``reused`` is True when a complete result was already on disk and nothing was computed.
    """

    clip: Path
    section: str | None
    result: RISEResult
    log_spec: np.ndarray
    h5: Path | None = None
    png: Path | None = None
    reused: bool = False

    @property
    def measures(self) -> dict[str, float]:
        """Map measures against the clip's ground truth (empty without ground truth)."""
        return dict(self.result.meta.get("measures", {}))

    @property
    def score(self) -> float:
        """Anomaly score of the unmasked clip."""
        return float(self.result.meta["clip_score"])


def top_anomalous_clips(records: Sequence[Any], scores: Any, *, n: int = 2) -> list:
    """The anomalous clips with a ground-truth mask that ``scores`` rank highest, one per
    machine type (the clips Fig. 4 and the demo explain)."""
    picked, machines = [], set()
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        r = records[int(i)]
        if r.label != "anomaly" or r.machine in machines or find_anomaly_mask(r.path) is None:
            continue
        picked.append(r)
        machines.add(r.machine)
        if len(picked) == n:
            break
    return picked


def map_measures(
    importance: np.ndarray, clip: str | os.PathLike, *, log_energy: np.ndarray | None = None
) -> dict[str, float]:
    """Measures of where a map looks, against whatever ground truth the clip has.

    On a synthetic tree: the pixel AUC and pointing game against the anomaly mask (anomalous
    clips) and the machine focus, contrast, correlation (and, given ``log_energy``, the partial
    correlation beyond energy) and background-event share against the machine / background
    components (:func:`asdxai.explain.focus.map_focus`). Given the clip's log spectrogram
    ``log_energy`` [shape=(T, F), dB], the same measures of that *energy map* (a map that knows
    nothing of the model), prefixed ``energy_``, are the baseline row. Measures without ground
    truth are left out; empty for a clip outside a synthetic tree.
    """
    truth = load_anomaly_mask(clip)
    parts = load_components(clip)
    if truth is not None and truth.shape != importance.shape:
        truth = None
    if parts is not None and parts.level_db.shape != importance.shape:
        parts = None
    if log_energy is not None and np.shape(log_energy) != importance.shape:
        log_energy = None
    level, events = (None, None) if parts is None else (parts.level_db, parts.events)
    out = map_focus(
        importance, anomaly_mask=truth, level_db=level, events=events, log_energy=log_energy
    ).to_dict()
    if log_energy is not None:
        energy = map_focus(
            log_energy, anomaly_mask=truth, level_db=level, events=events, log_energy=log_energy
        ).to_dict()
        out.update({f"energy_{k}": v for k, v in energy.items() if not k.endswith("_area")})
    return {k: v for k, v in out.items() if np.isfinite(v)}


@dataclass(frozen=True)
class MaskedInput:
    """What is masked for one clip in a domain, and how it is scored.

    Attributes
    ----------
    x : Tensor [shape=(T, F)], the masked input (input domain: the detector's own input;
        signal domain: all ones, so a masked input is the mask on the clip's STFT)
    score : callable, Tensor [shape=(B, T, F)] -> Tensor [shape=(B,)], checked scores
    log_x : np.ndarray [shape=(T, F)], dB, for plots
    grid : FeatureConfig of the map's STFT grid, or None (input domain of unknown grid)
    """

    x: torch.Tensor
    score: Callable[[torch.Tensor], torch.Tensor]
    log_x: np.ndarray
    grid: Any


class Explainer:
    """A detector, loaded once, ready to explain many clips.

    Parameters
    ----------
    detector : a :class:`~asdxai.detectors.Detector`, or a spec for
        :func:`~asdxai.detectors.load_detector` (checkpoint ``*.pt``, ``*.onnx``,
        ``package.module:function``)
    device : torch device or ``"auto"`` (CUDA if available)
    domain : ``"input"`` (the detector's ``time_frequency`` input) or ``"signal"`` (masks on
        the clip's STFT, resynthesised); default: input where the detector has one
    grid : FeatureConfig whose ``n_fft`` / ``hop_length`` give the signal-domain STFT grid
        (default: :func:`asdxai.explain.signal.signal_grid`, n_fft 1024 / hop 512)
    """

    def __init__(
        self,
        detector: Any,
        *,
        device: str | torch.device = "auto",
        domain: str | None = None,
        grid: Any = None,
    ):
        self.device = resolve_device(device)
        self.spec: str | None = None
        if isinstance(detector, (str, os.PathLike)):
            self.spec = str(Path(detector).resolve()) if Path(detector).exists() else str(detector)
            detector = load_detector(detector, device=self.device)
        elif isinstance(getattr(detector, "path", None), Path):  # a loaded checkpoint / ONNX
            self.spec = str(detector.path)
        self.detector = CheckedDetector(detector)
        if domain is None:
            domain = "input" if has_time_frequency(self.detector.inner) else "signal"
        if domain not in DOMAINS:
            raise ConfigError(f"domain must be one of {DOMAINS}, got {domain!r}", param="domain")
        if domain == "input" and not has_time_frequency(self.detector.inner):
            raise ConfigError(
                f"detector {self.detector.name} has no time-frequency input of its own; explain "
                "it in the signal domain",
                param="domain",
            )
        self.domain = domain
        self.grid = grid
        #: Clips placed in a section by :func:`~.placement.place_clip`, by resolved path.
        self.placements: dict[Path, Placement] = {}
        #: Normal training clips already listed, by (clip folder, section, domain), and
        #: the mean normal references already built, by their clips.
        self._normal_clips: dict[tuple, list[Path]] = {}
        self._normal_means: dict[tuple[Path, ...], torch.Tensor] = {}

    @property
    def ckpt(self) -> Any:
        """The checkpoint of an asdxai-checkpoint detector."""
        return self._checkpoint_attr("ckpt")

    @property
    def scorer(self) -> Any:
        """The :class:`~asdxai.scoring.AnomalyScorer` of an asdxai-checkpoint detector."""
        return self._checkpoint_attr("scorer")

    def _checkpoint_attr(self, key: str) -> Any:
        value = getattr(self.detector.inner, key, None)
        if value is None:
            raise ConfigError(f"detector {self.detector.name} is not an asdxai checkpoint")
        return value

    @property
    def sections(self) -> list[str]:
        """Section keys the detector knows ([] for a detector that names none)."""
        return list(getattr(self.detector.inner, "sections", None) or [])

    def read(self, clip: str | os.PathLike) -> torch.Tensor:
        """The clip as the detector reads it [shape=(L,)] float32 on the explainer's device: at
        its sample rate, padded / trimmed to a checkpoint's clip length (else as long as it is)."""
        cfg = getattr(self.detector.inner, "features", None)
        if not isinstance(cfg, FeatureConfig):
            rate = self.detector.sample_rate
            n = max(int(round(clip_duration(clip) * rate)), 1)
            cfg = signal_grid(rate, n)
        return torch.from_numpy(read_clip(clip, cfg)).to(self.device)

    def section_for(self, clip: str | os.PathLike, section: str | None = None) -> str | None:
        """The section key of ``clip``: ``section`` if given, else from its DCASE name and
        folder, else (for a detector that names its sections) placed by what the model knows
        (:func:`~.placement.place_clip`, logged; the placement goes into the result's
        ``meta["placement"]``); None for a detector without sections and a clip outside the
        DCASE layout."""
        clip = Path(clip)
        sections = self.sections
        known = ", ".join(sections[:20])
        if section is not None:
            if sections and section not in sections:
                raise DataError(
                    f"section {section!r} is not in the detector (one of: {known})",
                    param="section",
                )
            return section
        try:
            number = parse_name(clip.name)["section"]
        except DataError:
            number = None
        key = None if number is None else f"{clip.resolve().parent.parent.name}_section_{number}"
        if not sections:
            return key
        if key in sections:
            return key
        if number is not None:
            matches = [s for s in sections if s.endswith(f"_section_{number}")]
            if len(matches) == 1:
                return matches[0]
        placed = place_clip(self, clip, number=number)
        self.placements[clip.resolve()] = placed
        reason = "no section in the name" if number is None else "section not in the detector"
        log.warning("%s", placed.message(clip, reason, sections))
        return placed.section

    def inputs(self, clip: str | os.PathLike) -> ClipInputs:
        """Read ``clip`` and compute an asdxai checkpoint's model inputs for it."""
        model_inputs = self._checkpoint_attr("model_inputs")
        wave = self.read(clip)
        inputs = model_inputs(wave[None])
        spec = inputs["spec"][0]
        return ClipInputs(spec, inputs["spectrum"], log_spectrogram(spec).cpu().numpy(), wave)

    def map_shape(self, clip: str | os.PathLike) -> tuple[int, int]:
        """(T, F) of the map of ``clip`` in this explainer's domain (reads only the header
        where it can)."""
        feat = getattr(self.detector.inner, "features", None)
        if self.domain == "input" and feat is not None:
            return (feat.n_frames, feat.n_bins)
        if self.domain == "input":
            return tuple(self.masked_input(self.read(clip), self.section_for(clip)).x.shape)
        rate = self.detector.sample_rate
        n = feat.n_samples if feat is not None else int(round(clip_duration(clip) * rate))
        grid = signal_grid(rate, n) if self.grid is None else self.grid
        return (1 + (n - grid.n_fft) // grid.hop_length, grid.n_fft // 2 + 1)

    def normal_clips(self, clip: str | os.PathLike) -> list[Path]:
        """The normal training clips a normal fill of ``clip`` is built from
        (:func:`asdxai.data.records.normal_train_clips`, listed once per section and domain);
        refused where this explainer's input is not the detector's own spectrogram (the signal
        domain, a detector without feature settings), or the clip has none."""
        if self.domain != "input":
            raise ConfigError(
                "a normal fill replaces cells of the detector's own spectrogram input; the "
                "signal domain masks the clip's STFT and cannot take one",
                param="fill",
            )
        if not isinstance(getattr(self.detector.inner, "features", None), FeatureConfig):
            raise ConfigError(
                f"detector {self.detector.name} states no feature settings to build a normal "
                "fill with (an asdxai checkpoint does)",
                param="fill",
            )
        try:
            fields = parse_name(clip)
            key = (Path(clip).resolve().parent, fields["section"], fields["domain"])
            if key not in self._normal_clips:
                self._normal_clips[key] = normal_train_clips(clip)
        except DataError as exc:
            raise DataError(f"a normal fill needs the clip's normal training clips: {exc}",
                            param="fill") from None  # fmt: skip
        return self._normal_clips[key]

    def normal_fill(
        self, clip: str | os.PathLike, name: str, like: torch.Tensor
    ) -> torch.Tensor:
        """The normal fill ``name`` (:data:`~asdxai.constants.NORMAL_FILLS`) of ``clip``
        [shape=(T, F)], linear magnitude, on the explainer's device: the cell-wise mean of its
        section's normal training clips (built once per section), or the one nearest to
        ``like`` [shape=(T, F)], the clip's masked input
        (:func:`asdxai.explain.reference.normal_reference`)."""
        if name not in NORMAL_FILLS:
            raise ConfigError(f"fill must be one of {tuple(NORMAL_FILLS)}, got {name!r}",
                              param="fill")  # fmt: skip
        clips, kind = tuple(self.normal_clips(clip)), NORMAL_FILLS[name]
        feat = self.detector.inner.features
        if kind == "mean" and clips in self._normal_means:
            return self._normal_means[clips]
        log.info("building the %s fill of %s from %d normal training clips", name,
                 Path(clip).name, len(clips))  # fmt: skip
        ref = normal_reference(clips, feat, kind=kind, like=like, device=self.device)
        if tuple(ref.shape) != tuple(like.shape):
            raise ConfigError(f"the normal fill's shape {tuple(ref.shape)} is not the input's "
                              f"{tuple(like.shape)}", param="fill")  # fmt: skip
        if kind == "mean":
            self._normal_means[clips] = ref
        return ref

    def masked_input(self, wave: torch.Tensor, section: str | None = None) -> MaskedInput:
        """What RISE masks in this explainer's domain for the clip ``wave`` [shape=(L,)] (from
        :meth:`read`) in ``section``, and how it is scored."""
        if self.domain == "input":
            tf = self.detector.time_frequency(wave, section)
            grid = getattr(self.detector.inner, "features", None)
            return MaskedInput(tf.x, tf.score, tf.log_x, grid)

        rate, n = self.detector.sample_rate, wave.shape[-1]
        grid = signal_grid(rate, n)
        if self.grid is not None:
            grid = FeatureConfig(sample_rate=rate, duration_s=n / rate, n_fft=self.grid.n_fft,
                                 hop_length=self.grid.hop_length)  # fmt: skip
        resynthesise = stft_masking(wave, grid)
        detector = self.detector

        def score(masks: torch.Tensor) -> torch.Tensor:
            return detector.score(resynthesise(masks), section)

        log_x = log_spectrogram(spectrogram(wave.float(), cfg=grid)).cpu().numpy()
        x = torch.ones(log_x.shape, device=wave.device)  # the masked input is the mask itself
        return MaskedInput(x, score, log_x, grid)

    def explain(
        self,
        clip: str | os.PathLike,
        *,
        section: str | None = None,
        settings: MapSettings | None = None,
        execution: RISEExecution | None = None,
        out_stem: str | os.PathLike | None = None,
        overwrite: bool = False,
        plot: bool = True,
        writer: bool = True,
    ) -> ExplainedClip:
        """Compute (or continue) the RISE map of one clip and write it.

        Parameters
        ----------
        clip : wav file
        section : section key; default: from the clip's DCASE name and folder
        settings : :class:`MapSettings` (default: converged map, the mask mode's default
            estimator; with a ``normal_fill``, masked cells take normal content,
            :meth:`normal_fill`)
        execution : device, batch size, precision, progress, checkpoints, process group;
            its ``device`` defaults to the explainer's
        out_stem : write ``<out_stem>.h5`` / ``.png`` (nothing is written when None). An
            existing result there is continued when its settings, clip, detector and domain
            match (skipped when complete) and refused otherwise, unless ``overwrite``
        overwrite : replace an existing result instead of continuing it
        plot : also write the PNG (log spectrogram | map)
        writer : whether this process writes (False on non-zero ranks of a sharded run)

        Raises
        ------
        DetectorError
            The detector returns the wrong shape, non-finite or non-deterministic scores
            (checked on the unmasked clip before anything is written).
        """
        clip = Path(clip)
        if not clip.is_file():
            raise DataError(f"{clip}: no such clip")
        settings = settings or MapSettings()
        ex = execution or RISEExecution()
        if ex.device is None:
            ex = replace(ex, device=self.device)
        section = self.section_for(clip, section)
        wave = self.read(clip)
        inputs = self.masked_input(wave, section)
        meta: dict[str, Any] = {
            "clip": str(clip.resolve()),
            "clip_sha256": sha256_file(clip),
            "section": section,
            "detector": self.detector.name,
            "detector_spec": self.spec,
            "detector_fingerprint": self.detector.fingerprint,
            "detector_describe": self.detector.describe(),
            "domain": self.domain,
            "fill": settings.fill,
            "grid": None if inputs.grid is None else inputs.grid.to_dict(),
        }
        if clip.resolve() in self.placements:
            meta["placement"] = self.placements[clip.resolve()].to_meta()
        h5 = with_suffix(out_stem, ".h5") if out_stem is not None else None
        png = with_suffix(out_stem, ".png") if out_stem is not None and plot else None
        resume_from = None
        if h5 is not None and h5.exists() and not overwrite:
            prev = load_result(h5)
            prev.meta.setdefault("fill", float(prev.mask_config.fill))  # written before "fill"
            try:
                check_resumable(
                    prev, mask_config=settings.mask_config, seed=settings.seed,
                    estimator=settings.estimator,
                    meta={k: meta[k] for k in RESUME_KEYS}, path=h5,
                )  # fmt: skip
            except ResultError as exc:
                raise ResultError(f"{exc} (overwrite it, or write elsewhere)") from None
            if prev.complete and (
                prev.n_masks >= settings.n_masks or prev.stopped_early
            ):  # nothing left to do
                return ExplainedClip(
                    clip, section, prev, _stored_log_spec(h5, prev), h5,
                    png if png is not None and png.exists() else None, reused=True,
                )  # fmt: skip
            resume_from = replace(prev, complete=False) if prev.complete else prev
        with torch.no_grad():  # the detector's promises, checked before anything is written
            clip_score = float(self.detector.score(wave[None], section)[0])
            inputs.score(inputs.x[None])
        prov = provenance(self.device)

        def save_partial(res: RISEResult) -> None:
            res.meta.update(meta)
            save_result(h5, res, log_spectrogram=inputs.log_x, provenance=prov)

        if h5 is not None and writer:
            ex = replace(ex, checkpoint=save_partial)
        else:
            ex = replace(ex, checkpoint=None)
        fill = None
        if settings.normal_fill is not None:
            fill = self.normal_fill(clip, settings.normal_fill, inputs.x)
        res = RISE(inputs.score, mask_config=settings.mask_config).attribute(
            inputs.x, n_masks=settings.n_masks, seed=settings.seed,
            estimator=settings.estimator, until_agreement=settings.until_agreement,
            resume_from=resume_from, execution=ex, fill=fill,
        )  # fmt: skip
        res.meta.update(meta)
        res.meta["clip_score"] = clip_score
        res.meta["measures"] = map_measures(res.importance, clip, log_energy=inputs.log_x)
        out = ExplainedClip(clip, section, res, inputs.log_x)
        if h5 is None or not writer:
            return out
        save_result(h5, res, log_spectrogram=inputs.log_x, provenance=prov)
        out.h5 = h5
        if png is not None:
            # plots (matplotlib, ~2/5 of torch's import, measured) load only when a figure is asked
            from ..plots.rise import plot_importance
            from ..plots.tsne import save_figure

            where = "" if section is None else f" ({section})"
            filled = f", fill {settings.fill}" if settings.fill else ""
            fig = plot_importance(
                inputs.log_x, res.importance, cfg=inputs.grid,
                title=f"{clip.name}{where}, {self.detector.name} [{self.domain}{filled}], "
                f"score {clip_score:.3f}",
            )  # fmt: skip
            save_figure(fig, png, dpi=110)
            # matplotlib on first use: ~2/5 of torch's import (measured); only figures need it
            import matplotlib.pyplot as plt

            plt.close(fig)
            out.png = png
        return out


def _stored_log_spec(h5: Path, result: RISEResult) -> np.ndarray:
    stored = load_log_spectrogram(h5)
    if stored is not None:
        return stored
    return log_spectrogram(torch.as_tensor(result.spectrogram)).numpy()


def explain_clips(
    explainer: Explainer,
    clips: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    sections: Sequence[str | None] | None = None,
    settings: MapSettings | None = None,
    execution: RISEExecution | None = None,
    overwrite: bool = False,
    plot: bool = True,
    on_done: Callable[[ExplainedClip], Any] | None = None,
) -> list[ExplainedClip]:
    """Explain several clips with one detector, results laid out by
    :meth:`asdxai.layout.Layout.map_stem` below ``out``.

    Every clip's section, output name and (with a normal fill) normal training clips are
    resolved before any map is computed. Under an
    initialised process group (``execution.distributed``) one clip's mask blocks are shared
    among the ranks, or several clips are; rank 0 writes a shared clip. ``on_done`` is called
    after each clip this process explained (e.g. to print a line). Returns this process's
    clips.
    """
    ex = execution or RISEExecution()
    sections = list(sections) if sections is not None else [None] * len(clips)
    keys = [explainer.section_for(c, s) for c, s in zip(clips, sections, strict=True)]
    if settings is not None and settings.normal_fill is not None:
        for clip in clips:
            explainer.normal_clips(clip)
    stems = [Layout(out).map_stem(c) for c in clips]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise ConfigError(f"two clips would both be written to {dup}.h5; explain them separately")
    ctx = ex.distributed
    share_blocks = ctx is not None and len(clips) == 1
    jobs = list(zip(clips, keys, stems, strict=True))
    mine = jobs if share_blocks else D.shard(jobs, ctx)
    if not share_blocks:
        ex = replace(ex, distributed=None)
    writer = ctx is None or not share_blocks or ctx.is_main
    done = []
    for clip, key, stem in mine:
        item = explainer.explain(
            clip, section=key, settings=settings, execution=ex, out_stem=stem,
            overwrite=overwrite, plot=plot, writer=writer,
        )  # fmt: skip
        if on_done is not None and writer:
            on_done(item)
        done.append(item)
    if ctx is not None:
        ctx.barrier()
    return done
