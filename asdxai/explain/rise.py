"""RISE importance maps for black-box anomaly scorers, batched, reproducible and resumable.

``RISE(score_fn).attribute(spec)`` estimates

    importance = Σᵢ sᵢ Mᵢ / (N · E[M]),    sᵢ = score_fn(X ⊙ Mᵢ + fill · (1 − Mᵢ))

over N random masks Mᵢ (see :mod:`asdxai.explain.masks`): separable Mᵢ = tᵢ fᵢᵀ by
default, time-only, frequency-only, or the dense 2-D grid of the original RISE.
High values mark regions whose presence raises the anomaly score (anomalous),
low values regions whose presence lowers it (normal).

How the work is organised
-------------------------
* Masks come in fixed blocks keyed by (seed, block index); exactly n_masks are
  used: the last block is truncated to its first n_masks mod block_size masks.
  The N x T x F mask stack is never built: each batch builds its masked inputs
  from its factors t (B, T) and f (B, F) on the device, and the weighted sum
  Σ sᵢ tᵢ fᵢᵀ is one matrix product Tᵀ diag(s) F per batch, in float32;
  block sums are added in float64 and in block order.
* A batch is either part of one block (batch_size < block_size) or a run of whole
  blocks (batch_size ≥ block_size, rounded down to a multiple of the block size),
  so per-block sums are always available: the run can stop, checkpoint or resume
  at any block boundary, and the result does not depend on the batch size, on
  interruptions or on the number of processes (up to float32 rounding).
* ``mask_config.mode == "grid"`` (2-D RISE) has no factors: each batch builds its
  dense masks (B, T, F) from the cell grids on the device (two batched products with
  the 1-D interpolation weights, B·tc·F·(fc + T) multiply-adds) and accumulates
  ``einsum('b,btf->tf', s, M)`` per batch (float32; float64 across batches). Cost
  compared with the separable modes: the masks take O(B·T·F) memory *in addition*
  to the masked inputs (both alive during the forward pass: twice the input memory,
  e.g. 1000 masks of 311 x 513 = 0.64 GB more) instead of O(B·(T + F)), and
  building them costs ~20x the multiply-adds of one B·T·F product. Measured on one
  CPU thread with a trivial black box (x.mean()) on 311 x 513 inputs, batch 100:
  separable ≈ 1.7 ms per mask, grid ≈ 3.6 ms per mask of RISE overhead — small
  next to a real encoder's forward pass on a GPU, noticeable on a CPU. The
  automatic batch size on CUDA measures the masks too, so it is smaller.
* The sums of even and odd blocks are kept apart; the Pearson correlation of the
  two half maps is the *split-half agreement*, a convergence measure
  (``until_agreement`` stops at the first block where it reaches the target).
* ``estimator="centered"`` subtracts a pilot mean score c (from a separate pilot
  block of masks, stream 1 of the seed, so c is independent of the masks of the
  estimate) and adds c back: importance = Σ (sᵢ − c) Mᵢ / (N E[M]) + c. Since
  E[(s − c) M] / E[M] + c = E[s M] / E[M], the expectation is the same; the noise
  from the random mask coverage c · Σ Mᵢ is removed.
* ``estimator="cv"`` (control variate) subtracts a surrogate of the score, h = β·z, a
  quadratic model in the mask's pooled time and frequency profiles
  (:class:`asdxai.explain.surrogate.Surrogate`), and adds its exact expectation back:
  importance = [Σ (sᵢ − β·zᵢ) Mᵢ + N E[(β·z) M]] / (N E[M]), E[(β·z) M] in closed
  form. β is *cross-fitted*: the even blocks use the β fitted (ridge least squares) on
  the odd blocks and vice versa, so β is independent of the masks it is applied to and
  the expectation is the plain estimator's. The run keeps, per parity, Σ z zᵀ and Σ z s
  (K² + K numbers, K = 217 for the default 20 + 34 cells), the β in use and the
  correction Σ (β·zᵢ) Mᵢ [shape=(T, F)]: a folded block adds its correction (its masks
  are rebuilt from the seed), and β is refitted whenever its parity has grown by
  :data:`CV_REFIT_GROWTH` since the last fit (until :data:`CV_FIT_MAX_MASKS`), which
  rebuilds the other parity's correction: O(N) extra mask products in all, none of
  them forward passes. Every rank folds the same blocks in the same order, so the map
  is the single-process map; not for "grid" masks. Split-half agreement for it is that
  of the two cross-fitted halves. With one block (n_masks ≤ block_size) there is nothing
  to fit the other half on and it is the plain estimator (a warning says so). It is the
  default of ``asdxai rise`` and :class:`asdxai.workflows.explain.MapSettings`
  (:func:`asdxai.constants.default_estimator`); ``attribute`` itself defaults to "plain".
* The mask *sampling* (:attr:`RISEMaskConfig.sampling`: antithetic pairs, Latin
  hypercubes) is independent of the estimator: any estimator with any sampling.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._checks import Integral, Interval, Real, check_params
from ..constants import (
    ESTIMATORS,
    PRECISIONS,
    STUDY_MASKS,
)
from ..errors import ConfigError, ResultError
from . import surrogate
from .distributed import DistContext
from .masks import MaskBatch, RISEMaskConfig, block_masks, draw_block
from .surrogate import Surrogate

log = logging.getLogger(__name__)

ScoreFn = Callable[[torch.Tensor], torch.Tensor]

#: The torch dtype of each of :data:`~asdxai.constants.PRECISIONS` (None: float32).
DTYPES = dict(zip(PRECISIONS, (None, torch.bfloat16, torch.float16), strict=True))
CPU_BATCH_SIZE = 100  # default batch on CPU (divides the default block of 1000)
MAX_BATCH_SIZE = 16_384  # upper bound of the automatic batch size on CUDA
PILOT_MASKS = 256  # masks of the pilot block of the centred estimator
MIN_AGREEMENT_BLOCKS = 4  # blocks before ``until_agreement`` may stop a run
CV_REFIT_GROWTH = 1.25  # the cv surrogate of a parity is refitted when it has grown by this
CV_FIT_MAX_MASKS = 16_000  # ... until it holds this many masks; then β stays fixed


@dataclass
class RISEResult:
    """An importance map with everything needed to judge, store and resume it.

    Attributes
    ----------
    importance : np.ndarray [shape=(T, F)], float64; Σ sᵢ Mᵢ / (N E[M]) (+ c, centred)
    n_masks : int, masks used
    n_masks_requested : int, masks asked for
    seed : int
    mask_config : RISEMaskConfig
    expected_mask : float, E[M] (p² for separable masks)
    estimator : "plain" | "centered" | "cv"
    center : float, pilot mean score c (0 for "plain" and "cv")
    agreement : float, split-half correlation of the even- and odd-block maps (nan if
        either half is empty)
    sum_even, sum_odd : np.ndarray [shape=(T, F)], float64, Σ (sᵢ − c) Mᵢ over even /
        odd blocks (the running sums; resume continues them)
    cv_state : dict | None, "cv" only, float64, per block parity q: ``gram``
        [shape=(2, K, K)] Σ z zᵀ, ``zs`` [shape=(2, K)] Σ z s, ``beta`` [shape=(2, K)] the
        surrogate fitted on q, ``fit_n`` [shape=(2,)] the masks of q it was fitted on, and
        ``corr`` [shape=(2, T, F)] Σ (β·zᵢ) Mᵢ over the masks of q with the *other*
        parity's β
    n_even, n_odd : int, masks in even / odd blocks
    score_sum, score_sq_sum : float, Σ sᵢ and Σ sᵢ² (raw scores)
    next_block : int, first block not yet included
    complete : bool, False for a partial (checkpointed) result
    stopped_early : bool, True when ``until_agreement`` ended the run
    until_agreement : float | None, the target, if any
    precision : str, forward-pass precision
    spectrogram : np.ndarray [shape=(T, F)] | None, the explained input (float32)
    elapsed_s : float, wall time of this call (not of resumed parts)
    meta : dict, free-form provenance (clip, checkpoint, section, ...)
    """

    importance: np.ndarray
    n_masks: int
    n_masks_requested: int
    seed: int
    mask_config: RISEMaskConfig
    expected_mask: float
    estimator: str
    center: float
    agreement: float
    sum_even: np.ndarray
    sum_odd: np.ndarray
    n_even: int
    n_odd: int
    score_sum: float
    score_sq_sum: float
    next_block: int
    complete: bool = True
    stopped_early: bool = False
    until_agreement: float | None = None
    precision: str = "fp32"
    spectrogram: np.ndarray | None = None
    elapsed_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    cv_state: dict[str, np.ndarray] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.importance.shape)  # type: ignore[return-value]

    @property
    def estimated_correlation(self) -> float:
        """Estimated Pearson r of the map with its converged map (from ``agreement``)."""
        return estimated_correlation(self.agreement)

    @property
    def mean_score(self) -> float:
        """Mean anomaly score of the masked inputs."""
        return self.score_sum / max(self.n_masks, 1)

    def half_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """Importance maps of the even and the odd blocks, each [shape=(T, F)]."""
        e = self.expected_mask
        if self.cv_state is not None:
            even, odd, _ = cv_maps(
                (self.sum_even, self.sum_odd),
                (self.n_even, self.n_odd),
                state=self.cv_state,
                surrogate=Surrogate.for_masks(self.mask_config, self.shape),
                expected_mask=e,
            )
            return even, odd
        return (
            _normalise(self.sum_even, self.n_even, e, self.center),
            _normalise(self.sum_odd, self.n_odd, e, self.center),
        )


def _normalise(total: np.ndarray, n: int, expected: float, center: float) -> np.ndarray:
    if n == 0:
        return np.full_like(total, np.nan)
    return total / (n * expected) + center


def cv_maps(
    sums: tuple[np.ndarray, np.ndarray],
    counts: tuple[int, int],
    *,
    state: dict[str, np.ndarray],
    surrogate: Surrogate,
    expected_mask: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cross-fitted control-variate maps: (even half, odd half, whole), each [shape=(T, F)].

    Parity p uses the surrogate β_q fitted on the other parity q:
    ``(Σ_p s M − Σ_p (β_q·z) M + n_p E[(β_q·z) M]) / (n_p E[M])``.
    """
    nums = []
    for p, q in ((0, 1), (1, 0)):
        beta = state["beta"][q]
        nums.append(sums[p] - state["corr"][p] + counts[p] * surrogate.expected_map(beta))
    halves = [
        nums[p] / (counts[p] * expected_mask) if counts[p] else np.full_like(nums[p], np.nan)
        for p in (0, 1)
    ]
    whole = (nums[0] + nums[1]) / (max(sum(counts), 1) * expected_mask)
    return halves[0], halves[1], whole


def estimated_correlation(agreement: float) -> float:
    """Estimated Pearson r of a map with its converged map, from its split-half agreement a.

    Model: every half map is the converged map G plus independent noise of the same
    spatial spread (each half has half the masks, so twice the noise variance of the
    whole map). With V the spatial variance of G and σ² the noise variance of the whole
    map, a = V / (V + 2σ²), hence σ² / V = (1 − a) / (2a) and

        r(whole, G) = sqrt(V / (V + σ²)) = sqrt(2a / (1 + a))

    (the Spearman-Brown reliability 2a / (1 + a), square-rooted). nan for nan; 0 for a ≤ 0.
    Inverse: :func:`agreement_for_correlation`.
    """
    if not math.isfinite(agreement):
        return float("nan")
    return math.sqrt(2 * agreement / (1 + agreement)) if agreement > 0 else 0.0


def agreement_for_correlation(r: float) -> float:
    """The split-half agreement whose :func:`estimated_correlation` is ``r`` (r² / (2 − r²))."""
    return r * r / (2.0 - r * r)


def noise_ratio(n_even: int, n_odd: int, agreement: float) -> float:
    """x = k / V, the noise variance of a one-mask map over the converged map's spatial
    variance, from the agreement of two halves of ``n_even`` and ``n_odd`` masks.

    With half maps of noise k / m: a² = 1 / ((1 + x / n_even)(1 + x / n_odd)), the
    positive root of x² / (n_e n_o) + x (1 / n_e + 1 / n_o) + 1 − 1 / a² = 0 (for equal
    halves x = n (1 − a) / (2a), which gives :func:`estimated_correlation`). A map of n
    masks then has r² = 1 / (1 + x / n) with the converged map. nan for a ≤ 0 or nan.
    """
    if not math.isfinite(agreement) or agreement <= 0 or n_even <= 0 or n_odd <= 0:
        return float("nan")
    qa, qb, qc = 1.0 / (n_even * n_odd), 1.0 / n_even + 1.0 / n_odd, 1.0 - 1.0 / agreement**2
    return (-qb + math.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)


def projected_masks(x: float, target: float, *, n: int, n_max: int, block: int) -> int | None:
    """Masks at which the agreement is projected to reach ``target``: the n with
    r² = 1 / (1 + x / n) = r_target² (:func:`noise_ratio`, r_target =
    :func:`estimated_correlation` of ``target``), in whole blocks, between ``n`` and
    ``n_max``; None when x is unknown."""
    if not math.isfinite(x):
        return None
    r2 = estimated_correlation(target) ** 2
    need = x / (1.0 / r2 - 1.0)
    return int(min(n_max, max(n, -(-math.ceil(need - 1e-6) // block) * block)))


def split_half_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (nan when either is empty or constant)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / denom) if denom > 0 else float("nan")


@dataclass(frozen=True)
class RISEExecution:
    """How a map is computed (never what it is): device, batching, precision, checkpoints.

    Attributes
    ----------
    device : torch device or str, optional
        Where masks are built and the score function runs (default: the device of the
        input if it is a tensor, else CPU). The score function must accept it.
    batch_size : int, optional
        Masked inputs per forward pass. Default: chosen from free memory on CUDA, 100 on
        CPU. Halved automatically when CUDA runs out of memory.
    precision : "fp32" | "bf16" | "fp16"
        Autocast precision of the forward pass; sums are always float32 / float64.
    compile : bool
        Wrap the score function in ``torch.compile`` (falls back with a warning).
    progress : bool
        Show a tqdm bar with masks/s, ETA and the split-half agreement.
    checkpoint : callable(RISEResult), optional
        Called with the partial result every ``checkpoint_every`` masks (on rank 0).
    checkpoint_every : int, optional
        Masks between checkpoints (rounded up to whole blocks).
    distributed : DistContext, optional
        Share the blocks among the ranks of an initialised process group; every rank
        returns the same (single-process) result.
    on_first_batch : callable(masks_per_s: float), optional
        Called once with the measured speed after the first block (rank 0), e.g. to
        print the projected time.
    """

    device: torch.device | str | None = None
    batch_size: int | None = None
    precision: str = "fp32"
    compile: bool = False
    progress: bool = False
    checkpoint: Callable[[RISEResult], Any] | None = None
    checkpoint_every: int | None = None
    distributed: DistContext | None = None
    on_first_batch: Callable[[float], Any] | None = None


class RISE:
    """Randomised input sampling for explanation of a black-box anomaly scorer.

    Parameters
    ----------
    score_fn : callable, Tensor [shape=(B, T, F)] float32 -> Tensor [shape=(B,)]
        Any black box; higher = more anomalous. It receives a freshly built tensor on
        every call and may modify it in place without affecting the result. It is
        called under ``torch.inference_mode()`` (and autocast for bf16 / fp16).
    mask_config : RISEMaskConfig, optional
        Mask settings (default: the study's separable 20 x 34 cells, p = 0.75); its
        ``mode`` picks separable, time-only, frequency-only or 2-D grid masks.
    """

    def __init__(self, score_fn: ScoreFn, *, mask_config: RISEMaskConfig | None = None) -> None:
        if not callable(score_fn):
            raise ConfigError("RISE needs a callable score function (B, T, F) -> (B,)")
        self.score_fn = score_fn
        self.mask_config = mask_config if mask_config is not None else RISEMaskConfig()

    # ------------------------------------------------------------------ public
    def attribute(
        self,
        spec: torch.Tensor | np.ndarray,
        *,
        n_masks: int = STUDY_MASKS,
        seed: int = 0,
        estimator: str = "plain",
        until_agreement: float | None = None,
        resume_from: RISEResult | None = None,
        execution: RISEExecution | None = None,
        fill: torch.Tensor | np.ndarray | None = None,
    ) -> RISEResult:
        """Compute the importance map of one input spectrogram.

        Parameters
        ----------
        spec : Tensor or np.ndarray [shape=(T, F)]
            The model input (linear magnitude spectrogram); never modified.
        n_masks : int
            Masks to use, exactly (the last block is truncated); an upper bound with
            ``until_agreement``.
        seed : int
            Seed (≥ 0) of the mask stream; same seed and settings give the same map.
        estimator : "plain" | "centered" | "cv"
            "centered" subtracts a pilot mean score, "cv" a cross-fitted quadratic
            surrogate of the score in the mask's pooled profiles (variance reduction, same
            expectation).
        until_agreement : float in (0, 1), optional
            Stop at the first block boundary (after at least 4 blocks) where the
            split-half agreement reaches this value; ``n_masks`` is then an upper bound.
            :data:`DEFAULT_STOP_AGREEMENT` (0.961) stops at an estimated correlation of
            0.99 with the converged map (:func:`estimated_correlation`).
        resume_from : RISEResult, optional
            A partial result of the same seed, settings and input shape to continue.
        execution : RISEExecution, optional
            Device, batch size, precision, progress, checkpoints, process group.
        fill : Tensor or np.ndarray [shape=(T, F)], optional
            A reference whose cells replace the masked ones, instead of the mask settings'
            constant ``fill`` (e.g. a section's mean normal spectrogram,
            :func:`asdxai.explain.reference.normal_reference`): masked cells then hold normal
            content rather than silence. Recorded in the result's ``meta["fill"]`` as
            ``"reference"``; a resumed run must pass the same reference.

        Returns
        -------
        RISEResult
        """
        cfg = self.mask_config
        ex = execution if execution is not None else RISEExecution()
        batch_size, device, precision = ex.batch_size, ex.device, ex.precision
        checkpoint_every = ex.checkpoint_every
        x = _as_input(spec)
        shape = (int(x.shape[0]), int(x.shape[1]))
        cfg.check_input(shape)
        optional = {"batch_size": batch_size, "checkpoint_every": checkpoint_every,
                    "until_agreement": until_agreement}  # fmt: skip
        check_params(_RUN_NUMBERS, n_masks=n_masks, seed=seed,
                     **{k: v for k, v in optional.items() if v is not None})  # fmt: skip
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if estimator not in ESTIMATORS:
            raise ConfigError(f"estimator must be one of {list(ESTIMATORS)}, got {estimator!r}")
        if estimator == "cv" and cfg.dense:
            raise ConfigError(
                "the cv estimator needs separable masks, not 'grid'", param="estimator"
            )
        if device is None:
            device = x.device if isinstance(spec, torch.Tensor) else torch.device("cpu")
        device = torch.device(device)
        if precision == "fp16" and device.type == "cpu":
            log.warning("fp16 autocast on CPU is slow and partial; consider bf16")

        n_blocks = -(-n_masks // cfg.block_size)
        if estimator == "cv" and n_blocks < 2:
            log.warning("the cv estimator needs two blocks of masks to cross-fit its surrogate; "
                        "with one block it is the plain estimator")  # fmt: skip
        run = _Run(
            self,
            cfg,
            x.to(device=device, dtype=torch.float32),
            shape,
            int(seed),
            device,
            precision,
            estimator,
            ex.distributed,
            n_masks,
        )
        if fill is not None:
            ref = _as_input(fill)
            if tuple(ref.shape) != shape:
                raise ConfigError(f"fill shape {tuple(ref.shape)} != spec shape {shape}",
                                  param="fill")  # fmt: skip
            run.fill = ref.to(device=device, dtype=torch.float32)
            run.spec_shifted = run.spec - run.fill
        run.score_fn = _maybe_compile(self.score_fn, ex.compile)
        run.batch_size = batch_size or run.auto_batch_size()
        if resume_from is not None:
            run.load(resume_from)
        else:
            run.center = run.pilot_center() if estimator == "centered" else 0.0
        return run.execute(n_blocks, until_agreement, ex)


# ---------------------------------------------------------------------- internals
#: What the numbers of :meth:`RISE.attribute` may be.
_RUN_NUMBERS = {
    "n_masks": (Integral, Interval(1, None)),
    "seed": (Integral, Interval(0, None)),
    "batch_size": (Integral, Interval(1, None)),
    "checkpoint_every": (Integral, Interval(1, None)),
    "until_agreement": (Real, Interval(0, 1, closed="neither")),
}


def _as_input(spec: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(spec, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(spec, dtype=np.float32))
    elif isinstance(spec, torch.Tensor):
        x = spec.detach()
    else:
        raise ConfigError(f"spec must be a (T, F) tensor or array, got {type(spec).__name__}")
    if x.dim() != 2:
        raise ConfigError(f"RISE explains one (T, F) spectrogram, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ConfigError("spec contains NaN or infinite values")
    return x


def _maybe_compile(fn: ScoreFn, enabled: bool) -> ScoreFn:
    if not enabled:
        return fn
    try:
        return torch.compile(fn)
    except Exception as exc:  # noqa: BLE001 - compile is an optional speed-up
        log.warning("torch.compile failed (%s); using the score function as is", exc)
        return fn


def _is_oom(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, oom) or "out of memory" in str(exc).lower()


class _Run:
    """State of one ``attribute`` call (accumulators, batch size, pilot centre)."""

    def __init__(
        self,
        owner: RISE,
        cfg: RISEMaskConfig,
        spec: torch.Tensor,
        shape: tuple[int, int],
        seed: int,
        device: torch.device,
        precision: str,
        estimator: str,
        ctx: DistContext | None,
        n_total: int,
    ) -> None:
        self.cfg, self.spec, self.shape, self.seed = cfg, spec, shape, seed
        self.n_total = n_total
        self.device, self.precision, self.estimator, self.ctx = device, precision, estimator, ctx
        self.score_fn: ScoreFn = owner.score_fn
        self.batch_size = CPU_BATCH_SIZE
        self.center = 0.0
        # spec − fill, so that X·M + fill·(1 − M) = (X − fill)·M + fill
        self.fill: float | torch.Tensor = cfg.fill  # a (T, F) reference: see RISE.attribute
        self.spec_shifted = spec - cfg.fill if cfg.fill else spec
        t, f = shape
        self.sum_even = torch.zeros(t, f, dtype=torch.float64, device=device)
        self.sum_odd = torch.zeros(t, f, dtype=torch.float64, device=device)
        self.n_even = self.n_odd = 0
        self.score_sum = self.score_sq_sum = 0.0
        self.next_block = 0
        self.noise_ratios: list[tuple[int, float]] = []  # (masks, x): the bar's projected stop
        self.cv: dict[str, torch.Tensor] | None = None
        if estimator == "cv":
            self.surrogate = Surrogate.for_masks(cfg, shape)
            k = self.surrogate.n_features
            self.cv = {
                "gram": torch.zeros(2, k, k, dtype=torch.float64, device=device),
                "zs": torch.zeros(2, k, dtype=torch.float64, device=device),
                "beta": torch.zeros(2, k, dtype=torch.float64, device=device),
                "fit_n": torch.zeros(2, dtype=torch.float64, device=device),
                "corr": torch.zeros(2, t, f, dtype=torch.float64, device=device),
            }

    # -- scoring ---------------------------------------------------------------
    def masked(self, masks: MaskBatch) -> torch.Tensor:
        """Fresh masked inputs (B, T, F) = (X − fill) ⊙ M + fill."""
        return masks.apply(self.spec_shifted, fill=self.fill)

    def score(self, masks: MaskBatch) -> torch.Tensor:
        """Scores (B,) float32 of the masked inputs; validates the score function's output."""
        n = len(masks)
        x = self.masked(masks)
        dtype = DTYPES[self.precision]
        ctx = (
            torch.autocast(device_type=self.device.type, dtype=dtype)
            if dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), ctx:  # no autograd bookkeeping (cheaper than no_grad)
            s = self.score_fn(x)
        if not isinstance(s, torch.Tensor):
            s = torch.as_tensor(np.asarray(s))
        s = s.detach().to(device=self.device, dtype=torch.float32).reshape(-1).clone()
        if s.shape[0] != n:
            raise ConfigError(f"score function returned {s.shape[0]} scores for a batch of {n}")
        if not torch.isfinite(s).all():
            raise ConfigError("score function returned NaN or infinite scores")
        return s

    def auto_batch_size(self) -> int:
        """Batch size from free CUDA memory (probe of 16 masks); 100 elsewhere."""
        if self.device.type != "cuda":
            return CPU_BATCH_SIZE
        probe = 16
        blk = draw_block(self.cfg, self.shape, seed=self.seed, block=0)
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        self.score(
            block_masks(blk, self.shape, start=0, stop=probe, device=self.device)
        )  # masks counted too
        torch.cuda.synchronize(self.device)
        per_mask = max((torch.cuda.max_memory_allocated(self.device) - base) / probe, 1.0)
        free, _ = torch.cuda.mem_get_info(self.device)
        bs = int(max(1, min(MAX_BATCH_SIZE, 0.6 * free / per_mask)))
        block = self.cfg.block_size
        bs = (bs // block) * block if bs >= block else bs
        log.info("automatic batch size %d (%.1f MiB per masked input)", bs, per_mask / 2**20)
        return bs

    def pilot_center(self) -> float:
        """Mean score over a pilot block (stream 1), independent of the estimate's masks."""
        n = min(PILOT_MASKS, self.cfg.block_size)
        blk = draw_block(self.cfg, self.shape, seed=self.seed, block=0, stream=1)
        total = 0.0
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            masks = block_masks(blk, self.shape, start=start, stop=stop, device=self.device)
            total += float(self.score(masks).double().sum())
        c = total / n
        if self.ctx is not None:  # every rank uses rank 0's value
            buf = torch.tensor([c], dtype=torch.float64, device=self._comm_device())
            c = float(self.ctx.broadcast(buf)[0])
        log.info("centred estimator: pilot mean score c = %.6g (%d masks)", c, n)
        return c

    # -- block sums --------------------------------------------------------------
    def block_len(self, b: int) -> int:
        """Masks used of block ``b`` (the last block may be truncated)."""
        return min(self.cfg.block_size, self.n_total - b * self.cfg.block_size)

    def block_sums(self, blocks: list[int]) -> tuple[torch.Tensor, torch.Tensor, list | None]:
        """Per-block Σ (s − c) M (k, T, F) float64, [Σ s, Σ s²] (k, 2) float64 and, for
        "cv", per block (Σ z zᵀ (K, K), Σ z s (K,)) float64 (else None).

        Retries with half the batch size when CUDA runs out of memory.
        """
        while True:
            try:
                return self._block_sums(blocks)
            except (RuntimeError, MemoryError) as exc:
                if not _is_oom(exc) or self.batch_size == 1:
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("out of memory: batch size halved to %d", self.batch_size)

    def _feature_sums(self, masks: MaskBatch, s: torch.Tensor) -> list[torch.Tensor]:
        """[Σ z zᵀ (K, K), Σ z s (K,)] of a batch of masks and their scores, float64."""
        z = self.surrogate.features(masks)  # (B, K)
        return [z.T @ z, z.T @ s.double()]

    def _correction(self, blocks: list[int], beta: torch.Tensor) -> torch.Tensor:
        """Σ (β·zᵢ) Mᵢ [shape=(T, F)] float64 over the masks of ``blocks``, rebuilt from the
        seed (float32 products per block, like the map's sums)."""
        total = torch.zeros(*self.shape, dtype=torch.float64, device=self.device)
        if not bool(beta.any()):
            return total
        for b in blocks:
            blk = draw_block(self.cfg, self.shape, seed=self.seed, block=b)
            masks = block_masks(blk, self.shape, stop=self.block_len(b), device=self.device)
            w = (self.surrogate.features(masks) @ beta).float()
            total += masks.weighted_sum(w).double()
        return total

    def _block_sums(self, blocks: list[int]) -> tuple[torch.Tensor, torch.Tensor, list | None]:
        t_, f_ = self.shape
        block, bsz = self.cfg.block_size, self.batch_size
        sums = torch.zeros(len(blocks), t_, f_, dtype=torch.float64, device=self.device)
        stats = torch.zeros(len(blocks), 2, dtype=torch.float64, device=self.device)
        extra: list | None = [None] * len(blocks) if self.cv is not None else None
        # runs of whole blocks per forward pass when the batch holds a block or more
        whole = [b for b in blocks if self.block_len(b) == block] if bsz >= block else []
        per = max(1, bsz // block)
        for g in range(0, len(whole), per):
            group = whole[g : g + per]
            drawn = [draw_block(self.cfg, self.shape, seed=self.seed, block=b) for b in group]
            masks = MaskBatch.cat([block_masks(d, self.shape, device=self.device) for d in drawn])
            s = self.score(masks)
            k = len(group)
            part = masks.weighted_block_sums(s - self.center, k)  # (k, T, F) float32
            sums[g : g + k] = part.double()
            sd = s.double().view(k, block)
            stats[g : g + k, 0] = sd.sum(1)
            stats[g : g + k, 1] = (sd * sd).sum(1)
            if extra is not None:
                for j in range(len(drawn)):
                    one = slice(j * block, (j + 1) * block)
                    sub = MaskBatch(t=masks.t[one], f=masks.f[one])
                    extra[g + j] = self._feature_sums(sub, s[one])
        # several forward passes per block (every block when the batch is smaller than a
        # block, else only the truncated last block); ``whole`` is a prefix of ``blocks``
        step = min(bsz, block)
        for i in range(len(whole), len(blocks)):
            b = blocks[i]
            blk = draw_block(self.cfg, self.shape, seed=self.seed, block=b)
            n = self.block_len(b)
            for start in range(0, n, step):
                stop = min(n, start + step)
                masks = block_masks(blk, self.shape, start=start, stop=stop, device=self.device)
                s = self.score(masks)
                sums[i] += masks.weighted_sum(s - self.center).double()  # (T, F)
                sd = s.double()
                stats[i, 0] += sd.sum()
                stats[i, 1] += (sd * sd).sum()
                if extra is not None:
                    part = self._feature_sums(masks, s)
                    extra[i] = (
                        part
                        if extra[i] is None
                        else [a + b for a, b in zip(extra[i], part, strict=True)]
                    )
        return sums, stats, extra

    # -- accumulation ------------------------------------------------------------
    def fold(self, b: int, total: torch.Tensor, stats: torch.Tensor, extra=None) -> None:
        """Add the sums of block ``b`` (which must be ``next_block``)."""
        assert b == self.next_block, (b, self.next_block)
        if self.cv is not None:
            self._fold_cv(b, extra)
        n = self.block_len(b)
        if b % 2 == 0:
            self.sum_even += total
            self.n_even += n
        else:
            self.sum_odd += total
            self.n_odd += n
        self.score_sum += float(stats[0])
        self.score_sq_sum += float(stats[1])
        self.next_block = b + 1

    def _fold_cv(self, b: int, extra: list[torch.Tensor]) -> None:
        """Add block ``b``'s surrogate sums and correction; refit its parity's β when due."""
        p, q = b % 2, 1 - b % 2
        cv = self.cv
        cv["gram"][p] += extra[0]
        cv["zs"][p] += extra[1]
        cv["corr"][p] += self._correction([b], cv["beta"][q])
        n_p = sum(self.block_len(i) for i in range(p, b + 1, 2))
        fitted = float(cv["fit_n"][p])
        if fitted < CV_FIT_MAX_MASKS and n_p >= CV_REFIT_GROWTH * fitted:
            beta = surrogate.fit(cv["gram"][p].cpu().numpy(), cv["zs"][p].cpu().numpy(), n_p)
            cv["beta"][p] = torch.as_tensor(beta, device=self.device)
            cv["fit_n"][p] = n_p
            cv["corr"][q] = self._correction(list(range(q, b, 2)), cv["beta"][p])

    def maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(even half, odd half, whole) importance maps [shape=(T, F)] of the blocks so far."""
        e = self.cfg.expected_value
        even, odd = self.sum_even.cpu().numpy(), self.sum_odd.cpu().numpy()
        counts = (self.n_even, self.n_odd)
        if self.cv is not None:
            state = {k: v.cpu().numpy() for k, v in self.cv.items()}
            return cv_maps(
                (even, odd), counts, state=state, surrogate=self.surrogate, expected_mask=e
            )
        whole = _normalise(even + odd, self.n_even + self.n_odd, e, self.center)
        return (
            *(_normalise(a, n, e, self.center) for a, n in zip((even, odd), counts, strict=True)),
            whole,
        )

    def agreement(self) -> float:
        if self.n_even == 0 or self.n_odd == 0:
            return float("nan")
        # (T, F) copies per block of masks: negligible next to the block's forward passes
        even, odd, _ = self.maps()
        return split_half_agreement(even, odd)

    def load(self, res: RISEResult) -> None:
        """Continue from a partial result; raises ResultError if it does not match."""
        problems = []
        if res.mask_config != self.cfg:
            problems.append(f"mask settings {res.mask_config} != {self.cfg}")
        if res.seed != self.seed:
            problems.append(f"seed {res.seed} != {self.seed}")
        if res.estimator != self.estimator:
            problems.append(f"estimator {res.estimator!r} != {self.estimator!r}")
        if tuple(res.sum_even.shape) != self.shape:
            problems.append(f"input shape {tuple(res.sum_even.shape)} != {self.shape}")
        if res.precision != self.precision:
            problems.append(f"precision {res.precision!r} != {self.precision!r}")
        problems += _state_problems(res)
        if (self.cv is not None) != (res.cv_state is not None):
            problems.append("control-variate state missing or unexpected")
        done = int(res.n_even) + int(res.n_odd)
        if done % self.cfg.block_size and done < self.n_total:
            problems.append(
                f"its last block was truncated at {done} masks; it cannot be extended to "
                f"{self.n_total}"
            )
        if problems:
            raise ResultError("cannot resume: " + "; ".join(problems))
        self.sum_even = torch.as_tensor(res.sum_even, dtype=torch.float64).to(self.device).clone()
        self.sum_odd = torch.as_tensor(res.sum_odd, dtype=torch.float64).to(self.device).clone()
        self.n_even, self.n_odd = int(res.n_even), int(res.n_odd)
        self.score_sum, self.score_sq_sum = float(res.score_sum), float(res.score_sq_sum)
        self.next_block = int(res.next_block)
        self.center = float(res.center)
        if self.cv is not None:
            for key in self.cv:
                stored = torch.as_tensor(np.asarray(res.cv_state[key]), dtype=torch.float64)
                if stored.shape != self.cv[key].shape:
                    raise ResultError(
                        f"cannot resume: control-variate {key} has shape "
                        f"{tuple(stored.shape)}, not {tuple(self.cv[key].shape)}"
                    )
                self.cv[key] = stored.to(self.device).clone()
        log.info("resuming at block %d (%d masks done)", self.next_block, self.n_even + self.n_odd)

    def result(
        self, n_requested: int, complete: bool, stopped: bool, target: float | None, t0: float
    ) -> RISEResult:
        e = self.cfg.expected_value
        n = self.n_even + self.n_odd
        importance = self.maps()[2]
        return RISEResult(
            importance=importance,
            n_masks=n,
            n_masks_requested=int(n_requested),
            seed=self.seed,
            mask_config=self.cfg,
            expected_mask=e,
            estimator=self.estimator,
            center=self.center,
            agreement=self.agreement(),
            sum_even=self.sum_even.cpu().numpy().copy(),
            sum_odd=self.sum_odd.cpu().numpy().copy(),
            n_even=self.n_even,
            n_odd=self.n_odd,
            score_sum=self.score_sum,
            score_sq_sum=self.score_sq_sum,
            next_block=self.next_block,
            complete=complete,
            stopped_early=stopped,
            until_agreement=target,
            precision=self.precision,
            spectrogram=self.spec.cpu().numpy().copy(),
            elapsed_s=time.perf_counter() - t0,
            cv_state=None if self.cv is None else {k: v.cpu().numpy().copy()
                                                   for k, v in self.cv.items()},
            meta={"fill": "reference"} if isinstance(self.fill, torch.Tensor) else {},
        )  # fmt: skip

    def _show(self, bar, target: float) -> None:
        """Bar of a run with a stop: estimated r and, once the run may stop, the total set to
        the projected stopping point (:func:`noise_ratio` averaged over the last half of the
        masks so far: early agreements overstate the noise, the latest alone is noisy)."""
        agr = self.agreement()
        n = self.n_even + self.n_odd
        bar.set_postfix_str(f"r≈{estimated_correlation(agr):.4f} (split-half {agr:.4f})",
                            refresh=False)  # fmt: skip
        if self.next_block >= MIN_AGREEMENT_BLOCKS:
            x = noise_ratio(self.n_even, self.n_odd, agr)
            if math.isfinite(x):
                self.noise_ratios.append((n, x))
            recent = [x for m, x in self.noise_ratios if 2 * m >= n]  # the last half of the run
            if recent:
                mean_x = sum(recent) / len(recent)
                bar.total = projected_masks(
                    mean_x, target, n=n, n_max=self.n_total, block=self.cfg.block_size
                )
        bar.refresh()

    def _comm_device(self) -> torch.device:
        nccl = self.ctx is not None and self.ctx.backend == "nccl"
        return self.device if nccl else torch.device("cpu")

    def _gather(self, sums, stats, extra, blocks: list[int], per_rank: int):
        """All ranks' per-block sums of one round, as (block, sums, stats, cv sums or None)
        in block order (``sums``, ``stats``, ``extra`` as :meth:`block_sums` gives them; None
        on a rank without blocks this round)."""
        if self.ctx is None:
            return list(zip(blocks, sums, stats, extra or [None] * len(blocks), strict=True))
        t_, f_ = self.shape
        dev = self._comm_device()
        pad_sums = torch.zeros(per_rank, t_, f_, dtype=torch.float64, device=dev)
        pad_stats = torch.zeros(per_rank, 3, dtype=torch.float64, device=dev)
        pad_stats[:, 0] = -1  # block index; -1 = padding
        k = len(blocks)
        if k:
            pad_sums[:k] = sums.to(dev)
            pad_stats[:k, 0] = torch.tensor(blocks, dtype=torch.float64)
            pad_stats[:k, 1:] = stats.to(dev)
        all_sums = self.ctx.all_gather(pad_sums)
        all_stats = self.ctx.all_gather(pad_stats)
        all_extra = self._gather_cv(extra, per_rank) if self.cv is not None else None
        out = []
        for r, (s_r, st_r) in enumerate(zip(all_sums, all_stats, strict=True)):
            for j in range(per_rank):
                b = int(st_r[j, 0])
                if b >= 0:
                    ext = None if all_extra is None else all_extra[j][r]
                    out.append((b, s_r[j].to(self.device), st_r[j, 1:].to(self.device), ext))
        out.sort(key=lambda item: item[0])
        return out

    def _gather_cv(self, extra: list | None, per_rank: int) -> list[list[list[torch.Tensor]]]:
        """All ranks' control-variate sums of one round: ``[slot][rank]`` -> (Σ z zᵀ, Σ z s)
        of that rank's block in that slot (zeros for padding). One ``all_gather`` of one
        block's K² + K float64 per slot."""
        dev = self._comm_device()
        k = self.surrogate.n_features
        shapes = [(k, k), (k,)]  # one block's Σ z zᵀ and Σ z s
        sizes = [math.prod(sh) for sh in shapes]
        out = []
        for j in range(per_rank):
            flat = torch.zeros(sum(sizes), dtype=torch.float64, device=dev)
            if extra is not None and j < len(extra):
                flat.copy_(torch.cat([part.reshape(-1) for part in extra[j]]).to(dev))
            out.append([
                [p.view(sh).to(self.device)
                 for p, sh in zip(g.split(sizes), shapes, strict=True)]
                for g in self.ctx.all_gather(flat)
            ])  # fmt: skip
        return out

    def execute(self, n_blocks: int, target: float | None, ex: RISEExecution) -> RISEResult:
        t0 = time.perf_counter()
        n_requested = self.n_total
        checkpoint, checkpoint_every = ex.checkpoint, ex.checkpoint_every
        block = self.cfg.block_size
        rank = self.ctx.rank if self.ctx is not None else 0
        ckpt_blocks = -(-checkpoint_every // block) if checkpoint_every else None
        since_ckpt = 0
        stopped = False
        bar = None
        first = ex.on_first_batch if rank == 0 else None
        if ex.progress and rank == 0:
            # with a stop, the total is the projected stopping point (no ETA until known)
            bar = tqdm(
                total=self.n_total if target is None else None,
                initial=sum(self.block_len(b) for b in range(self.next_block)),
                unit="mask",
                unit_scale=True,
                desc="RISE" if target is None else (
                    f"RISE until r {estimated_correlation(target):.3f}, at most "
                    f"{self.n_total:,}"
                ),
                dynamic_ncols=True,
            )  # fmt: skip
        try:
            while self.next_block < n_blocks and not stopped:
                per_rank = max(1, self.batch_size // block)
                if self.ctx is not None:  # ranks must agree on the round's block assignment
                    per_rank = self.ctx.min_int(per_rank, device=self._comm_device())
                start = self.next_block
                mine = [
                    b
                    for b in range(start + rank * per_rank, start + (rank + 1) * per_rank)
                    if b < n_blocks
                ]
                if mine:
                    sums, stats, extra = self.block_sums(mine)
                else:
                    sums = stats = extra = None
                round_items = self._gather(sums, stats, extra, mine, per_rank)
                if first is not None:
                    done = sum(self.block_len(b) for b, *_ in round_items)
                    first(done / max(time.perf_counter() - t0, 1e-9))
                    first = None
                for b, total, st, ext in round_items:
                    self.fold(b, total, st, ext)
                    since_ckpt += 1
                    if bar is not None:
                        bar.update(self.block_len(b))
                    nblk = self.next_block
                    if target is not None and bar is not None:
                        self._show(bar, target)
                    if target is not None and nblk >= MIN_AGREEMENT_BLOCKS:
                        agr = self.agreement()
                        if agr >= target:
                            log.info(
                                "split-half agreement %.4f ≥ %.4f (estimated r %.4f with the "
                                "converged map) after %d masks",
                                agr, target, estimated_correlation(agr), self.n_even + self.n_odd,
                            )  # fmt: skip
                            stopped = True
                            break
                    if (
                        checkpoint is not None
                        and ckpt_blocks
                        and since_ckpt >= ckpt_blocks
                        and nblk < n_blocks
                        and rank == 0
                    ):
                        checkpoint(self.result(n_requested, False, False, target, t0))
                        since_ckpt = 0
        finally:
            if bar is not None:
                bar.close()
        res = self.result(n_requested, True, stopped, target, t0)
        log.info(
            "RISE: %d masks in %.1f s (%.0f masks/s), split-half agreement %.4f",
            res.n_masks,
            res.elapsed_s,
            res.n_masks / max(res.elapsed_s, 1e-9),
            res.agreement,
        )
        return res


def _state_problems(res: RISEResult) -> list[str]:
    """Why the running state of a (partial) result is not internally consistent, if it is not."""
    problems = []
    block = res.mask_config.block_size
    n_even, n_odd, nb = int(res.n_even), int(res.n_odd), int(res.next_block)
    last = n_even + n_odd - (nb - 1) * block  # masks of block nb - 1 (all but it are full)
    full_even, full_odd = nb // 2, (nb - 1) // 2  # full blocks among 0 .. nb - 2
    ok = (
        n_even == n_odd == 0
        if nb == 0
        else (
            nb > 0
            and 0 < last <= block
            and n_even == full_even * block + (last if (nb - 1) % 2 == 0 else 0)
            and n_odd == full_odd * block + (last if (nb - 1) % 2 == 1 else 0)
        )
    )
    if not ok:
        problems.append(
            f"block counters do not add up (next block {nb}, {n_even} even + {n_odd} odd masks, "
            f"blocks of {block})"
        )
    if not (np.isfinite(res.sum_even).all() and np.isfinite(res.sum_odd).all()):
        problems.append("its running sums are not finite")
    if not (math.isfinite(res.score_sum) and math.isfinite(res.score_sq_sum)):
        problems.append("its score sums are not finite")
    return problems
