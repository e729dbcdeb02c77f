"""``asdxai bench rise``: masks/s of RISE against the bare forward pass and a naive reference.

One run, one scorer, one batch size, three measurements:

(a) **bare**: the score function on one fixed, pre-built batch of masked inputs,
    repeated — the ceiling (no mask generation, no accumulation);
(b) **asdxai**: :meth:`asdxai.explain.RISE.attribute` (masks built on the device from
    block-seeded cell grids, one matrix product per batch for the sums);
(c) **naive**: in the style of the original RISE code — full T x F masks built on
    the host (numpy, one mask at a time, linear interpolation and crop per axis) in
    chunks of one batch, copied to the device, map by ``tensordot``.

Printed: masks/s of each, the ratios (b)/(a) (goal ≥ 0.95) and (b)/(c), and the
projected time of 640,000 masks at the (b) rate; one measurement per ``--estimator``,
and with ``--out`` a results file. The malloc line says whether glibc's thresholds were
raised (:mod:`asdxai._allocator`, every command's default) or left at glibc's default
(``--default-malloc``). The score function is the
study's spectrogram-only encoder (``asdxai.nets``, random weights, ``--width``)
followed by the anomaly score 1 − max cosine similarity to 26 unit references
(16 k-means means + 10 target clips), exactly the work of ``AnomalyScorer``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .._atomic import atomic_path
from .._io import json_default
from .._runtime import resolve_device
from ..constants import STUDY_MASKS
from ..explain import RISE, RISEExecution, RISEMaskConfig
from ..explain.masks import generate_masks
from ..explain.rise import CPU_BATCH_SIZE, DTYPES, PILOT_MASKS
from ..features import FeatureConfig
from ..nets import NetConfig, build_encoder

log = logging.getLogger(__name__)


def make_scorer(
    shape: tuple[int, int], *, width: float, device: torch.device, seed: int = 0
) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """A (B, T, F) -> (B,) scorer: the spectrogram encoder + cosine-distance backend."""
    torch.manual_seed(seed)

    t, f = shape
    # a FeatureConfig whose geometry is (t, f): n_fft = 2 (f - 1), hop chosen to give t frames
    n_fft = 2 * (f - 1)
    hop = 512 if n_fft == 1024 else n_fft // 2
    duration = (n_fft + (t - 1) * hop) / 16_000
    feat = FeatureConfig(duration_s=duration, n_fft=n_fft, hop_length=hop)
    enc = build_encoder(NetConfig(arch="spectrogram", width=width), feat).to(device).eval()
    name = f"asdxai.nets spectrogram encoder (width {width:g})"
    refs = torch.nn.functional.normalize(torch.randn(26, 128, device=device), dim=1)

    def score(x: torch.Tensor) -> torch.Tensor:
        e = torch.nn.functional.normalize(enc(x).float(), dim=1)
        return 1.0 - (e @ refs[:, : e.shape[1]].T).amax(1)

    return score, name


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _naive_masks(rng: np.random.Generator, n: int, shape: tuple[int, int], cfg) -> np.ndarray:
    """Full (n, T, F) float32 masks on the host, one at a time (original-RISE style)."""
    t, f = shape
    out = np.empty((n, t, f), dtype=np.float32)
    axes = []
    for cells, size in ((cfg.time_cells, t), (cfg.freq_cells, f)):
        cs = -(-size // cells)
        up = (cells + 1) * cs
        x_up = (np.arange(up) + 0.5) * cells / up - 0.5  # half-pixel centres
        axes.append((cells, size, cs, x_up))
    for i in range(n):
        vecs = []
        for cells, size, cs, x_up in axes:
            grid = (rng.random(cells) < cfg.p_keep).astype(np.float32)
            upv = np.interp(x_up, np.arange(cells), grid)
            s = rng.integers(0, cs)
            vecs.append(upv[s : s + size])
        out[i] = np.outer(vecs[0], vecs[1])
    return out


def benchmark(
    *,
    shape: tuple[int, int] = (311, 513),
    width: float = 1.0,
    batch_size: int | None = None,
    n_batches: int = 4,
    device: str = "auto",
    precision: str = "fp32",
    compile: bool = False,
    naive: bool = True,
    repeats: int = 3,
    estimator: str = "plain",
    sampling: str = "iid",
) -> dict:
    """Run (a), (b), (c); returns a dict of rates (masks/s) and settings.

    The batch size defaults to RISE's own default on the device (100 on CPU); (b) uses
    ``estimator`` and mask ``sampling`` ("centered" also spends its pilot block, counted).
    """
    dev = resolve_device(device)
    score, name = make_scorer(shape, width=width, device=dev)
    if compile:
        score = torch.compile(score)
    bs = batch_size or (CPU_BATCH_SIZE if dev.type == "cpu" else 1024)
    cfg = RISEMaskConfig(block_size=bs, sampling=sampling)
    pilot = min(PILOT_MASKS, bs) if estimator == "centered" else 0
    spec = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(dev)
    dtype = DTYPES[precision]

    def fwd(x: torch.Tensor) -> torch.Tensor:
        if dtype is None:
            return score(x)
        with torch.autocast(dev.type, dtype=dtype):
            return score(x)

    n = bs * n_batches

    t, f = generate_masks(cfg, shape, n_blocks=1, seed=0, device=dev)
    batch = spec * t[:, :, None] * f[:, None, :]  # (a)'s fixed, pre-built batch
    rise = RISE(score, mask_config=cfg)
    rng = np.random.default_rng(0)

    def bare() -> None:
        with torch.inference_mode():
            for _ in range(n_batches):
                fwd(batch)

    def ours() -> None:
        rise.attribute(
            spec, n_masks=n - pilot, estimator=estimator,
            execution=RISEExecution(batch_size=bs, device=dev, precision=precision),
        )  # fmt: skip

    def reference() -> None:
        sal = torch.zeros(shape, dtype=torch.float32, device=dev)
        with torch.inference_mode():
            for _ in range(n_batches):
                masks = torch.from_numpy(_naive_masks(rng, bs, shape, cfg)).to(dev)
                s = fwd(spec * masks).float()
                sal += torch.tensordot(s, masks, dims=1)

    methods = {"bare": bare, "asdxai": ours}
    if naive:
        methods["naive"] = reference
    with torch.inference_mode():  # warm-up (allocator, autotuning, compile)
        fwd(batch)
    rise.attribute(
        spec, n_masks=bs, execution=RISEExecution(batch_size=bs, device=dev, precision=precision)
    )
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(repeats):  # interleaved, best of `repeats`: robust to a shared machine
        for key, fn in methods.items():
            _sync(dev)
            t0 = time.perf_counter()
            fn()
            _sync(dev)
            best[key] = min(best[key], time.perf_counter() - t0)
    rates = {key: n / sec for key, sec in best.items()}
    return {
        "scorer": name, "device": str(dev), "shape": shape, "batch_size": bs,
        "n_masks": n, "repeats": repeats, "precision": precision, "estimator": estimator,
        "sampling": sampling, "compile": compile,
        "threads": torch.get_num_threads(), **rates,
    }  # fmt: skip


def report(runs: list[dict], *, malloc: str) -> str:
    """The printed lines of :func:`benchmark` results (one per estimator, same settings)."""
    r = runs[0]
    lines = [
        f"RISE benchmark: {r['scorer']}, input {r['shape'][0]} x {r['shape'][1]}, "
        f"{r['device']} ({r['threads']} threads), batch {r['batch_size']}, {r['precision']}"
        f"{', torch.compile' if r['compile'] else ''}, {r['n_masks']} masks per method, best "
        f"of {r['repeats']}, {r['sampling']} masks; malloc: {malloc}"
    ]
    for r in runs:
        lines.append(f"  estimator {r['estimator']}:")
        lines.append(f"  (a) bare score function : {r['bare']:10.1f} masks/s")
        lines.append(f"  (b) asdxai RISE         : {r['asdxai']:10.1f} masks/s   (b)/(a) = "
                     f"{r['asdxai'] / r['bare']:.3f}")  # fmt: skip
        if "naive" in r:
            lines.append(f"  (c) naive reference     : {r['naive']:10.1f} masks/s   (b)/(c) = "
                         f"{r['asdxai'] / r['naive']:.2f}")  # fmt: skip
        secs = STUDY_MASKS / r["asdxai"]
        lines.append(f"  {STUDY_MASKS:,} masks at (b): {secs:,.0f} s ({secs / 3600:.2f} h)")
    return "\n".join(lines)


def write(runs: list[dict], stem: str | os.PathLike, *, command: str,
          malloc: str) -> tuple[Path, Path]:  # fmt: skip
    """Write ``<stem>.json`` (the runs, each with its ratio) and ``<stem>.md`` (the report)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out_json, out_md = stem.with_suffix(".json"), stem.with_suffix(".md")
    rows = [{**r, "ratio": r["asdxai"] / r["bare"]} for r in runs]
    doc = {"command": command, "malloc": malloc, "runs": rows}
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1, default=json_default))
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(f"`{command}`\n\n```\n{report(runs, malloc=malloc)}\n```\n")
    return out_json, out_md
