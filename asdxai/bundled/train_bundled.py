"""Re-train the bundled models (``asdxai/bundled/<name>.pt``) and rewrite ``TRAINING.md``.

    python -m asdxai.bundled.train_bundled [--data ROOT] [--only NAME ...]

Each bundled model is one recipe of ``asdxai/recipes/`` trained with seed 0 on the synthetic
``small`` tree (seed 0; the default data root, generated into the user cache on first use) on
the CPU, with its k-means backend fitted on the training clips (the
:func:`asdxai.workflows.training.train_recipe` path of ``asdxai train``). It then scores each
on dev-test (study protocol) and records the command, the wall time, the machine, the
checkpoint's SHA-256 and the scores in ``TRAINING.md``. Re-run it whenever the generator or
the model defaults change.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

from asdxai._io import sha256_file
from asdxai.checkpoint import save_checkpoint
from asdxai.data.records import scan
from asdxai.recipes import Recipe
from asdxai.workflows.defaults import default_data_root
from asdxai.workflows.evaluate import ScoreSettings, score_checkpoint
from asdxai.workflows.training import train_recipe

from .._version import __version__

HERE = Path(__file__).resolve().parent

#: Bundled model name -> recipe (all seed 0): Table II's headline rows and the Fig. 4 pair.
MODELS = {
    "sc-adacos-attribute": "synthetic-small-sc-adacos-attribute",
    "compactness-none": "synthetic-small-compactness-none",
    "sc-adacos-attribute-spectrogram": "synthetic-small-sc-adacos-attribute-spectrogram",
    "compactness-none-spectrogram": "synthetic-small-compactness-none-spectrogram",
}


def train_one(name: str, data: Path, out: Path) -> dict:
    """Train bundled model ``name`` on ``data``, write it to ``out``, return its record."""

    torch.set_num_threads(1)  # the weights do not depend on the thread count this way
    recipe = Recipe.load(MODELS[name])
    t0 = time.perf_counter()
    ckpt = train_recipe(recipe, data, seed=0, device="cpu", progress=False)
    seconds = time.perf_counter() - t0
    save_checkpoint(ckpt, out)
    with tempfile.TemporaryDirectory() as scores:
        report = score_checkpoint(
            ckpt, scan(data, split="dev-test"), None, out_dir=Path(scores),
            settings=ScoreSettings(protocols=("study",), device="cpu", progress=False),
        )  # fmt: skip
    summary = report.evaluations["study"].summary
    return {
        "recipe": recipe.name, "seconds": round(seconds), "sha256": sha256_file(out),
        "bytes": out.stat().st_size,
        "auc_source": summary["hmean_auc_source"], "auc_target": summary["hmean_auc_target"],
        "pauc_source": summary["hmean_pauc_source"], "pauc_target": summary["hmean_pauc_target"],
    }  # fmt: skip


def table_row(name: str, r: dict) -> str:
    """The TRAINING.md table row of bundled model ``name`` from its record."""
    return (
        f"| `{name}.pt` | `{r['recipe']}` | {r['seconds']} | {r['bytes'] / 1e6:.2f} MB | "
        f"{r['auc_source']:.3f} | {r['auc_target']:.3f} | {r['pauc_source']:.3f} | "
        f"{r['pauc_target']:.3f} | `{r['sha256'][:16]}` |"
    )


def autoencoder_note(r: dict) -> str:
    """The TRAINING.md paragraph on the autoencoder from its record (``autoencoder.json``)."""
    c, onnx = r["config"], r["onnx"]
    text = (
        "`autoencoder.pt`, the second model family: one DCASE-task-2-baseline-style dense "
        f"autoencoder per machine type (`asdxai.detectors.autoencoder`: {c['n_mels']} log-mel "
        f"bands x {c['context']} frames in, {c['layers']} hidden layers of {c['hidden']} units "
        f"on each side of a bottleneck of {c['bottleneck']}; {r['epochs']} epochs, batch "
        f"{r['training']['batch_size']}, Adam {r['training']['lr']:g}, seed 0; no backend: the "
        "score is the mean reconstruction error), trained by "
        "`python -m asdxai.bundled.train_autoencoder` on the normal dev-train + eval-train "
        f"clips in {r['cpu_seconds']} s of CPU time on one thread (the table's wall time was "
        "measured on the shared machine) and scored by the same evaluator. Re-running the "
        "command gives the same weights (`fingerprint` in `autoencoder.json`; the file's bytes "
        "differ only in the archive's folder name, taken from a random temporary file name); "
        "`tests/slow/test_autoencoder_bundled.py` re-trains "
        "the fan model. The command also exports the fan model to "
        f"`{onnx['file']}` ({onnx['bytes'] / 1e6:.2f} MB; waveform (B, L) float32 in, (B,) "
        "scores out; metadata `sample_rate`, `name`) and checks onnxruntime against torch on "
        f"the {onnx['clips_checked']} fan dev-test clips (largest relative difference "
        f"{onnx['max_relative_difference']:.1e}). Per-section scores: `autoencoder.json`."
    )
    return textwrap.fill(text, width=96, break_on_hyphens=False) + "\n"


def write_training_md(records: dict, data: Path) -> Path:
    synth = json.loads((data / "synth.json").read_text()) if (data / "synth.json").is_file() else {}
    lines = [
        "# The bundled models",
        "",
        "Trained by `python -m asdxai.bundled.train_bundled` (asdxai "
        f"{__version__}, torch {__import__('torch').__version__}, one CPU thread, "
        f"{platform.machine()}, Python {platform.python_version()}) on the synthetic "
        f"`{synth.get('preset_name', '?')}` tree, seed {synth.get('seed', '?')}, generator "
        f"v{synth.get('generator_version', '?')} (`{data}`), dev-train + eval-train, seed 0, "
        "backend fitted (k-means, k = 16, paper variant). Dev-test scores: study protocol, "
        "harmonic means over the 21 dev sections.",
        "",
        "| model | recipe | training (s) | size | AUC source | AUC target | pAUC source | "
        "pAUC target | sha256 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [table_row(name, r) for name, r in records.items()]
    autoencoder = HERE / "autoencoder.json"  # written by asdxai.bundled.train_autoencoder
    if autoencoder.is_file():
        lines.append(table_row("autoencoder", json.loads(autoencoder.read_text())))
    lines += [
        "",
        "`sc-adacos-attribute` (dual-branch encoder) is the default checkpoint of every command;",
        "the `-spectrogram` twins are the spectrogram-only encoders the study explains with RISE",
        "(Fig. 4). `tests/slow/test_bundled.py` re-trains one and compares its scores.",
        "",
    ]
    if autoencoder.is_file():
        lines.append(autoencoder_note(json.loads(autoencoder.read_text())))
    path = HERE / "TRAINING.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None,
                   help="the synthetic small tree (default: the default data root)")  # fmt: skip
    p.add_argument("--only", nargs="+", choices=tuple(MODELS), default=None,
                   help="re-train only these models (default: all four)")  # fmt: skip
    args = p.parse_args(argv)
    data = args.data or default_data_root()
    done_path = HERE / "training.json"
    for name in args.only or MODELS:
        print(f"training {name} on {data} ...", flush=True)
        record = train_one(name, data, HERE / f"{name}.pt")
        print(json.dumps(record), flush=True)
        # read again just before writing: runs of other models (``--only``) may run beside
        records = json.loads(done_path.read_text()) if done_path.is_file() else {}
        records[name] = record
        done_path.write_text(json.dumps(records, indent=2) + "\n")
    records = json.loads(done_path.read_text())
    print(f"wrote {write_training_md({k: records[k] for k in MODELS if k in records}, data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
