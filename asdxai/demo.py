"""The end-to-end demo: two detectors, their scores, RISE maps and t-SNE views, side by side.

``run_demo`` shows the study's contrast on the embedded synthetic data: a one-class model (IC
compactness loss, no auxiliary classes) against a sub-cluster AdaCos model trained to tell
machine types, sections and attributes apart. By default it uses the bundled models (trained
on the synthetic ``small`` tree, seed 0): it generates the test clips, scores both models,
explains two anomalous clips with both and draws both embedding spaces. With ``train=True``
it trains the two models itself first (spectrogram-only encoders at a reduced width).

Everything goes through :mod:`asdxai.workflows`, exactly as the command line does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import metrics
from ._atomic import atomic_write_text, ensure_writable_dir
from ._runtime import provenance, resolve_device
from .checkpoint import load_checkpoint, save_checkpoint
from .data.records import scan
from .embed import TSNEConfig, save_result, write_distances_csv
from .explain import RISEExecution
from .layout import Layout
from .plots.tsne import plot_tsne_panels, result_panel, save_figure
from .recipes import Recipe
from .workflows.defaults import bundled_checkpoint, ensure_synthetic
from .workflows.embedding import project_split
from .workflows.evaluate import ScoreSettings, score_checkpoint
from .workflows.explain import Explainer, MapSettings
from .workflows.figure4 import ExplainedModel, explain_top_clips
from .workflows.training import train_recipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoModel:
    """One detector of the demo: the recipe it comes from and its bundled checkpoints.

    ``scored`` is the model scored and projected (Table II / Fig. 5); ``explained`` its
    spectrogram-only twin explained with RISE (Fig. 4), as in the study.
    """

    name: str  # file stem and table row label
    title: str  # figure label
    recipe: str  # the spectrogram-only recipe (what --train trains)
    scored: str  # bundled checkpoint name
    explained: str  # bundled checkpoint name


DEMO_MODELS = (
    DemoModel(
        "compactness-none", "IC compactness, 1 class",
        "synthetic-small-compactness-none-spectrogram", "compactness-none",
        "compactness-none-spectrogram",
    ),
    DemoModel(
        "sc-adacos-attribute", "SC-AdaCos, attribute classes",
        "synthetic-small-sc-adacos-attribute-spectrogram", "sc-adacos-attribute",
        "sc-adacos-attribute-spectrogram",
    ),
)  # fmt: skip


@dataclass
class DemoOutputs:
    """Where the demo put things, and its headline numbers."""

    out: Path
    data: Path
    checkpoints: dict[str, Path] = field(default_factory=dict)  # scored (Table II, Fig. 5)
    explained: dict[str, Path] = field(default_factory=dict)  # their RISE twins (Fig. 4)
    scores: dict[str, Path] = field(default_factory=dict)
    rise_maps: dict[str, list[Path]] = field(default_factory=dict)
    tsne: dict[str, Path] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    table: str = ""
    table_file: Path | None = None  # the performance table in markdown
    summary: dict = field(default_factory=dict)


def _models(layout: Layout, data: Path, train: bool, epochs: int, width: float, seed: int, dev,
            progress: bool) -> dict[str, tuple[Path, Path]]:  # fmt: skip
    """``{model name: (scored checkpoint, explained checkpoint)}``: bundled, or trained here."""
    paths = {}
    for model in DEMO_MODELS:
        if not train:
            paths[model.name] = (bundled_checkpoint(model.scored),
                                 bundled_checkpoint(model.explained))  # fmt: skip
            continue
        path = layout.models.checkpoint(model.name)
        log.info("training %s -> %s", model.title, path)
        recipe = Recipe.load(model.recipe).with_overrides(
            epochs=epochs, width=width, splits=("dev-train",)
        )
        ckpt = train_recipe(recipe, data, seed=seed, device=dev, progress=progress)
        save_checkpoint(ckpt, path)
        paths[model.name] = (path, path)
    return paths


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs (the defaults reproduce ``asdxai demo``).

    Attributes
    ----------
    device : torch device ("auto" = CUDA if available)
    seed : seed of the data, RISE and t-SNE (and of the training runs with ``train``)
    train : train the two models here (spectrogram-only encoders) instead of using the
        bundled ones
    preset : synthetic preset of the data (a name or a ``PresetConfig``); the bundled models
        were trained on ``small``
    epochs, width : training settings with ``train``
    n_clips : anomalous clips to explain (the SC-AdaCos model's top-scored, one per machine)
    max_masks : upper bound of RISE masks per map
    agreement : each map stops once its split-half agreement reaches this
    progress : tqdm progress bars
    """

    device: str = "auto"
    seed: int = 0
    train: bool = False
    preset: Any = "small"
    epochs: int = 10
    width: float = 0.25
    n_clips: int = 2
    max_masks: int = 8_000
    agreement: float = 0.95
    progress: bool = True


def run_demo(out: str | Path, *, settings: DemoSettings | None = None) -> DemoOutputs:
    """Run the whole demo into ``out`` (the synthetic data goes to ``out/data`` unless already
    there; :class:`~asdxai.layout.Layout` names the rest) and return where its outputs went."""
    s = settings or DemoSettings()
    device, seed, train, preset, epochs = s.device, s.seed, s.train, s.preset, s.epochs
    width, n_clips, max_masks, agreement, progress = (s.width, s.n_clips, s.max_masks,
                                                      s.agreement, s.progress)  # fmt: skip

    dev = resolve_device(device)
    out = ensure_writable_dir(out)
    layout = Layout(out)
    if train:  # the whole tree: the models train on it
        data = ensure_synthetic(layout.data, preset=preset, seed=seed, progress=progress)
    else:  # the bundled models only need test clips: one section per machine type
        data = ensure_synthetic(layout.data, preset=preset, seed=seed,
                                splits=("dev-test",), sections=(0,), progress=progress)  # fmt: skip
    res = DemoOutputs(out=out, data=data)
    test = scan(data, split="dev-test")
    models = _models(layout, data, train, epochs, width, seed, dev, progress)

    rows, scored_ckpts = [], {}
    for model in DEMO_MODELS:
        scored, _ = models[model.name]
        res.checkpoints[model.name] = scored
        scored_ckpts[model.name] = load_checkpoint(scored)
        log.info("scoring %s on dev-test (%d clips)", model.title, len(test))
        report = score_checkpoint(
            scored_ckpts[model.name], test, None, out_dir=layout.scores.model(model.name).root,
            settings=ScoreSettings(protocols=("study",), device=dev, progress=progress),
        )  # fmt: skip
        res.scores[model.name] = layout.scores.model(model.name).root
        summary = report.evaluations["study"].summary
        rows.append(metrics.performance_row(model.title, summary))
        res.summary.setdefault("auc", {})[model.name] = {
            "source": summary["hmean_auc_source"], "target": summary["hmean_auc_target"],
        }  # fmt: skip
    res.table = metrics.format_terminal(rows)
    res.table_file = metrics.write_tables(rows, layout.table("performance"))[1]  # markdown

    settings = MapSettings(n_masks=max_masks, seed=seed, until_agreement=agreement)
    explained = [
        ExplainedModel(
            m.name,
            m.title,
            Explainer(models[m.name][1], device=dev),
            layout.maps.model(m.name).root,
        )
        for m in reversed(DEMO_MODELS)  # the SC-AdaCos model ranks the clips
    ]
    fig4 = explain_top_clips(
        test, explained, settings=settings,
        execution=RISEExecution(progress=progress), n_clips=n_clips, progress=progress,
    )  # fmt: skip
    for m in DEMO_MODELS:
        res.explained[m.name] = models[m.name][1]
    for (clip, key), item in fig4.items.items():
        res.rise_maps.setdefault(key, []).append(item.h5)
        machine = Path(clip).parent.parent.name  # file names repeat across machines
        res.summary.setdefault("measures", {}).setdefault(key, {})[
            f"{machine}/{Path(clip).name}"
        ] = {**item.measures, "masks": item.result.n_masks,
             "split_half_agreement": item.result.agreement}  # fmt: skip
    if fig4.clips:
        res.figures.append(save_figure(fig4.figure, layout.figure("fig4_rise")))
    else:
        log.warning("no anomalous test clip with a ground-truth mask: no Fig. 4")

    panels = []
    for model in DEMO_MODELS:
        log.info("t-SNE of %s on dev-test", model.title)
        result = project_split(
            models[model.name][0], test, config=TSNEConfig(seed=seed), device=dev,
            name=model.title, progress=progress, ckpt=scored_ckpts[model.name],
        )  # fmt: skip
        files = layout.tsne.tsne_files(model.name)
        save_result(result, files["result"])
        write_distances_csv(result, files["distances"])
        res.tsne[model.name] = files["result"]
        res.summary.setdefault("tsne_mean_nearest_normal", {})[model.name] = result.mean_distance
        panels.append(result_panel(result, model.title))
    res.figures.append(save_figure(plot_tsne_panels(panels, ncols=2), layout.figure("fig5_tsne")))

    atomic_write_text(
        layout.record("demo"),
        json.dumps(
            {"summary": res.summary, "provenance": provenance(dev)}, indent=2, default=float
        ),  # fmt: skip
    )
    return res
