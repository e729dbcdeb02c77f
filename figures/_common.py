"""Shared pieces of the figure scripts: options, the work folder, cached training and results.

Every script takes the same options (:func:`parser`) and builds a :class:`Study` from them.
The study owns a *work folder* (``--work``, default ``<out>/_work``) where it keeps

* the synthetic data tree when no ``--data`` is given (``data/synthetic-<preset>-seed0``);
* trained checkpoints, one per (recipe, settings, seed, data): ``models/<recipe>-<key>/seed<S>.pt``
  with the settings in ``key.json`` beside them;
* scores (``scores/<recipe>-<key>/seed<S>/``), t-SNE results (``tsne/...``) and RISE maps
  (``rise/...``), each keyed the same way.

A second script (or a second run) that needs the same model or result loads it instead of
recomputing; ``make_all.py`` runs every script on one work folder. Delete the folder (or a
sub-folder) to recompute.
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # headless

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from asdxai.layout import Layout  # noqa: E402

log = logging.getLogger("figures")

#: The eight DCASE2022 rows of Table II plus the two spectrogram-only models of Fig. 4.
SYNTHETIC_PREFIX = "synthetic-small-"

#: ``--quick`` settings: the ``mini`` tree, fewer epochs, fewer trials (documented in README).
QUICK = {"preset": "mini", "epochs": 3, "trials": 1, "loss_trials": 2}
FULL = {"preset": "small", "epochs": None, "trials": 5, "loss_trials": 5}  # None = the recipe's


def parser(description: str, trials: str = "trials") -> argparse.ArgumentParser:
    """The options every figure script takes.

    ``trials`` names the quick/full default used for ``--trials``: ``"trials"`` (tables,
    t-SNE: 5 / 1 with --quick) or ``"loss_trials"`` (loss curves: 5 / 2).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="DCASE-layout dataset root (default: $ASDXAI_DATA, else the synthetic 'small' tree "
        "in the user cache that every asdxai command uses; with --quick a 'mini' tree generated "
        "into the work folder)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("figures/output"), help="output folder "
        "(default: figures/output)"
    )  # fmt: skip
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="work folder with cached data, checkpoints and results (default: <out>/_work)",
    )
    p.add_argument(
        "--device", default="auto", help="torch device: auto, cpu, cuda, cuda:N (default: auto)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"CPU-sized run: 'mini' tree, {QUICK['epochs']} epochs, {QUICK['trials']} trial "
        f"per table row, {QUICK['loss_trials']} per loss curve, fewer RISE masks",
    )
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help=f"trials (seeds S..S+N-1) (default: {FULL[trials]}, {QUICK[trials]} with --quick)",
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="override the recipes' epochs (default: 10)"
    )
    p.add_argument(
        "--width", type=float, default=None, help="override the recipes' width (default: 0.25)"
    )
    p.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide progress bars"
    )
    p.set_defaults(_trials_key=trials)
    return p


def _json_hash(obj: Any, n: int = 10) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class Study:
    """Settings of one figure run plus the cached building blocks (data, models, results)."""

    def __init__(self, args: argparse.Namespace):
        import torch

        from asdxai._runtime import resolve_device

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        for noisy in ("matplotlib", "PIL", "openTSNE", "numba"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.args = args
        self.quick = bool(args.quick)
        mode = QUICK if self.quick else FULL
        self.layout = Layout(args.out)  # the figures, tables and their JSON records
        self.out = self.layout.root
        self.out.mkdir(parents=True, exist_ok=True)
        self.cache = Layout(args.work) if args.work else self.layout.work  # data, models, results
        self.work = self.cache.root
        self.work.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(args.device)
        if self.device.type == "cpu":
            torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
        self.seed = int(args.seed)
        self.trials = int(args.trials or mode[args._trials_key])
        self.epochs = args.epochs or mode["epochs"]
        self.width = args.width
        self.progress = bool(args.progress)
        self.data = Path(args.data) if args.data else self._default_data(mode["preset"])
        self._records: dict[str, list] = {}
        self._ckpts: dict[Path, Any] = {}
        self.t0 = time.perf_counter()

    # ------------------------------------------------------------------ data
    def _default_data(self, preset: str) -> Path:
        """The default data root of every command (``$ASDXAI_DATA``, else the synthetic
        ``small`` tree in the user cache); with ``--quick`` a ``mini`` tree in the work folder."""
        from asdxai.workflows.defaults import DEFAULT_PRESET, default_data_root, ensure_synthetic

        if preset == DEFAULT_PRESET:
            return default_data_root()
        return ensure_synthetic(self.cache.synthetic(preset, 0), preset=preset, seed=0)

    def synth_settings(self) -> dict | None:
        """The synthetic tree's ``synth.json`` (None for data that is not a synthetic tree)."""
        meta = self.data / "synth.json"
        return json.loads(meta.read_text()) if meta.is_file() else None

    def data_id(self) -> dict:
        """What identifies the data in cache keys (the synthetic tree's settings, or its path)."""
        ident: dict[str, Any] = {"root": str(self.data.resolve())}
        if (synth := self.synth_settings()) is not None:
            ident["synth"] = _json_hash(synth, 16)
        return ident

    def records(self, split: str) -> list:
        """Clip records of a split (cached); an absent split gives an empty list."""
        from asdxai.data.records import scan
        from asdxai.errors import DataError

        if split not in self._records:
            try:
                self._records[split] = scan(self.data, split=split)
            except DataError as exc:
                log.warning("%s: %s", split, exc)
                self._records[split] = []
        return self._records[split]

    def train_records(self, splits: list[str]) -> list:
        out = []
        for s in splits:
            out += self.records(s)
        return out

    # ------------------------------------------------------------------ models
    def recipe(self, name: str, **overrides: Any):
        """The recipe with ``--epochs``, ``--width`` and ``overrides`` applied."""
        from asdxai.recipes import Recipe

        return Recipe.load(name).with_overrides(epochs=self.epochs, width=self.width, **overrides)

    def settings(self, recipe: str, **overrides: Any) -> dict:
        """The settings that identify a trained model (the recipe's, without trials / seed)."""
        s = dict(self.recipe(recipe, **overrides).settings)
        s.pop("trials", None)
        s.pop("seed", None)
        return s

    def key(self, recipe: str, **overrides: Any) -> str:
        """Folder name of a (recipe, settings, data) combination in the work folder."""
        return f"{recipe}-{_json_hash([self.settings(recipe, **overrides), self.data_id()])}"

    def map_folder(self, recipe: str, seed: int, n_masks: int, agreement: float,
                   condition: str = "") -> Path:  # fmt: skip
        """Cache folder of one model's RISE maps (each map at ``output_stem`` below it);
        ``condition`` names a non-default masking."""
        name = f"seed{seed}-n{n_masks}-a{agreement}" + (f"-{condition}" if condition else "")
        return self.cache.maps.model(self.key(recipe), name).root

    def checkpoint(
        self, recipe: str, seed: int, backend: bool = True, **overrides: Any
    ) -> tuple[Path, Any]:
        """Train (or load the cached) checkpoint of ``recipe`` with ``seed``; fit its backend."""
        from asdxai.checkpoint import load_checkpoint, save_checkpoint
        from asdxai.workflows.evaluate import fit_backend
        from asdxai.workflows.training import train_recipe

        r = self.recipe(recipe, **overrides)
        models = self.cache.models.model(self.key(recipe, **overrides))
        folder, path = models.root, models.checkpoint(f"seed{seed}")
        splits = list(r.splits)
        ckpt = self._ckpts.get(path)
        if ckpt is None and path.is_file():
            ckpt = load_checkpoint(path)
            log.info("reusing %s", path)
        if ckpt is None and (bundled := self.bundled(recipe, seed, **overrides)) is not None:
            ckpt = load_checkpoint(bundled)
            log.info("using the bundled model %s (same recipe, seed and data)", bundled)
            folder.mkdir(parents=True, exist_ok=True)
            save_checkpoint(ckpt, path)
        if ckpt is None:
            folder.mkdir(parents=True, exist_ok=True)
            info = {"recipe": recipe, "settings": self.settings(recipe, **overrides),
                    "data": self.data_id()}  # fmt: skip
            models.record("key").write_text(json.dumps(info, indent=2, default=list))
            t = time.perf_counter()
            log.info("training %s (seed %d)", recipe, seed)
            ckpt = train_recipe(
                r, self.data, seed=seed, device=self.device, fit_backend=backend,
                progress=self.progress, records=self.train_records(splits),
            )  # fmt: skip
            log.info("trained %s seed %d in %.0f s", recipe, seed, time.perf_counter() - t)
            save_checkpoint(ckpt, path)
        if backend and ckpt.backend is None:
            ckpt = fit_backend(
                ckpt, self.train_records(splits), device=self.device, seed=seed,
                progress=self.progress, variant=r.backend,
            )  # fmt: skip
            save_checkpoint(ckpt, path)
        self._ckpts[path] = ckpt
        return path, ckpt

    def bundled(self, recipe: str, seed: int, **overrides: Any) -> Path | None:
        """The bundled model that *is* this training run, if one is: the same recipe and
        settings (checked against the checkpoint's stored configs), seed 0, on the synthetic
        ``small`` tree of seed 0. Training it again would give the same weights."""
        from asdxai.bundled.train_bundled import MODELS
        from asdxai.checkpoint import load_checkpoint
        from asdxai.errors import ConfigError
        from asdxai.workflows.defaults import bundled_checkpoint

        synth = self.synth_settings()
        names = [n for n, r in MODELS.items() if r == recipe]
        if seed != 0 or overrides or self.epochs or self.width or not names or synth is None:
            return None
        if synth.get("preset_name") != "small" or synth.get("seed") != 0:
            return None
        try:
            path = bundled_checkpoint(names[0])
        except ConfigError:  # not bundled in this checkout
            return None
        from asdxai.nets import NetConfig
        from asdxai.train import TrainConfig

        ckpt, r = load_checkpoint(path), self.recipe(recipe)
        stored = TrainConfig.from_dict({**ckpt.train_config, "num_workers": 0})
        same = stored == r.train_config(seed=0)
        return path if same and NetConfig.from_dict(ckpt.net_config) == r.net_config() else None

    # ------------------------------------------------------------------ results
    def scores(self, recipe: str, seed: int, split: str = "dev-test", **overrides: Any) -> dict:
        """``{protocol: summary}`` of one trained model on ``split`` (cached JSON)."""
        from asdxai.workflows.evaluate import ScoreSettings, score_checkpoint, train_split_for

        scores = self.cache.scores.model(self.key(recipe, **overrides), f"{split}-seed{seed}")
        folder, cache = scores.root, scores.record("summary")
        if cache.is_file():
            return json.loads(cache.read_text())
        _, ckpt = self.checkpoint(recipe, seed, **overrides)
        res = score_checkpoint(
            ckpt, self.records(split), self.records(train_split_for(split)), out_dir=folder,
            settings=ScoreSettings(device=self.device, progress=self.progress),
        )  # fmt: skip
        summary = {p: ev.summary for p, ev in res.evaluations.items()}
        cache.write_text(json.dumps(summary, indent=2))
        return summary

    def tsne(self, recipe: str, seed: int, split: str = "dev-test", **overrides: Any):
        """The t-SNE result (projection + nearest-normal distances) of one model (cached .h5)."""
        from asdxai.embed import TSNEConfig, load_result, save_result
        from asdxai.workflows.embedding import project_split

        folder = self.cache.tsne.model(self.key(recipe, **overrides))
        path = folder.tsne_result(f"{split}-seed{seed}")
        if path.is_file():
            return load_result(path)
        ckpt_path, ckpt = self.checkpoint(recipe, seed, backend=False, **overrides)
        result = project_split(
            ckpt_path, self.records(split), config=TSNEConfig(seed=seed), device=self.device,
            name=recipe, progress=self.progress, ckpt=ckpt,
        )  # fmt: skip
        save_result(result, path)
        return result

    # ------------------------------------------------------------------ outputs
    def save(self, fig: Any, stem: str) -> list[Path]:
        """Write ``<out>/<stem>.png`` and ``.pdf``; return both paths."""
        from asdxai.plots.tsne import save_figure

        paths = [save_figure(fig, self.layout.figure(stem, suffix=ext)) for ext in (".png", ".pdf")]
        log.info("wrote %s", ", ".join(str(p) for p in paths))
        return paths

    def write_json(self, stem: str, obj: Any) -> Path:
        """``obj`` plus the run's settings and provenance as ``<out>/<stem>.json``."""
        from asdxai._atomic import atomic_write_text
        from asdxai._runtime import provenance

        info = {
            **obj,
            "data": str(self.data),
            "quick": self.quick,
            "trials": self.trials,
            "seed": self.seed,
            "epochs_override": self.epochs,
            "width_override": self.width,
            "elapsed_s": round(time.perf_counter() - self.t0, 1),
            "provenance": provenance(self.device),
        }
        text = json.dumps(info, indent=2, default=str) + "\n"
        return atomic_write_text(self.layout.record(stem), text)

    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.trials))


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as a CSV file, the header from the keys in first-seen order (values quoted by
    the csv module: model titles contain commas)."""
    import csv

    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def synthetic_recipes() -> list[str]:
    """Every ``synthetic-small-*`` recipe (the Table II rows on synthetic data)."""
    from asdxai.recipes import list_recipes

    return [name for name in list_recipes() if name.startswith(SYNTHETIC_PREFIX)]


def short(recipe: str) -> str:
    return recipe.removeprefix(SYNTHETIC_PREFIX)


def loss_figure(argv: list[str] | None, stem: str, recipe: str, title: str, **overrides: Any):
    """Fig. 2 / Fig. 3: per-epoch losses of several trials of one model (mean ± 1 std band)."""
    import numpy as np

    from asdxai.plots.losses import plot_loss_history

    p = parser(f"{stem}: {title}; per-epoch losses, mean ± std over trials", "loss_trials")
    study = Study(p.parse_args(argv))
    histories = []
    for seed in study.seeds():
        _, ckpt = study.checkpoint(recipe, seed, backend=False, **overrides)
        histories.append(ckpt.history["all"])
    fig = plot_loss_history(histories)
    from matplotlib.ticker import MaxNLocator

    fig.axes[0].set_title(f"{title} ({len(histories)} trial{'s' * (len(histories) > 1)})")
    fig.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    paths = study.save(fig, stem)
    lines = ["epoch,curve,mean,std,n_trials"]
    curves = {}
    for key in ("angular", "ic_compactness", "inter_compactness"):
        data = np.array([h[key] for h in histories], dtype=float)
        curves[key] = {"mean": np.nanmean(data, 0).tolist(), "std": np.nanstd(data, 0).tolist()}
        for e in range(data.shape[1]):
            lines.append(f"{e + 1},{key},{curves[key]['mean'][e]:.6g},{curves[key]['std'][e]:.6g},"
                         f"{len(histories)}")  # fmt: skip
    study.layout.csv(stem).write_text("\n".join(lines) + "\n")
    study.write_json(stem, {"recipe": recipe, "overrides": overrides, "curves": curves,
                                      "settings": study.settings(recipe, **overrides)})  # fmt: skip
    return paths


#: The six models of Fig. 5 / Table III: (recipe, panel title).
TSNE_MODELS = (
    ("synthetic-small-compactness-none", "compactness, no classes"),
    ("synthetic-small-compactness-machine", "compactness, machine types"),
    ("synthetic-small-compactness-section", "compactness, machine types + sections"),
    ("synthetic-small-compactness-per-section", "compactness, one model per section"),
    ("synthetic-small-compactness-attribute", "compactness, attribute classes"),
    ("synthetic-small-sc-adacos-attribute", "SC-AdaCos, attribute classes"),
)
