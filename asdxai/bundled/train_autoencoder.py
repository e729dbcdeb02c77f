"""Train the bundled autoencoder (``asdxai/bundled/autoencoder.pt``), export it, score it.

    python -m asdxai.bundled.train_autoencoder [--data ROOT]

Trains one DCASE-baseline-style autoencoder per machine type
(:mod:`asdxai.detectors.autoencoder`, default ``AutoencoderConfig``, :data:`EPOCHS` epochs,
seed 0) on one CPU thread on the normal clips of dev-train + eval-train of the synthetic
``small`` tree (default: the default data root), and writes ``autoencoder.pt``. Exports the fan
model to ``autoencoder-fan.onnx`` and checks that onnxruntime scores the fan dev-test clips as
torch does (to 1e-5, relative for scores above 1). Scores dev-test with the evaluator of the
embedding models (:func:`asdxai.metrics.evaluate`, study protocol) and records the command,
the wall and CPU time of training, the SHA-256 and the scores in ``autoencoder.json`` and in
its row of ``TRAINING.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from asdxai._io import sha256_file
from asdxai.bundled.train_bundled import autoencoder_note, table_row
from asdxai.data.audio import clip_duration, read_clip
from asdxai.data.dataset import clip_loader
from asdxai.data.records import scan
from asdxai.detectors.autoencoder import load_autoencoder, train_autoencoder
from asdxai.features import FeatureConfig
from asdxai.metrics import evaluate
from asdxai.workflows.defaults import default_data_root

HERE = Path(__file__).resolve().parent
#: Passes over the training vectors of every machine type (about 5 minutes on one thread).
EPOCHS = 20
#: Largest |onnxruntime - torch| / max(1, |torch|) accepted for a score.
ONNX_TOLERANCE = 1e-5


def score_split(detector, records: list, *, batch_size: int = 32) -> np.ndarray:
    """Anomaly scores (N,) of ``records``, each clip scored by its section's model."""

    cfg = FeatureConfig(sample_rate=detector.sample_rate, duration_s=clip_duration(records[0].path))
    scores = np.full(len(records), np.nan, dtype=np.float64)
    by_section: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_section.setdefault(r.section_key, []).append(i)
    for section, idx in by_section.items():
        for wave, pos in clip_loader([records[i] for i in idx], cfg, batch_size):
            with torch.no_grad():
                scores[np.asarray(idx)[pos.numpy()]] = detector.score(wave, section).numpy()
    return scores


def check_onnx(path: Path, detector, records: list, torch_scores: np.ndarray) -> float:
    """Score ``records`` with onnxruntime from ``path``; return the largest relative difference
    to ``torch_scores``; raise AssertionError above :data:`ONNX_TOLERANCE`."""
    # onnxruntime is the optional extra asdxai[onnx]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert int(meta["sample_rate"]) == detector.sample_rate, meta
    cfg = FeatureConfig(sample_rate=detector.sample_rate, duration_s=clip_duration(records[0].path))
    waves = np.stack([read_clip(r.path, cfg) for r in records])
    got = np.concatenate(
        [session.run(None, {"waves": waves[i : i + 32]})[0] for i in range(0, len(waves), 32)]
    )
    diff = float(np.max(np.abs(got - torch_scores) / np.maximum(1.0, np.abs(torch_scores))))
    assert diff <= ONNX_TOLERANCE, f"onnxruntime differs from torch by {diff:.2e}"
    return diff


def update_training_md(record: dict) -> Path:
    """Put the autoencoder's row into TRAINING.md's table and its paragraph at the end
    (replacing older ones); the rest of the file is kept as it is."""
    path = HERE / "TRAINING.md"
    note = autoencoder_note(record)
    text = path.read_text()
    start = text.find(note[:40])
    if start >= 0:  # drop the old paragraph (up to the next blank line)
        end = text.find("\n\n", start)
        text = text[:start] + (text[end + 2 :] if end >= 0 else "")
    lines = text.rstrip("\n").splitlines()
    row = table_row("autoencoder", record)
    old = [i for i, ln in enumerate(lines) if ln.startswith("| `autoencoder.pt` |")]
    if old:
        lines[old[0]] = row
    else:
        last = max(i for i, ln in enumerate(lines) if ln.startswith("| `"))
        lines.insert(last + 1, row)
    path.write_text("\n".join(lines) + "\n\n" + note)
    return path


def main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None,
                   help="the synthetic small tree (default: the default data root)")  # fmt: skip
    args = p.parse_args(argv)
    data = args.data or default_data_root()
    torch.set_num_threads(1)  # the weights do not depend on the thread count this way
    train = scan(data, split="dev-train") + scan(data, split="eval-train")
    print(f"training the autoencoder on {len(train)} clips of {data} ...", flush=True)
    t0, cpu0 = time.perf_counter(), time.process_time()
    detector = train_autoencoder(train, epochs=EPOCHS, seed=0, device="cpu")
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    out = detector.save(HERE / "autoencoder.pt")
    detector = load_autoencoder(out)  # score what was written
    onnx_path = detector.export_onnx(HERE / "autoencoder-fan.onnx", machine="fan")

    test = scan(data, split="dev-test")
    scores = score_split(detector, test)
    fan = [i for i, r in enumerate(test) if r.machine == "fan"]
    onnx_diff = check_onnx(onnx_path, detector, [test[i] for i in fan], scores[fan])
    evaluation = evaluate(test, scores, protocol="study")
    summary = evaluation.summary
    record = {
        "recipe": "asdxai.bundled.train_autoencoder", "seconds": round(seconds),
        "cpu_seconds": round(cpu_seconds),
        "sha256": sha256_file(out), "bytes": out.stat().st_size,
        "fingerprint": detector.fingerprint,
        "epochs": EPOCHS, "config": detector.config.to_dict(), "training": detector.training,
        "final_loss": {m: h[-1] for m, h in detector.history.items()},
        "onnx": {"file": onnx_path.name, "bytes": onnx_path.stat().st_size,
                 "sha256": sha256_file(onnx_path), "clips_checked": len(fan),
                 "max_relative_difference": onnx_diff},
        "auc_source": summary["hmean_auc_source"], "auc_target": summary["hmean_auc_target"],
        "pauc_source": summary["hmean_pauc_source"], "pauc_target": summary["hmean_pauc_target"],
        "sections": {row["section"]: {k: row[k] for k in evaluation.columns}
                     for row in evaluation.rows},
    }  # fmt: skip
    (HERE / "autoencoder.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "sections"}), flush=True)
    print(f"wrote {out}, {onnx_path}, {update_training_md(record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
