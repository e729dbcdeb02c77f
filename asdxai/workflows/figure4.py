"""The study's Fig. 4 as one workflow: rank, pick, explain under several models, measure, draw.

The demo and ``figures/fig4_rise.py`` both call :func:`explain_top_clips`, so they rank the same
way (by the first model's own anomaly scores), lay their maps out the same way (each model's
folder, then :meth:`asdxai.layout.Layout.map_stem`) and draw the same figure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..explain.rise import RISEExecution
from ..layout import Layout
from ..plots.rise import clip_label, measures_caption, plot_importance_grid
from .evaluate import detector_scores
from .explain import ExplainedClip, Explainer, MapSettings, top_anomalous_clips

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplainedModel:
    """One model of the figure: a key, a title for the figure, its explainer and the folder its
    maps go to (each at :meth:`asdxai.layout.Layout.map_stem` below it)."""

    key: str
    title: str
    explainer: Explainer
    folder: Path


@dataclass
class Figure4:
    """What :func:`explain_top_clips` made.

    ``items[(clip path, model key)]`` is each explained map; ``rows`` one dict per map (clip,
    machine, section, label, model, masks, agreement and the map measures) for tables.
    """

    clips: list[Any]
    figure: Figure
    items: dict[tuple[Path, str], ExplainedClip] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def explain_top_clips(
    records: Sequence[Any],
    models: Sequence[ExplainedModel],
    *,
    settings: MapSettings,
    execution: RISEExecution | None = None,
    n_clips: int = 2,
    progress: bool = True,
) -> Figure4:
    """Explain the ``n_clips`` anomalous clips the first model finds most anomalous.

    Parameters
    ----------
    records : test clip records (anomalous clips with a ground-truth mask are eligible)
    models : the models to explain them under; the first one ranks the clips
    settings : the maps' settings (masks, seed, estimator, stopping rule)
    execution : RISE's execution settings (device, batch, progress)
    n_clips : clips to explain, one per machine type
    progress : progress bar while ranking

    Returns
    -------
    Figure4
        Empty ``clips`` (and no figure rows) when no anomalous clip has a ground-truth mask.
    """
    ranker = models[0].explainer
    scores = detector_scores(ranker.detector, records, progress=progress)
    clips = top_anomalous_clips(records, scores, n=n_clips)
    made = Figure4(clips=clips, figure=Figure())
    grid, captions = [], []
    for clip in clips:
        maps, caption, log_spec = {}, {}, None
        for model in models:
            log.info("RISE map of %s/%s under %s (%s)", clip.machine, clip.name, model.title,
                     model.explainer.detector.name)  # fmt: skip
            item = model.explainer.explain(
                clip.path, section=clip.section_key, settings=settings, execution=execution,
                out_stem=Layout(model.folder).map_stem(clip.path), plot=False,
            )  # fmt: skip
            made.items[(clip.path, model.key)] = item
            maps[model.title] = item.result.importance
            caption[model.title] = measures_caption(item.measures)
            log_spec = item.log_spec
            made.rows.append({
                "clip": clip.name, "machine": clip.machine, "section": clip.section_key,
                "label": clip.label, "model": model.title, "n_masks": int(item.result.n_masks),
                "agreement": float(item.result.agreement), "clip_score": item.score,
                **item.measures,
            })  # fmt: skip
        grid.append(
            (clip_label(clip.machine, clip.section, clip.name, label=clip.label), log_spec, maps)
        )
        captions.append(caption)
    if grid:
        features = getattr(ranker.detector.inner, "features", None)  # a checkpoint's STFT grid
        made.figure = plot_importance_grid(
            grid, cfg=features, captions=captions,
            title="RISE maps of the clips the first model ranks most anomalous, explained by\n"
            + ", ".join(m.explainer.detector.name for m in models),
        )  # fmt: skip
    return made
