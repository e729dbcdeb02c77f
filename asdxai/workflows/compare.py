"""Compare explanation methods on checkpoints and synthetic clips: the job behind
``asdxai compare-explainers``.

For every checkpoint and clip, :func:`compare_explainers` binds the checkpoint's black box to the
clip's section (:class:`asdxai.workflows.explain.Explainer`), computes every method's map
(:func:`asdxai.explain.attribution.compare_methods`: RISE in each mask mode and on the complex
STFT (FreqRISE-style), Captum's
Occlusion, FeatureAblation, Saliency, IntegratedGradients, GradientShap and KernelShap, a random
map and the energy map), measures it against the clip's ground truth and the black box, and
writes

* ``rows.csv``: one row per (model, clip, section, method) with every measure, rewritten
  (atomically) after every map, so an interrupted run keeps what is done and a re-run into the
  same folder with the same settings (``setup.json``) computes only the missing rows;
* ``summary.csv``, ``summary.md`` and ``summary.tex``: mean ± std over clips and models per
  method, and how far the methods' ranks by localisation and by faithfulness agree;
* ``maps.png``: the first clip of the first model, every method's map side by side.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._atomic import atomic_write_text, ensure_writable_dir
from ..constants import NORMAL_FILLS
from ..data.anomaly_masks import find_anomaly_mask, load_anomaly_mask
from ..data.components import load_components
from ..data.records import scan
from ..errors import ConfigError, ResultError
from ..explain.attribution import (
    COST,
    FAITHFULNESS,
    LOCALISATION,
    METHODS,
    MeasureSettings,
    MethodResult,
    MethodSettings,
    compare_methods,
    rank_agreement,
    stft_resynthesis,
)
from ..layout import Layout, table_files
from .defaults import bundled_checkpoint
from .explain import Explainer

#: The bundled models compared by default: the study's Fig. 4 pair (spectrogram-only encoders).
DEFAULT_MODELS = ("sc-adacos-attribute-spectrogram", "compactness-none-spectrogram")
#: Measures in the order of the tables.
MEASURES = (*LOCALISATION, *FAITHFULNESS, "stability", *COST)
#: Faithfulness measures whose agreement with the pixel AUC is reported.
AGREEMENT = ("ins_minus_del", "deletion", "band_deletion", "average_drop")
#: Column headings of the tables.
HEADINGS = {
    "pixel_auc": "pixel AUC ↑", "pointing_game": "pointing ↑",
    "deviation_auc": "deviation AUC ↑", "machine_focus": "machine focus",
    "machine_contrast": "machine contrast", "machine_correlation": "machine r",
    "machine_partial_r": "machine r beyond energy", "event_share": "event share ↓",
    "deletion": "deletion ↓",
    "insertion": "insertion ↑", "ins_minus_del": "ins − del ↑", "band_deletion": "band del. ↓",
    "average_drop": "AD ↓", "average_increase": "AI ↑", "stability": "stability ↑",
    "forward": "forward", "backward": "backward", "seconds": "seconds", "peak_mb": "peak MB",
}  # fmt: skip


def default_checkpoints() -> list[Path]:
    """The bundled models of :data:`DEFAULT_MODELS`."""
    return [bundled_checkpoint(name) for name in DEFAULT_MODELS]


def default_clips(root: str | os.PathLike, *, n: int = 6) -> list[Path]:
    """``n`` anomalous dev-test clips with a ground-truth mask: of the machine types in name
    order, the first clip of each (section, then index order), then the second of each, ..."""
    per_machine: dict[str, list[Path]] = {}
    for r in scan(root, split="dev-test"):
        if r.label == "anomaly" and find_anomaly_mask(r.path) is not None:
            per_machine.setdefault(r.machine, []).append(r.path)
    queues = [per_machine[m] for m in sorted(per_machine)]
    picked: list[Path] = []
    for i in range(max((len(q) for q in queues), default=0)):
        picked += [q[i] for q in queues if i < len(q)]
    if not picked:
        raise ConfigError(
            f"{root}: no anomalous dev-test clip with a ground-truth mask", param="data"
        )
    return picked[:n]


@dataclass
class Comparison:
    """The outcome of :func:`compare_explainers`.

    Attributes
    ----------
    rows : one dict per (model, clip, method): ``model``, ``clip``, ``section``, ``method``,
        ``family`` and every measure of :data:`MEASURES`
    agreement : one dict per (model, clip): Spearman correlation of the methods' pixel AUC
        with each faithfulness measure of :data:`AGREEMENT`
    example : the first clip of the first model: ``log_spec``, ``maps`` (method -> map),
        ``anomaly_mask``, ``title``, ``features``
    files : what was written (``rows``, ``summary_csv``, ``markdown``, ``latex``, ``figure``)
    setup : the settings of the run (budgets, seed, fill, top fraction), stated in the tables
    """

    rows: list[dict[str, Any]]
    agreement: list[dict[str, Any]]
    example: dict[str, Any] | None = None
    setup: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """The methods compared, in order."""
        return list(dict.fromkeys(r["method"] for r in self.rows))

    @property
    def models(self) -> list[str]:
        """The models compared, in order."""
        return list(dict.fromkeys(r["model"] for r in self.rows))

    def summary(
        self, *, model: str | None = None
    ) -> dict[str, dict[str, tuple[float, float, int]]]:
        """method -> measure -> (mean, sample std, count of finite values) over clips and models
        (over the clips of ``model`` only, if given)."""
        out = {}
        for method in self.methods:
            rows = [r for r in self.rows if r["method"] == method]
            rows = [r for r in rows if model is None or r["model"] == model]
            out[method] = {k: _mean_std([r[k] for r in rows]) for k in MEASURES}
        return out

    def agreement_summary(self, *, model: str | None = None) -> dict[str, tuple[float, float, int]]:
        """faithfulness measure -> (mean, std, n) of its rank agreement with the pixel AUC (over
        the clips of ``model`` only, if given)."""
        rows = [a for a in self.agreement if model is None or a["model"] == model]
        return {k: _mean_std([a[k] for a in rows]) for k in AGREEMENT}

    def markdown(self) -> str:
        """The summary as Markdown: quality table, cost table, rank agreement."""
        summ, n_models = self.summary(), len(self.models)
        n_clips = len({(r["model"], r["clip"]) for r in self.rows})
        quality = [*LOCALISATION, *FAITHFULNESS, "stability"]
        lines = [
            f"Mean ± std over {n_clips} (model, clip) pairs ({n_models} models); ↑ / ↓: higher / "
            "lower is better; stability: correlation of two seeds' maps (stochastic methods).",
            "",
            "Settings: " + ", ".join(f"{k} = {v}" for k, v in self.setup.items()),
            "",
            "| method | " + " | ".join(HEADINGS[k] for k in quality) + " |",
            "|---|" + "---|" * len(quality),
        ]
        lines += [f"| {m} | " + " | ".join(_fmt(summ[m][k]) for k in quality) + " |" for m in summ]
        lines += ["", "| method | " + " | ".join(HEADINGS[k] for k in COST) + " |",
                  "|---|" + "---|" * len(COST)]  # fmt: skip
        lines += [f"| {m} | " + " | ".join(_fmt(summ[m][k], 1) for k in COST) + " |" for m in summ]
        if n_models > 1:
            per_model = ["pixel_auc", "deviation_auc", "machine_correlation", "ins_minus_del",
                         "band_deletion", "stability"]  # fmt: skip
            for model in self.models:
                by = self.summary(model=model)
                lines += ["", f"{model} alone:", "",
                          "| method | " + " | ".join(HEADINGS[k] for k in per_model) + " |",
                          "|---|" + "---|" * len(per_model)]  # fmt: skip
                lines += [f"| {m} | " + " | ".join(_fmt(by[m][k]) for k in per_model) + " |"
                          for m in by]  # fmt: skip
                lines += ["", self._agreement_line(model)]
        lines += ["", self._agreement_line(None)]
        return "\n".join(lines) + "\n"

    def _agreement_line(self, model: str | None) -> str:
        agree = self.agreement_summary(model=model)
        return (
            f"Rank agreement of the methods{'' if model is None else f' ({model})'} (Spearman "
            "over the methods, per model and clip, mean ± std): pixel AUC against "
            + "; ".join(f"{HEADINGS[k]} {_fmt(agree[k])}" for k in AGREEMENT)
            + "."
        )

    def latex(self) -> str:
        """The quality and cost summary as one LaTeX tabular (booktabs)."""
        summ = self.summary()
        cols = [*LOCALISATION, *FAITHFULNESS, "stability", "forward", "seconds"]
        head = " & ".join(["method"] + [_tex(HEADINGS[k]) for k in cols])
        body = [
            " & ".join(
                [m] + [_fmt(summ[m][k], 1 if k in COST else 3).replace("±", r"$\pm$") for k in cols]
            )
            + r" \\"  # fmt: skip
            for m in summ
        ]
        return "\n".join([r"\begin{tabular}{l" + "r" * len(cols) + "}", r"\toprule",
                          head + r" \\", r"\midrule", *body, r"\bottomrule",
                          r"\end{tabular}"]) + "\n"  # fmt: skip

    def summary_csv(self) -> str:
        """The summary as CSV: one row per method, ``<measure>_mean``, ``_std``, ``_n``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["method"] + [f"{k}_{s}" for k in MEASURES for s in ("mean", "std", "n")])
        for m, measures in self.summary().items():
            w.writerow([m] + [v for k in MEASURES for v in measures[k]])
        return buf.getvalue()

    def rows_csv(self) -> str:
        """:attr:`rows` as CSV."""
        return rows_csv(self.rows)


#: The columns of ``rows.csv`` that name a row (the rest are :data:`MEASURES`).
ROW_KEYS = ("model", "clip", "section", "method", "family")


def rows_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of a comparison as CSV (:data:`ROW_KEYS`, then :data:`MEASURES`)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, [*ROW_KEYS, *MEASURES], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``rows.csv`` written by :func:`compare_explainers` (measures as floats)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and set(rows[0]) != {*ROW_KEYS, *MEASURES}:
        raise ResultError(f"{path}: not the rows of this version's comparison (other columns)")
    return [{**r, **{k: float(r[k]) if r[k] else math.nan for k in MEASURES}} for r in rows]


def _resume(out: Path, setup: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows already in ``out`` from a run with the same ``setup`` (refused otherwise)."""
    rows_file, setup_file = Layout(out).csv("rows"), Layout(out).record("setup")
    if not rows_file.exists():
        atomic_write_text(setup_file, json.dumps(setup, indent=2, sort_keys=True) + "\n")
        return []
    before = json.loads(setup_file.read_text()) if setup_file.exists() else {}
    now = json.loads(json.dumps(setup))
    differ = [f"{k} {before.get(k)} there, {v} now" for k, v in now.items() if before.get(k) != v]
    if differ:
        raise ResultError(
            f"{rows_file} holds rows computed with other settings ({'; '.join(differ)}); write "
            "to another folder, or delete it to start again"
        )
    return read_rows(rows_file)


def _mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return (math.nan, math.nan, 0)
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v))


def _fmt(stat: tuple[float, float, int], digits: int = 3) -> str:
    mean, std, n = stat
    if n == 0:
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if np.isfinite(std) else "")


def _tex(text: str) -> str:
    return text.replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("−", "$-$")


def compare_explainers(
    checkpoints: Sequence[str | os.PathLike],
    clips: Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike | None = None,
    methods: Sequence[str] = tuple(METHODS),
    settings: MethodSettings | None = None,
    measures: MeasureSettings | None = None,
    seed: int = 0,
    device: str = "auto",
    on_result: Callable[[str, Path, MethodResult], object] | None = None,
    progress: bool = True,
) -> Comparison:
    """Every method's map of every clip under every checkpoint, measured; tables and a figure.

    Parameters
    ----------
    checkpoints : detectors (checkpoints with a fitted backend, ``*.onnx``,
        ``module:function``; :func:`asdxai.detectors.load_detector`) or detector objects, each
        explained in its default domain as in ``asdxai rise`` (a checkpoint's spectrogram, a
        dual-branch model's whole-clip spectrum held fixed; a waveform detector's STFT, where
        ``rise-stft`` is left out and the gradient methods need a differentiable ``score``)
    clips : wav files, ideally synthetic test clips with ground truth (localisation measures are
        NaN without it)
    out : folder for ``rows.csv``, ``summary.csv``, ``summary.md``, ``summary.tex`` and
        ``maps.png`` (nothing is written when None)
    methods : keys of :data:`asdxai.explain.attribution.METHODS`; the energy map (the clip's
        log spectrogram, a map that knows nothing of the model) is added when missing: it is
        the baseline row of every table
    settings : :class:`~asdxai.explain.attribution.MethodSettings` (budgets, windows, cells)
    measures : :class:`~asdxai.explain.attribution.MeasureSettings` (stability, faithfulness;
        its ``fill`` a name here: ``"median"``, the clip's median frame, ``"zero"``, or a normal
        fill of :data:`~asdxai.constants.NORMAL_FILLS` built per clip from its section's
        normal training clips, :meth:`~asdxai.workflows.explain.Explainer.normal_fill`)
    seed : seed of the maps (``seed + 1``: the second map of the stability measure)
    device : torch device or ``"auto"``
    on_result : called with (model name, clip, :class:`MethodResult`) after every map
    progress : show one bar over all maps, with the time left

    Returns
    -------
    Comparison
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"methods must be among {', '.join(METHODS)}; got {unknown or 'none'}",
                          param="methods")  # fmt: skip
    if not checkpoints or not clips:
        raise ConfigError("at least one checkpoint and one clip are needed", param="clips")
    methods = list(dict.fromkeys(methods))  # a method named twice is computed once
    methods = [*methods, *(() if "energy" in methods else ("energy",))]
    settings = settings or MethodSettings()
    what = measures or MeasureSettings()
    setup = {**asdict(settings), "seed": seed, "fill": what.fill, "top_fraction": what.top_fraction,
             "with_stability": what.with_stability}  # fmt: skip
    out = None if out is None else ensure_writable_dir(out)
    rows = [] if out is None else _resume(out, setup)
    done = {(r["model"], r["clip"], r["method"]) for r in rows}
    explainers = {}
    for detector in checkpoints:
        explainer = Explainer(detector, device=device)
        explainers[Path(explainer.detector.name).stem] = explainer
        if what.fill in NORMAL_FILLS:  # refused before any map
            for clip in clips:
                explainer.normal_clips(clip)
    wanted = [(model, str(clip), m) for model in explainers for clip in clips for m in methods]
    bar = tqdm(total=len(wanted), initial=len(done & set(wanted)), desc="maps", unit="map",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    agreement, example = [], None
    for model, explainer in explainers.items():
        for clip in clips:
            clip = Path(clip)
            section = explainer.section_for(clip)
            todo = [m for m in methods if (model, str(clip), m) not in done]
            if todo:
                inputs, truth, results = _compare_clip(
                    explainer, clip, section, methods=todo, settings=settings, seed=seed,
                    measures=what,
                    on_method=partial(_record, rows, out, bar, model, clip, section, on_result),
                )  # fmt: skip
                bar.update(len(todo) - len(results))  # methods this detector cannot take
                if example is None and todo == list(methods):
                    example = {
                        "log_spec": inputs.log_x,
                        "maps": {r.method: r.map.importance for r in results},
                        "anomaly_mask": truth, "features": inputs.grid,
                        "title": f"{model}: {section}, {clip.name}",
                        "labels": {r.method: f"{r.method} (AUC {r.measures['pixel_auc']:.2f})"
                                   for r in results},
                    }  # fmt: skip
            clip_rows = [r for r in rows if (r["model"], r["clip"]) == (model, str(clip))
                         and r["method"] in methods]  # fmt: skip
            agreement.append(
                {"model": model, "clip": str(clip),
                 **{k: rank_agreement(clip_rows, first="pixel_auc", second=k) for k in AGREEMENT}}
            )  # fmt: skip
    bar.close()
    order = {key: i for i, key in enumerate(wanted)}
    rows = sorted((r for r in rows if (r["model"], r["clip"], r["method"]) in order),
                  key=lambda r: order[r["model"], r["clip"], r["method"]])  # fmt: skip
    comparison = Comparison(rows, agreement, example, setup=setup)
    if out is not None:
        write_comparison(comparison, out)
    return comparison


def _record(rows, out, bar, model, clip, section, on_result, r: MethodResult) -> None:
    """Keep one finished map's row: in ``rows``, in ``out/rows.csv`` (rewritten atomically)."""
    rows.append({"model": model, "clip": str(clip), "section": section, "method": r.method,
                 "family": METHODS[r.method][0], **r.measures})  # fmt: skip
    if out is not None:
        atomic_write_text(Layout(out).csv("rows"), rows_csv(rows))
    bar.update(1)
    if on_result is not None:
        on_result(model, clip, r)


def _compare_clip(explainer, clip: Path, section: str, **options) -> tuple[Any, Any, list]:
    """Every method of ``options["methods"]`` on one clip, bound to ``section``, in the
    explainer's domain: the clip's :class:`~.explain.MaskedInput`, its anomaly mask (or None)
    and the :class:`MethodResult` list (``rise-stft`` only where the detector's own STFT front
    end is known: it re-computes a checkpoint's spectrogram input from the masked STFT)."""
    wave = explainer.read(clip)
    inputs = explainer.masked_input(wave, section)
    measures = options["measures"]
    if isinstance(measures.fill, str) and measures.fill in NORMAL_FILLS:
        fill = explainer.normal_fill(clip, measures.fill, inputs.x)
        options["measures"] = replace(measures, fill=fill)
    own_stft = explainer.domain == "input" and hasattr(explainer.detector, "model_inputs")
    resynthesis = stft_resynthesis(wave, inputs.grid) if own_stft else None
    methods = [m for m in options.pop("methods") if m != "rise-stft" or resynthesis is not None]
    truth, parts = load_anomaly_mask(clip), load_components(clip)
    shape = tuple(inputs.x.shape)
    truth = truth if truth is not None and truth.shape == shape else None
    parts = parts if parts is not None and parts.level_db.shape == shape else None
    results = compare_methods(
        inputs.score, inputs.x, methods=methods, anomaly_mask=truth, components=parts,
        device=explainer.device, resynthesis=resynthesis, **options,
    )  # fmt: skip
    return inputs, truth, results


def write_comparison(comparison: Comparison, out: str | os.PathLike) -> dict[str, Path]:
    """Write the tables and the figure of ``comparison`` into ``out`` (created); returns
    (and records in ``comparison.files``) what was written."""
    layout = Layout(ensure_writable_dir(out))
    csv_file, md_file, tex_file = table_files(layout.table("summary"))
    files = {
        "rows": atomic_write_text(layout.csv("rows"), comparison.rows_csv()),
        "summary_csv": atomic_write_text(csv_file, comparison.summary_csv()),
        "markdown": atomic_write_text(md_file, comparison.markdown()),
        "latex": atomic_write_text(tex_file, comparison.latex()),
    }
    ex = comparison.example
    if ex is not None:
        # plots (matplotlib, ~2/5 of torch's import, measured) load only when a figure is asked
        from ..plots.compare import plot_method_maps
        from ..plots.tsne import save_figure

        fig = plot_method_maps(
            ex["log_spec"], ex["maps"], anomaly_mask=ex["anomaly_mask"], cfg=ex["features"],
            labels=ex["labels"], title=ex["title"],
        )  # fmt: skip
        files["figure"] = save_figure(fig, layout.figure("maps"), dpi=100)
    comparison.files = files
    return files
