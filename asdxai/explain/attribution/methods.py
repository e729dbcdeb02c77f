"""Importance maps of one spectrogram from RISE, Captum's attribution methods and two baselines.

Every method takes the same black box, a score function ``(B, T, F) -> (B,)`` (higher = more
anomalous), and one linear magnitude spectrogram ``(T, F)``, and returns a ``(T, F)`` map with
what it cost (:class:`MethodMap`). Removed or masked cells take the value 0 (silence) in every
perturbation method, as in RISE's masks.

========================== ====================================================================
``rise-separable-plain``   RISE, separable time x frequency masks, the study's plain estimator
``rise-separable``         the same masks, centred estimator
``rise-time``              RISE, time-only masks (centred)
``rise-freq``              RISE, frequency-only masks (centred)
``rise-grid``              RISE, dense 2-D masks of the original RISE (centred)
``rise-stft``              FreqRISE-style: RISE's separable masks on the clip's *complex* STFT,
                           the masked signal resynthesised (overlap-add) and its spectrogram
                           scored (centred; needs the waveform, see :func:`stft_resynthesis`)
``occlusion``              Captum ``Occlusion``: a time x frequency window slid over the input
``feature-ablation``       Captum ``FeatureAblation`` of the cells of the RISE grid, one by one
``saliency``               Captum ``Saliency``: ``|d score / d input|``
``integrated-gradients``   Captum ``IntegratedGradients`` from silence to the input
``gradient-shap``          Captum ``GradientShap``, baselines silence and the clip's median frame
``kernel-shap``            Captum ``KernelShap`` on the cells of the RISE grid
``random``                 uniform noise (the floor every measure must beat)
``energy``                 the log spectrogram itself (what a map that only sees energy shows)
========================== ====================================================================

Gradient methods call the black box with gradients enabled; the encoder and the k-means
backend of :class:`asdxai.scoring.AnomalyScorer` are differentiable, so no change of the
scorer is needed (RISE still runs under ``torch.no_grad``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..._checks import Integral, Interval, check_params
from ...constants import METHODS
from ...errors import ConfigError
from ...features import FeatureConfig, log_spectrogram, spectrogram
from ..masks import RISEMaskConfig
from ..rise import RISE, RISEExecution
from ..signal import stft_masking

ScoreFn = Callable[[torch.Tensor], torch.Tensor]

#: Mask mode and estimator of each RISE method: the centred estimator, not ``asdxai rise``'s
#: default "cv": docs/COMPARE.md was measured with it, "grid" masks lack "cv", and the cross-fitted
#: surrogate of "cv" needs two blocks (at a budget of one block, 1000 masks, it is plain RISE).
_RISE = {
    "rise-separable-plain": ("separable", "plain"),
    "rise-separable": ("separable", "centered"),
    "rise-time": ("time", "centered"),
    "rise-freq": ("freq", "centered"),
    "rise-grid": ("grid", "centered"),
    "rise-stft": ("separable", "centered"),
}
Resynthesis = Callable[[torch.Tensor], torch.Tensor]


#: Most steps / samples / coalitions / batch inputs a method setting may ask for.
MAX_METHOD_COUNT = 100_000
#: Most GradientShap samples (captum scores all of them in one batch: 256 10-s spectrograms
#: with their gradients are about 0.5 GB).
MAX_SHAP_SAMPLES = 256
#: Most cells, frames or bins per axis of a grid, window or stride (a 10 s clip: 311 x 513).
MAX_GRID = 65_536


@dataclass(frozen=True)
class MethodSettings:
    """How much work each method may do, and its windows.

    Attributes
    ----------
    n_masks : int, masks per RISE map (the centred estimator adds a pilot block:
        ``rise.PILOT_MASKS`` masks, at most one block)
    cells : (time cells, frequency cells), the RISE grid; also the features of
        FeatureAblation and KernelShap (default: the study's 20 x 34)
    occlusion_window : (frames, bins) of Occlusion's sliding window
    occlusion_stride : (frames, bins) of its steps
    ig_steps : int, IntegratedGradients' path steps
    shap_samples : int, GradientShap's samples (random baseline, random point on the path)
    kernel_samples : int, KernelShap's coalitions
    batch_size : int, inputs per call of the black box
    """

    n_masks: int = 2000
    cells: tuple[int, int] = (20, 34)
    occlusion_window: tuple[int, int] = (8, 32)
    occlusion_stride: tuple[int, int] = (4, 16)
    ig_steps: int = 32
    shap_samples: int = 32
    kernel_samples: int = 1000
    batch_size: int = 64

    def __post_init__(self) -> None:
        highest = {"n_masks": None, "ig_steps": MAX_METHOD_COUNT, "shap_samples": MAX_SHAP_SAMPLES,
                   "kernel_samples": MAX_METHOD_COUNT, "batch_size": MAX_METHOD_COUNT}  # fmt: skip
        check_params({name: (Integral, Interval(1, high)) for name, high in highest.items()},
                     **{name: getattr(self, name) for name in highest})  # fmt: skip
        for name in ("cells", "occlusion_window", "occlusion_stride"):
            value = getattr(self, name)
            if len(value) != 2 or any(int(v) <= 0 for v in value):
                raise ConfigError(
                    f"{name} must be two positive integers, got {value!r}", param=name
                )
            if any(int(v) > MAX_GRID for v in value):
                raise ConfigError(
                    f"{name} must be at most {MAX_GRID} per axis (frames, bins), got {value!r}",
                    param=name,
                )


@dataclass
class MethodMap:
    """One method's map of one input and its cost.

    Attributes
    ----------
    method : str, a key of :data:`METHODS`
    importance : np.ndarray [shape=(T, F)] float64, high = anomalous (Saliency: sensitivity)
    forward : int, inputs the black box scored (a batch of B counts B)
    backward : int, of those, inputs scored with gradients (backward passes)
    seconds : float, wall time
    peak_mb : float, peak memory above the start (CUDA: allocated; CPU: resident set size
        sampled every 5 ms, so short peaks may be missed; NaN where unavailable)
    seed : int, the seed the map was computed with
    """

    method: str
    importance: np.ndarray
    forward: int
    backward: int
    seconds: float
    peak_mb: float
    seed: int


class _Counted(nn.Module):
    """The black box, counting the inputs it scores (and those scored with gradients)."""

    def __init__(self, score_fn: ScoreFn) -> None:
        super().__init__()
        self.score_fn = score_fn
        self.forward_rows = 0
        self.backward_rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forward_rows += int(x.shape[0])
        if torch.is_grad_enabled() and x.requires_grad:
            self.backward_rows += int(x.shape[0])
        return self.score_fn(x)


class _PeakMemory:
    """Peak memory above the start of a ``with`` block, in MB (see :attr:`MethodMap.peak_mb`)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb = float("nan")

    def __enter__(self) -> _PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        self._start = _rss()
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        if self._start is not None:
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _rss() or 0)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.peak_mb = (peak - self._start) / 2**20
            return
        if self._start is None:
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _rss() or 0)
        self.peak_mb = (self._peak - self._start) / 2**20


def _rss() -> int | None:
    """Resident set size of this process in bytes (Linux), else None."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None

    return pages * os.sysconf("SC_PAGE_SIZE")


def _compose(score_fn: ScoreFn, resynthesis: Resynthesis) -> ScoreFn:
    def score_masks(masks: torch.Tensor) -> torch.Tensor:
        return score_fn(resynthesis(masks))

    return score_masks


def stft_resynthesis(wave: torch.Tensor, cfg: FeatureConfig) -> Resynthesis:
    """FreqRISE-style masking: masks on the complex STFT -> spectrograms of the resynthesis.

    The signal-domain masks of :func:`asdxai.explain.signal.stft_masking` on the model's own
    STFT grid (``cfg``), followed by the model's spectrogram: a mask ``M`` [shape=(B, T, F)]
    gives ``spectrogram(ISTFT(S ⊙ M))``. Unlike masking the magnitude directly, the result is a
    spectrogram of a real signal: neighbouring frames and bins leak into each other as they
    would in audio (about 1 ms per mask for a 3 s clip).

    Parameters
    ----------
    wave : Tensor [shape=(L,)], the clip as the model reads it (``read_clip``)
    cfg : FeatureConfig, the model's features

    Returns
    -------
    callable, Tensor [shape=(B, T, F)] -> Tensor [shape=(B, T, F)], on ``wave``'s device
    """
    resynthesise = stft_masking(wave, cfg)
    return lambda masks: spectrogram(resynthesise(masks), cfg=cfg)


def cell_ids(shape: tuple[int, int], cells: tuple[int, int]) -> torch.Tensor:
    """Feature mask of the ``cells`` grid over a ``shape`` input: cell index of every
    ``(t, f)`` [shape=(T, F)] int64, rows split as evenly as possible (``t * cells_t // T``)."""
    (t, f), (ct, cf) = shape, cells
    if ct > t or cf > f:
        raise ConfigError(f"a {ct} x {cf} cell grid does not fit a {t} x {f} input", param="cells")
    rows = torch.arange(t) * ct // t
    cols = torch.arange(f) * cf // f
    return rows[:, None] * cf + cols[None, :]


def median_frame(spec: torch.Tensor) -> torch.Tensor:
    """The clip's median frame repeated over time [shape=(T, F)]: its stationary part."""
    return spec.median(dim=0).values.expand_as(spec).contiguous()


def compute_map(
    method: str,
    score_fn: ScoreFn,
    spec: torch.Tensor,
    *,
    settings: MethodSettings | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    resynthesis: Resynthesis | None = None,
) -> MethodMap:
    """The importance map of ``spec`` by ``method``, with its cost.

    Parameters
    ----------
    method : a key of :data:`METHODS`
    score_fn : callable, Tensor [shape=(B, T, F)] -> Tensor [shape=(B,)], on ``device``;
        must be differentiable for the gradient methods
    spec : Tensor [shape=(T, F)], linear magnitude spectrogram (never modified)
    settings : :class:`MethodSettings` (default: its defaults)
    seed : int >= 0, seed of a stochastic method (RISE masks, GradientShap, KernelShap,
        random); deterministic methods ignore it
    device : where the inputs are built and the black box runs
    resynthesis : for ``rise-stft``: masks [shape=(B, T, F)] -> the spectrograms of the
        resynthesised masked signals (:func:`stft_resynthesis` of the clip's waveform)

    Returns
    -------
    MethodMap
    """
    if method not in METHODS:
        raise ConfigError(
            f"unknown method {method!r}; one of {', '.join(METHODS)}", param="methods"
        )
    if method == "rise-stft":
        if resynthesis is None:
            raise ConfigError("rise-stft needs the clip's waveform (resynthesis=)", param="methods")
        spec = torch.ones_like(torch.as_tensor(spec))  # RISE's masked input is the mask itself
        counted = _Counted(_compose(score_fn, resynthesis))
    else:
        counted = _Counted(score_fn)
    settings = settings or MethodSettings()
    device = torch.device(device)
    x = torch.as_tensor(spec).detach().to(device=device, dtype=torch.float32)
    t0 = time.perf_counter()
    numpy_state = np.random.get_state()  # Captum draws from the global generators
    try:
        forked = [device.index or 0] if device.type == "cuda" else []
        with _PeakMemory(device) as mem, torch.random.fork_rng(devices=forked):
            torch.manual_seed(seed)
            np.random.seed(seed)
            importance = _MAKERS[METHODS[method][0]](method, counted, x, settings, seed, device)
    finally:
        np.random.set_state(numpy_state)
    seconds = time.perf_counter() - t0
    return MethodMap(
        method, np.asarray(importance, dtype=np.float64), counted.forward_rows,
        counted.backward_rows, seconds, mem.peak_mb, seed,
    )  # fmt: skip


def _rise(
    method: str, f: _Counted, x: torch.Tensor, s: MethodSettings, seed: int, device: torch.device
) -> np.ndarray:
    mode, estimator = _RISE[method]
    cfg = RISEMaskConfig(mode=mode, time_cells=s.cells[0], freq_cells=s.cells[1])
    res = RISE(f, mask_config=cfg).attribute(
        x, n_masks=s.n_masks, seed=seed, estimator=estimator,
        execution=RISEExecution(device=device, batch_size=s.batch_size),
    )  # fmt: skip
    return res.importance


def _perturbation(
    method: str, f: _Counted, x: torch.Tensor, s: MethodSettings, seed: int, device: torch.device
) -> np.ndarray:
    # captum on first use: adds ~1/3 to torch's import (measured); only the comparison uses it
    from captum.attr import FeatureAblation, KernelShap, Occlusion

    inp = x[None]
    with torch.no_grad():
        if method == "occlusion":  # a window or stride beyond the input is the whole axis
            window = tuple(min(int(w), n) for w, n in zip(s.occlusion_window, x.shape, strict=True))
            stride = tuple(min(int(v), n) for v, n in zip(s.occlusion_stride, x.shape, strict=True))
            out = Occlusion(f).attribute(
                inp, sliding_window_shapes=window, strides=stride, baselines=0.0,
                perturbations_per_eval=s.batch_size,
            )  # fmt: skip
        else:
            mask = cell_ids(tuple(x.shape), s.cells).to(device)[None]
            if method == "feature-ablation":
                out = FeatureAblation(f).attribute(
                    inp, baselines=0.0, feature_mask=mask, perturbations_per_eval=s.batch_size
                )
            else:
                out = KernelShap(f).attribute(
                    inp, baselines=0.0, feature_mask=mask, n_samples=s.kernel_samples,
                    perturbations_per_eval=s.batch_size,
                )  # fmt: skip
    return out[0].detach().cpu().numpy()


def _gradient(
    method: str, f: _Counted, x: torch.Tensor, s: MethodSettings, seed: int, device: torch.device
) -> np.ndarray:
    # captum on first use: adds ~1/3 to torch's import (measured); only the comparison uses it
    from captum.attr import GradientShap, IntegratedGradients, Saliency

    inp = x[None].clone().requires_grad_(True)
    if method == "saliency":
        out = Saliency(f).attribute(inp)
    elif method == "integrated-gradients":
        out = IntegratedGradients(f).attribute(
            inp, baselines=torch.zeros_like(inp), n_steps=s.ig_steps,
            internal_batch_size=s.batch_size,
        )  # fmt: skip
    else:
        baselines = torch.stack([torch.zeros_like(x), median_frame(x)])
        out = GradientShap(f).attribute(inp, baselines=baselines, n_samples=s.shap_samples)
    return out[0].detach().cpu().numpy()


def _baseline(
    method: str, f: _Counted, x: torch.Tensor, s: MethodSettings, seed: int, device: torch.device
) -> np.ndarray:
    if method == "random":
        return np.random.default_rng(seed).random(tuple(x.shape))
    return log_spectrogram(x).cpu().numpy()


_MAKERS = {"rise": _rise, "perturbation": _perturbation, "gradient": _gradient,
           "baseline": _baseline}  # fmt: skip
