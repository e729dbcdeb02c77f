"""One ``asdxai rise`` run as a workflow: the process group, the checks, the maps, listening.

:func:`run_rise` starts the process group when running under ``torchrun`` (and shuts it down),
binds the detector, refuses a section the detector does not know, a block or batch size whose
memory cannot exist (:func:`check_memory`) and an output that cannot be written, then explains
the clips (:func:`~asdxai.workflows.explain.explain_clips`) and, when asked, makes each map
listenable (:func:`~asdxai.workflows.listen_report.listen_to_map`) with the same detector.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from numbers import Real
from pathlib import Path
from typing import Any

import torch

from .._atomic import check_output_file, ensure_writable_dir
from .._checks import Interval, check_params
from .._runtime import resolve_device
from ..errors import ConfigError, DataError
from ..explain import distributed as D
from ..explain.rise import RISEExecution, estimated_correlation
from ..layout import Layout
from .explain import ExplainedClip, Explainer, MapSettings, explain_clips
from .listen_report import ListenReport, listen_to_map

log = logging.getLogger(__name__)


def memory_limit(device: torch.device | str) -> int:
    """Bytes of memory the run may use: the GPU's total memory, else the machine's RAM."""
    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 2**40


def check_memory(
    settings: MapSettings, *, batch_size: int | None, shape: tuple[int, int], device: Any
) -> None:
    """Refuse block / batch sizes whose memory cannot exist, before allocating.

    Counted (a lower bound of what the run allocates): one block of random cells, drawn whole
    on the CPU (``block_size`` x the cells of one mask, float32), and one forward pass's
    masked inputs and masks (``batch`` x T x F float32 each; the batch never exceeds the
    masks of the run). ``shape`` is the map's (T, F).
    """
    masks = settings.mask_config
    t, f = shape
    use_t, use_f = masks.random_axes
    if masks.dense:
        cells = masks.time_cells * masks.freq_cells + 2
    else:
        cells = (masks.time_cells + 1) * use_t + (masks.freq_cells + 1) * use_f
    block_bytes = masks.block_size * max(cells, 1) * 4
    ram = memory_limit("cpu")
    if block_bytes > ram:
        raise ConfigError(
            f"{masks.block_size} masks per block need {block_bytes / 2**30:.1f} GiB of random "
            f"cells, more than the {ram / 2**30:.1f} GiB of memory of this machine",
            param="block_size",
        )
    if batch_size is not None:
        batch = min(batch_size, max(settings.n_masks, masks.block_size))
        batch_bytes = batch * t * f * 4 * 2
        limit = memory_limit(device)
        if batch_bytes > limit:
            raise ConfigError(
                f"{batch_size} masked inputs of {t} x {f} per forward pass need at least "
                f"{batch_bytes / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB of "
                f"{device}",
                param="batch_size",
            )


def _check_outputs(out: Path, clips: Sequence[Path], *, plot: bool, listen: bool) -> None:
    """Every file the run will write can be written (checked before the first mask)."""
    layout = Layout(out)
    for clip in clips:
        files = layout.map_files(clip, plot=plot)
        if listen:
            files |= Layout(files["map"].parent).listen_files(files["map"].stem)
        for path in files.values():
            check_output_file(path)


def _projection(settings: MapSettings, rate: float, device: torch.device) -> str:
    """The line that says how long a map will take, from the first batch's rate."""
    bound = "at most " if settings.until_agreement is not None else ""
    minutes = settings.n_masks / max(rate, 1e-9) / 60
    stop = (f", stops earlier at split-half agreement {settings.until_agreement} (estimated r "
            f"{estimated_correlation(settings.until_agreement):.3f} with the converged map)"
            if settings.until_agreement is not None else "")  # fmt: skip
    return (f"RISE on {device}: {rate:.0f} masks/s measured; {bound}{settings.n_masks} masks "
            f"per map = {bound}{minutes:.1f} min per clip{stop}")  # fmt: skip


@dataclass(frozen=True)
class RunSettings:
    """What one ``asdxai rise`` run writes and reports, beside the map (:class:`MapSettings`) and
    how it is computed (:class:`~asdxai.explain.RISEExecution`, whose ``device`` the run uses:
    None or "auto" = CUDA if available; ``cuda:LOCAL_RANK`` under torchrun).

    Attributes
    ----------
    section : str, optional
        The section the user asked for, checked against the detector's sections.
    domain : "input" | "signal"
        Where the masks act (:class:`~asdxai.workflows.explain.Explainer`).
    plot : bool
        Also write each map's PNG.
    overwrite : bool
        Replace results of other settings instead of refusing them.
    listen_percent : float, optional
        Also write the listenable versions of each map (this top percent of cells flagged).
    on_done, on_line, on_listened : callable, optional
        Called with each finished map (:class:`ExplainedClip`), each line worth showing (the
        projected run time, once) and each listening report (:class:`ListenReport`).
    """

    section: str | None = None
    domain: str = "input"
    plot: bool = True
    overwrite: bool = False
    listen_percent: float | None = None
    on_done: Callable[[ExplainedClip], Any] | None = None
    on_line: Callable[[str], Any] | None = None
    on_listened: Callable[[ListenReport], Any] | None = None

    def __post_init__(self) -> None:  # checked here, not after the maps are made
        if self.listen_percent is not None:
            check_params({"listen_percent": (Real, Interval(0, 100, closed="neither"))},
                         listen_percent=self.listen_percent)  # fmt: skip


def run_rise(
    detector: Any,
    clips: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    settings: MapSettings,
    execution: RISEExecution,
    run: RunSettings | None = None,
    sections: Sequence[str | None] | None = None,
) -> list[ExplainedClip]:
    """Explain ``clips`` with ``detector`` into ``out``, laid out by :class:`~asdxai.layout.Layout`.

    Parameters
    ----------
    detector : detector spec or object (:func:`asdxai.detectors.load_detector`)
    clips : wav files [length N]
    out : output folder (created)
    settings, execution : what map and how (``execution.distributed`` is set here under
        ``torchrun``; ``execution.device`` None = "auto")
    run : what the run writes and reports (:class:`RunSettings`; default: its defaults)
    sections : section key per clip [length N] (None = from each file name)

    Returns
    -------
    list of ExplainedClip
        This process's maps.
    """
    run = run or RunSettings()
    section, domain, plot, overwrite = run.section, run.domain, run.plot, run.overwrite
    listen_percent, on_done, on_line, on_listened = (
        run.listen_percent,
        run.on_done,
        run.on_line,
        run.on_listened,
    )
    clips = [Path(c) for c in clips]
    out = ensure_writable_dir(out)  # fail before any work, not when the first map is saved
    dev = D.local_device(resolve_device(execution.device or "auto"))
    ctx = D.init_from_env(device=dev)
    try:
        explainer = Explainer(detector, device=dev, domain=domain)
        known = explainer.sections
        if section is not None and known and section not in known:
            raise DataError(
                f"section {section!r} is not in the detector's sections; available: "
                f"{', '.join(known[:30])}",
                param="section",
            )
        check_memory(
            settings,
            batch_size=execution.batch_size,
            shape=explainer.map_shape(clips[0]),
            device=dev,
        )
        _check_outputs(out, clips, plot=plot, listen=listen_percent is not None)
        if getattr(explainer.detector, "arch", None) == "dual":
            log.warning(
                "dual-branch checkpoint: %s",
                "explaining the spectrogram; the whole-clip spectrum input is held fixed at the "
                "clip's own spectrum (the signal domain explains it as it is used)"
                if explainer.domain == "input"
                else "signal domain: both inputs recomputed from the masked signal",
            )

        def projected(rate: float) -> None:
            if on_line is not None:
                on_line(_projection(settings, rate, dev))

        execution = replace(execution, device=dev, distributed=ctx, on_first_batch=projected)
        done = explain_clips(
            explainer, clips, out, sections=sections, settings=settings, execution=execution,
            overwrite=overwrite, plot=plot, on_done=on_done,
        )  # fmt: skip
        if listen_percent is not None:
            for item in done:
                if item.h5 is None:
                    continue
                report = listen_to_map(item.h5, top_percent=listen_percent,
                                       detector=explainer.detector, device=dev)  # fmt: skip
                if on_listened is not None:
                    on_listened(report)
    except torch.cuda.OutOfMemoryError as exc:
        raise ConfigError(f"out of GPU memory even at batch size 1 ({exc})") from None
    finally:
        D.shutdown(ctx)
    return done
