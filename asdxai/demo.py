"""The end-to-end demo: synthetic data -> two models -> scores -> RISE maps -> t-SNE views.

``run_demo`` reproduces the study's contrast at demo scale on the embedded synthetic
``mini`` tree: a one-class model (IC compactness loss, no auxiliary classes) against a
sub-cluster AdaCos model trained to tell machine types, sections and attributes apart.
Both use the spectrogram-only encoder (the one the study explains with RISE) at a
reduced width so the whole run fits in a few minutes on two CPU cores.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._atomic import atomic_write_text, ensure_writable_dir
from ._runtime import provenance, resolve_device

if TYPE_CHECKING:
    from .data.synth import PresetConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoModel:
    """One model of the demo."""

    name: str  # file stem and table row label
    title: str  # figure label
    loss: str
    task: str
    mixup: bool


DEMO_MODELS = (
    DemoModel("compactness-none", "IC compactness, 1 class", "compactness", "none", False),
    DemoModel(
        "sc-adacos-attribute", "SC-AdaCos, attribute classes", "sc-adacos", "attribute", True
    ),
)


@dataclass
class DemoOutputs:
    """Where the demo put things, and its headline numbers."""

    out: Path
    data: Path
    checkpoints: dict[str, Path] = field(default_factory=dict)
    scores: dict[str, Path] = field(default_factory=dict)
    rise_maps: dict[str, Path] = field(default_factory=dict)
    tsne: dict[str, Path] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    table: str = ""
    summary: dict = field(default_factory=dict)


def _pick_clip(records: list, scores: np.ndarray):
    """The anomalous test clip with a ground-truth mask that the scores rank highest."""
    from .data.anomaly_masks import find_anomaly_mask

    anomalous = [i for i, r in enumerate(records) if r.label == "anomaly"]
    anomalous = [i for i in anomalous if find_anomaly_mask(records[i].path) is not None]
    best = max(anomalous, key=lambda i: scores[i])
    return records[best]


def run_demo(
    out: str | Path = "asdxai-demo",
    device: str = "auto",
    seed: int = 0,
    epochs: int = 10,
    width: float = 0.25,
    n_masks: int = 8000,
    progress: bool = True,
    preset: str | PresetConfig = "mini",
) -> DemoOutputs:
    """Run the whole demo and return where its outputs went.

    Parameters
    ----------
    out : output folder (the synthetic tree goes to ``out/data`` unless already there)
    device : torch device ("auto" = CUDA if available)
    seed : seed of the data, the training runs, RISE and t-SNE
    epochs : training epochs per model
    width : encoder width multiplier (1.0 = the study's channel counts)
    n_masks : RISE masks per importance map
    progress : tqdm progress bars
    preset : synthetic preset name or PresetConfig to generate ("mini": ~1 min on 2 CPU
        cores, too small for the study's ordering to show reliably; "small": ~5 min, shows it)
    """
    from . import metrics
    from .checkpoint import save_checkpoint
    from .data.anomaly_masks import load_anomaly_mask
    from .data.audio import read_clip
    from .data.records import scan
    from .data.synth import generate
    from .embed import TSNEConfig, records_meta, run_tsne, save_result, write_distances_csv
    from .evaluation import score_checkpoint
    from .explain import RISE
    from .explain.faithfulness import localisation
    from .explain.result import save_result as save_rise
    from .features import log_spectrogram, spectrogram
    from .inference import embed_records
    from .nets import NetConfig
    from .plots.rise import plot_importance_grid
    from .plots.tsne import plot_tsne_panels, save_figure
    from .scoring import AnomalyScorer, fit_backend
    from .train import TrainConfig, infer_feature_config, train_model

    dev = resolve_device(device)
    out = ensure_writable_dir(out)
    data = out / "data"
    res = DemoOutputs(out=out, data=data)
    if not (data / "synth.json").exists():
        log.info("[1/5] generating the synthetic %r tree in %s", preset, data)
        generate(data, preset=preset, seed=seed, progress=progress)
    else:
        log.info("[1/5] reusing the synthetic tree in %s", data)
    train_records = scan(data, "dev-train")
    test_records = scan(data, "dev-test")
    feat_cfg = infer_feature_config(train_records)
    net_cfg = NetConfig(arch="spectrogram", width=width)

    rows = []
    checkpoints = {}
    test_scores = {}
    for model in DEMO_MODELS:
        path = out / "models" / f"{model.name}.pt"
        log.info("[2/5] training %s -> %s", model.title, path)
        train_cfg = TrainConfig(
            loss=model.loss, task=model.task, epochs=epochs, mixup=model.mixup, seed=seed
        )
        ckpt = train_model(train_records, feat_cfg, net_cfg, train_cfg, dev, progress=progress)
        ckpt = fit_backend(ckpt, train_records, dev, k=16, seed=seed, progress=progress)
        save_checkpoint(ckpt, path)
        checkpoints[model.name] = ckpt
        res.checkpoints[model.name] = path

        log.info("[3/5] scoring %s on dev-test", model.title)
        score_dir = out / "scores" / model.name
        scored = score_checkpoint(
            ckpt, test_records, train_records, score_dir, protocols=("study",),
            device=str(dev), progress=progress,
        )  # fmt: skip
        res.scores[model.name] = score_dir
        test_scores[model.name] = scored["scores"]
        rows.append(metrics.performance_row(model.title, scored["evaluations"]["study"].summary))
    res.table = metrics.format_terminal(rows)
    metrics.write_tables(rows, out / "performance")

    # RISE on the clip the attribute model finds most anomalous (a planted anomaly).
    clip = _pick_clip(test_records, test_scores[DEMO_MODELS[1].name])
    truth = load_anomaly_mask(clip.path)

    wave = torch.from_numpy(read_clip(clip.path, feat_cfg))
    spec = spectrogram(wave, feat_cfg)
    spec_log = log_spectrogram(spec).numpy()
    maps = {}
    for model in DEMO_MODELS:
        log.info("[4/5] RISE map of %s for %s (%d masks)", clip.name, model.title, n_masks)
        scorer = AnomalyScorer.from_checkpoint(checkpoints[model.name], dev)
        result = RISE(scorer.bind(clip.section_key)).attribute(
            spec,
            n_masks=n_masks,
            seed=seed,
            device=dev,
            estimator="centered",
            progress=progress,
        )
        loc = localisation(result.importance, truth) if truth is not None else {}
        result.meta.update(
            clip=str(clip.path),
            section=clip.section_key,
            checkpoint=str(res.checkpoints[model.name]),
            localisation=loc,
        )
        path = out / "rise" / f"{model.name}.h5"
        save_rise(path, result, log_spectrogram=spec_log, provenance=provenance(dev))
        res.rise_maps[model.name] = path
        maps[model.title] = result.importance
        res.summary.setdefault("rise_pixel_auc", {})[model.name] = loc.get("pixel_auc")
    fig = plot_importance_grid([(clip.name, spec_log, maps)], feat_cfg)
    res.figures.append(save_figure(fig, out / "fig4_rise.png"))

    panels = []
    for model in DEMO_MODELS:
        log.info("[5/5] t-SNE of %s on dev-test", model.title)
        emb = embed_records(checkpoints[model.name], test_records, dev, progress=progress)
        result = run_tsne(emb, records_meta(test_records), TSNEConfig(seed=seed), name=model.title)
        base = out / "tsne" / model.name
        save_result(result, base.with_suffix(".h5"))
        write_distances_csv(result, base.parent / f"{model.name}_distances.csv")
        res.tsne[model.name] = base.with_suffix(".h5")
        res.summary.setdefault("tsne_mean_nearest_normal", {})[model.name] = result.mean_distance
        panels.append((result.projection, result.is_anomaly, model.title))
    res.figures.append(save_figure(plot_tsne_panels(panels, ncols=2), out / "fig5_tsne.png"))

    atomic_write_text(
        out / "demo.json",
        json.dumps({"summary": res.summary, "provenance": provenance(dev)}, indent=2),
    )
    return res
