"""``asdxai bench score``: k-means backend fit time and end-to-end scoring throughput.

1. **Backend fit**: ``KMeansBackend.fit`` on ``--sections`` sections (21 = one
   DCASE2022 split) of ``--source`` source + ``--target`` target unit embeddings of
   dimension 256 with sub-cluster structure. Goal (issue 5): under 5 s on 2 CPU
   cores with k = 16.
2. **Scoring throughput** (clips/s), end to end from wav files on disk: a
   temporary folder of ``--clips`` noise clips (16 kHz, ``--duration`` s) is
   scored by :func:`asdxai.inference.score_records` with a freshly initialised
   encoder (``--arch``, ``--width``; weights do not change the speed) and a
   fitted backend; also the same forward passes on waveforms already in memory,
   to separate reading from computing.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .._runtime import resolve_device
from ..checkpoint import Checkpoint
from ..data.audio import write_wav
from ..data.records import ClipRecord
from ..features import FeatureConfig
from ..inference import score_records
from ..nets import NetConfig, encoder_inputs
from ..scoring import AnomalyScorer, KMeansBackend

log = logging.getLogger(__name__)


def _structured_embeddings(
    rng: np.random.Generator, n: int, dim: int, n_modes: int = 8, noise: float = 0.6
) -> np.ndarray:
    """Unit vectors around ``n_modes`` random centres (like one section's embeddings)."""
    centres = rng.standard_normal((n_modes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, n_modes, n)] + noise * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def bench_backend_fit(
    *,
    sections: int = 21,
    n_source: int = 990,
    n_target: int = 10,
    dim: int = 256,
    k: int = 16,
    n_init: int = 5,
    seed: int = 0,
    structured: bool = True,
) -> float:
    """Seconds to fit the k-means backend on synthetic embeddings (data generation excluded)."""
    rng = np.random.default_rng(seed)
    data = {}
    for s in range(sections):
        if structured:
            src = _structured_embeddings(rng, n_source, dim)
            tgt = _structured_embeddings(rng, n_target, dim)
        else:
            src = rng.standard_normal((n_source, dim)).astype(np.float32)
            tgt = rng.standard_normal((n_target, dim)).astype(np.float32)
        data[f"machine{s // 3}_section_{s % 3:02d}"] = (src, tgt)
    KMeansBackend(k=k, seed=seed, n_init=n_init).fit({"warm_section_00": data[next(iter(data))]})
    t0 = time.perf_counter()
    KMeansBackend(k=k, seed=seed, n_init=n_init).fit(data)
    return time.perf_counter() - t0


def bench_scoring(
    *,
    n_clips: int = 64,
    duration_s: float = 10.0,
    arch: str = "dual",
    width: float = 1.0,
    batch_size: int = 32,
    device: str = "auto",
    num_workers: int = 0,
    seed: int = 0,
) -> dict[str, float]:
    """End-to-end scoring throughput from wav files, and compute-only throughput.

    Returns
    -------
    dict
        ``end_to_end_clips_per_s``, ``compute_clips_per_s``, ``device``.
    """

    dev = resolve_device(device)
    feat = FeatureConfig(duration_s=duration_s)
    net = NetConfig(arch=arch, width=width)
    ckpt = Checkpoint.untrained(feat, net, seed=seed)
    rng = np.random.default_rng(seed)
    dim = int(net.embed_dim)
    backend = KMeansBackend(k=16, seed=seed).fit(
        {
            "bench_section_00": (
                _structured_embeddings(rng, 200, dim),
                _structured_embeddings(rng, 10, dim),
            )
        }
    )
    ckpt = dataclasses.replace(ckpt, backend=backend.to_dict())
    scorer = AnomalyScorer.from_checkpoint(ckpt, device=dev)
    with tempfile.TemporaryDirectory(prefix="asdxai-bench-") as tmp:
        records = []
        for i in range(n_clips):
            name = f"section_00_source_test_normal_{i:04d}_noAttribute.wav"
            path = Path(tmp) / name
            write_wav(path, 0.1 * rng.standard_normal(feat.n_samples).astype(np.float32), 16000)
            records.append(
                ClipRecord(
                    path,
                    "unknown",
                    "dev",
                    "test",
                    "bench",
                    "00",
                    "source",
                    "normal",
                    i,
                    "noAttribute",
                )
            )
        # warm-up (kernels, allocator, file cache)
        score_records(scorer, ckpt, records[:batch_size], batch_size=batch_size, progress=False)
        _sync(dev)
        t0 = time.perf_counter()
        score_records(
            scorer, ckpt, records, batch_size=batch_size, progress=False, num_workers=num_workers
        )
        _sync(dev)
        e2e = time.perf_counter() - t0

    waves = torch.from_numpy(
        (0.1 * rng.standard_normal((batch_size, feat.n_samples))).astype(np.float32)
    ).to(dev)
    n_batches = max(1, n_clips // batch_size)
    with torch.inference_mode():
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(n_batches):
            inputs = encoder_inputs(waves, feat, arch=arch)
            scorer(inputs["spec"], "bench_section_00", inputs["spectrum"])
        _sync(dev)
        comp = time.perf_counter() - t0
    return {
        "end_to_end_clips_per_s": n_clips / e2e,
        "compute_clips_per_s": n_batches * batch_size / comp,
        "device": str(dev),
    }


def _sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
