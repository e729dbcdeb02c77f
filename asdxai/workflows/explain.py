"""Explain clips with RISE: the one per-clip pipeline behind ``asdxai rise``, the demo and Fig. 4.

:class:`Explainer` loads a checkpoint once (encoder + fitted backend = the black box) and, for
each clip, reads the wav, computes the model inputs for either architecture (for a dual-branch
checkpoint the whole-clip spectrum is held fixed at the clip's own spectrum and only the
spectrogram is explained), binds the scorer to the clip's section, runs RISE (resuming a
matching partial result), measures the map against whatever ground truth the clip has and
writes ``<stem>.h5`` and ``<stem>.png``.

The ``meta`` contract of a result written here (what ``listen`` and the figures read):

======================= ====================================================================
``clip``                absolute path of the wav
``clip_sha256``         SHA-256 of the wav file (resume refuses a different clip at that path)
``section``             section key the scorer was bound to, e.g. ``fan_section_00``
``checkpoint``          absolute path of the checkpoint
``checkpoint_sha256``   SHA-256 of the checkpoint file
``feature_config``      the checkpoint's feature settings (dict)
``arch``                ``dual`` or ``spectrogram``
``spectrum_held_fixed`` True for a dual-branch checkpoint
``clip_score``          anomaly score of the unmasked clip
``measures``            dict of map measures (pixel AUC, pointing game, focus measures ...)
======================= ====================================================================
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

from ..errors import ConfigError, DataError, ResultError
from ..explain.masks import RISEMaskConfig
from ..explain.rise import ESTIMATORS, RISEExecution, RISEResult

log = logging.getLogger(__name__)

#: Keys every result written by :meth:`Explainer.explain` carries in ``meta``.
META_KEYS = (
    "clip", "clip_sha256", "section", "checkpoint", "checkpoint_sha256", "feature_config",
    "arch", "spectrum_held_fixed", "clip_score", "measures",
)  # fmt: skip
#: Keys that must agree between a partial result and the run that continues it.
RESUME_KEYS = ("clip", "clip_sha256", "section", "checkpoint_sha256")
#: The study's number of masks per map.
STUDY_MASKS = 640_000


@dataclass(frozen=True)
class MapSettings:
    """What map to compute: masks, how many, seed, estimator and stopping rule.

    The default is a *converged* map: the centred estimator (same expectation as the study's
    plain one, far less noise), stopped once the split-half agreement reaches 0.99, at most
    640,000 masks. :meth:`study` gives the study's exact setting.
    """

    mask_config: RISEMaskConfig = field(default_factory=RISEMaskConfig)
    n_masks: int = STUDY_MASKS
    seed: int = 0
    estimator: str = "centered"
    until_agreement: float | None = 0.99

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")

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
    section: str
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


def output_stem(out: str | os.PathLike, clip: str | os.PathLike) -> Path:
    """Where the results of ``clip`` go below ``out``, without suffix.

    A clip in the DCASE layout (``<machine>/<train|test>/<name>.wav``) goes to
    ``<out>/<machine>/<name>``, so clips of different machines that share a file name (every
    DCASE machine has ``section_00_source_test_anomaly_0000_...``) never collide; any other
    clip goes to ``<out>/<name>``. ``..`` in ``clip`` is resolved first, so the result always
    lies below ``out``.
    """
    clip = Path(os.path.abspath(clip))
    if clip.parent.name in ("train", "test", "supplemental"):
        return Path(out) / clip.parent.parent.name / clip.stem
    return Path(out) / clip.stem


def top_anomalous_clips(records: Sequence[Any], scores: Any, n: int = 2) -> list:
    """The anomalous clips with a ground-truth mask that ``scores`` rank highest, one per
    machine type (the clips Fig. 4 and the demo explain)."""
    from ..data.anomaly_masks import find_anomaly_mask

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


def map_measures(importance: np.ndarray, clip: str | os.PathLike) -> dict[str, float]:
    """Measures of where a map looks, against whatever ground truth the clip has.

    On a synthetic tree: the pixel AUC and pointing game against the anomaly mask (anomalous
    clips) and the machine focus, signed machine correlation and background-event share
    against the machine / background components (:func:`asdxai.explain.focus.map_focus`).
    Measures without ground truth are left out; empty for a clip outside a synthetic tree.
    """
    from ..data.anomaly_masks import load_anomaly_mask
    from ..data.components import load_components
    from ..explain.focus import map_focus

    truth = load_anomaly_mask(clip)
    parts = load_components(clip)
    if truth is not None and truth.shape != importance.shape:
        truth = None
    if parts is not None and parts.level_db.shape != importance.shape:
        parts = None
    focus = map_focus(
        importance, truth,
        None if parts is None else parts.level_db, None if parts is None else parts.events,
    )  # fmt: skip
    return {k: v for k, v in focus.to_dict().items() if np.isfinite(v)}


class Explainer:
    """A checkpoint's black box, loaded once, ready to explain many clips.

    Parameters
    ----------
    checkpoint : path of a ``model.pt`` with a fitted backend
    device : torch device or ``"auto"`` (CUDA if available)
    """

    def __init__(self, checkpoint: str | os.PathLike, *, device: str | torch.device = "auto"):
        from .._io import sha256_file
        from .._runtime import resolve_device
        from ..checkpoint import load_checkpoint
        from ..scoring import AnomalyScorer

        self.path = Path(checkpoint).resolve()
        self.ckpt = load_checkpoint(self.path)
        self.device = resolve_device(device)
        self.scorer = AnomalyScorer.from_checkpoint(self.ckpt, self.device)
        self.sha256 = sha256_file(self.path)

    @property
    def sections(self) -> list[str]:
        """Section keys the backend was fitted on."""
        return list(self.scorer.sections)

    def section_for(self, clip: str | os.PathLike, section: str | None = None) -> str:
        """The section key of ``clip``: ``section`` if given, else from its DCASE name and
        folder, else the section the clip is closest to (:meth:`nearest_section`, logged)."""
        from ..data.records import parse_name

        clip = Path(clip)
        known = ", ".join(self.sections[:20])
        if section is not None:
            if section not in self.sections:
                raise DataError(
                    f"section {section!r} is not in the checkpoint (one of: {known})",
                    param="section",
                )
            return section
        try:
            number = parse_name(clip.name)["section"]
        except DataError:
            number = None
        if number is not None:
            key = f"{clip.resolve().parent.parent.name}_section_{number}"
            if key in self.sections:
                return key
            matches = [s for s in self.sections if s.endswith(f"_section_{number}")]
            if len(matches) == 1:
                return matches[0]
        nearest = self.nearest_section(clip)
        log.warning(
            "%s: %s; explaining it in %s, the section it is closest to (lowest anomaly score); "
            "name the section to choose another (one of: %s)",
            clip,
            "no section in the file name" if number is None else "section not in the checkpoint",
            nearest,
            known,
        )
        return nearest

    def nearest_section(self, clip: str | os.PathLike) -> str:
        """The section whose normal training clips ``clip`` is closest to: the one that gives
        it the lowest anomaly score."""
        inputs = self.inputs(clip)
        with torch.no_grad():
            scores = {
                key: float(self.scorer.bind(key, spectrum=inputs.spectrum)(inputs.spec[None])[0])
                for key in self.sections
            }
        return min(scores, key=scores.__getitem__)

    def inputs(self, clip: str | os.PathLike) -> ClipInputs:
        """Read ``clip`` and compute the checkpoint's model inputs for it."""
        from ..data.audio import read_clip
        from ..features import log_spectrogram
        from ..nets import encoder_inputs

        wave = torch.from_numpy(read_clip(clip, self.ckpt.features))[None].to(self.device)
        inputs = encoder_inputs(wave, self.ckpt.features, self.ckpt.net.arch)
        spec = inputs["spec"][0]
        log_spec = log_spectrogram(spec).cpu().numpy()
        return ClipInputs(spec, inputs["spectrum"], log_spec, wave[0])

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
        settings : :class:`MapSettings` (default: converged centred map)
        execution : device, batch size, precision, progress, checkpoints, process group;
            its ``device`` defaults to the explainer's
        out_stem : write ``<out_stem>.h5`` / ``.png`` (nothing is written when None). An
            existing result there is continued when its settings, clip and checkpoint match
            (skipped when complete) and refused otherwise, unless ``overwrite``
        overwrite : replace an existing result instead of continuing it
        plot : also write the PNG (log spectrogram | map)
        writer : whether this process writes (False on non-zero ranks of a sharded run)
        """
        from .._io import sha256_file
        from .._runtime import provenance
        from ..explain import RISE
        from ..explain.result import check_resumable, load_result, save_result

        clip = Path(clip)
        if not clip.is_file():
            raise DataError(f"{clip}: no such clip")
        settings = settings or MapSettings()
        ex = execution or RISEExecution()
        if ex.device is None:
            ex = replace(ex, device=self.device)
        section = self.section_for(clip, section)
        meta: dict[str, Any] = {
            "clip": str(clip.resolve()),
            "clip_sha256": sha256_file(clip),
            "section": section,
            "checkpoint": str(self.path),
            "checkpoint_sha256": self.sha256,
            "feature_config": self.ckpt.features.to_dict(),
            "arch": self.ckpt.net.arch,
            "spectrum_held_fixed": self.ckpt.net.arch == "dual",
        }
        h5 = Path(out_stem).with_suffix(".h5") if out_stem is not None else None
        png = Path(out_stem).with_suffix(".png") if out_stem is not None and plot else None
        resume_from = None
        if h5 is not None and h5.exists() and not overwrite:
            prev = load_result(h5)
            try:
                check_resumable(
                    prev, settings.mask_config, settings.seed, settings.estimator,
                    {k: meta[k] for k in RESUME_KEYS}, h5,
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
        inputs = self.inputs(clip)
        score_fn = self.scorer.bind(section, spectrum=inputs.spectrum)
        prov = provenance(self.device)

        def save_partial(res: RISEResult) -> None:
            res.meta.update(meta)
            save_result(h5, res, log_spectrogram=inputs.log_spec, provenance=prov)

        if h5 is not None and writer:
            ex = replace(ex, checkpoint=save_partial)
        else:
            ex = replace(ex, checkpoint=None)
        res = RISE(score_fn, settings.mask_config).attribute(
            inputs.spec, n_masks=settings.n_masks, seed=settings.seed,
            estimator=settings.estimator, until_agreement=settings.until_agreement,
            resume_from=resume_from, execution=ex,
        )  # fmt: skip
        res.meta.update(meta)
        with torch.no_grad():
            res.meta["clip_score"] = float(score_fn(inputs.spec[None])[0])
        res.meta["measures"] = map_measures(res.importance, clip)
        out = ExplainedClip(clip, section, res, inputs.log_spec)
        if h5 is None or not writer:
            return out
        save_result(h5, res, log_spectrogram=inputs.log_spec, provenance=prov)
        out.h5 = h5
        if png is not None:
            from ..plots.rise import plot_importance
            from ..plots.tsne import save_figure

            fig = plot_importance(
                inputs.log_spec, res.importance, self.ckpt.features,
                title=f"{clip.name} ({section}), score {res.meta['clip_score']:.3f}",
            )  # fmt: skip
            save_figure(fig, png, dpi=110)
            import matplotlib.pyplot as plt

            plt.close(fig)
            out.png = png
        return out


def _stored_log_spec(h5: Path, result: RISEResult) -> np.ndarray:
    from ..explain.result import load_log_spectrogram
    from ..features import log_spectrogram

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
    """Explain several clips with one checkpoint, results laid out by :func:`output_stem`.

    Every clip's section and output name is resolved before any map is computed. Under an
    initialised process group (``execution.distributed``) one clip's mask blocks are shared
    among the ranks, or several clips are; rank 0 writes a shared clip. ``on_done`` is called
    after each clip this process explained (e.g. to print a line). Returns this process's
    clips.
    """
    from ..explain import distributed as D

    ex = execution or RISEExecution()
    sections = list(sections) if sections is not None else [None] * len(clips)
    keys = [explainer.section_for(c, s) for c, s in zip(clips, sections, strict=True)]
    stems = [output_stem(out, c) for c in clips]
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
