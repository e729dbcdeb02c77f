"""RISE masks: small random binary grids, linearly up-sampled and randomly shifted.

Mask modes (:attr:`RISEMaskConfig.mode`)
---------------------------------------
``"separable"`` (default, the study)  M = t fᵀ, E[M] = p²
``"time"``                            M = t 1ᵀ (whole frames kept or masked), E[M] = p
``"freq"``                            M = 1 fᵀ (whole bins kept or masked, as FreqRISE), E[M] = p
``"grid"``                            the original 2-D RISE: a ``time_cells x freq_cells``
                                      grid of independent Bernoulli(p) cells, bilinearly
                                      up-sampled to ``(cells + 1) * cell_size`` per axis and
                                      cropped at a random 2-D shift, E[M] = p. Not separable:
                                      every mask is a dense (T, F) array (see
                                      :mod:`asdxai.explain.rise` for the cost).

The study masks a spectrogram with a *separable* mask M = t fᵀ, where the time
mask t ∈ [0, 1]^T and the frequency mask f ∈ [0, 1]^F are each built exactly like
one axis of the original RISE mask (Petsiuk et al., 2018):

1. draw ``cells`` binary values, each 1 (kept) with probability ``p_keep``;
2. up-sample them with linear interpolation (half-pixel centres, i.e.
   ``align_corners=False``) to ``(cells + 1) * cell_size`` samples, where
   ``cell_size = ceil(size / cells)``;
3. crop ``size`` samples starting at a uniformly random shift in ``[0, cell_size)``.

Every sample of an up-sampled mask is a convex combination of one or two
independent Bernoulli(p) cells, so ``E[t_j] = p`` exactly at every position, and
because t and f are independent, ``E[M_jk] = p²`` (0.5625 for the study's
p = 0.75) — :attr:`RISEMaskConfig.expected_value` computes it from the settings.
The second moment ``E[t_j t_a]`` has a closed form too (:func:`mask_second_moment`),
which the tests use to derive the exact expectation of RISE on a linear black box.

Reproducibility
---------------
Masks come in fixed *blocks* of ``block_size`` masks. Block ``b`` of seed ``s``
is drawn from a CPU ``torch.Generator`` seeded with
``numpy.random.SeedSequence([s, b]).generate_state(2, uint32)`` (joined to one
64-bit integer and reduced to 63 bits). Only the tiny random part (cell bits and
shifts, ``block_size x (time_cells + freq_cells + 2)`` numbers) is drawn on the
CPU, which makes the masks identical on every device and in every process; the
up-sampling and cropping run on the target device, batch by batch. Any split of
the blocks over batches, interruptions or processes therefore sums to the same map.

A "grid" block draws, in this order, the cell grid ``(block_size, time_cells,
freq_cells)`` (680 numbers per mask for the default 20 x 34 cells, still tiny next
to a T x F mask), the time shifts and the frequency shifts. Bilinear interpolation with
half-pixel centres is separable (linear along time of linear along frequency), so
:func:`upsample_grid` applies the 1-D weights along each axis; every mask value is a
convex combination of up to four Bernoulli(p) cells and ``E[M_jk] = p`` everywhere.

Sampling (:attr:`RISEMaskConfig.sampling`)
------------------------------------------
Every random number of a block (cell bits ``u < p``, shifts ``floor(u · cell_size)``)
comes from uniforms u. ``"iid"`` (default, the study) draws them independently.
The variance-reducing samplings keep every single mask's distribution exactly (so
E[M], E[s M] and the map's expectation are unchanged) and only couple masks of a
block: the block is split into two *folds*, the even- and the odd-indexed masks,
each drawn independently of the other (so a surrogate fitted on one fold is
independent of the other's masks), and within a fold

* ``"antithetic"``: consecutive pairs use u and 1 − u (kept-cell sets that overlap as
  little as Bernoulli(p) allows: P(both dropped) = 0, and mirrored shifts);
* ``"latin"``: a Latin hypercube over the fold's masks for every cell and shift: each
  of m equal strata of [0, 1) holds exactly one u, so every cell is kept in
  round(p·m) ± 1 masks of the fold;
* ``"latin-antithetic"``: a Latin hypercube of half the fold, and its mirror image.

A truncated last block uses the first masks of its folds; each is still a correctly
distributed mask, so the estimate stays unbiased.

Differences from the original code: the original resizes with scikit-image
(``mode="reflect"``), which mirrors the grid at its two ends; here the ends are
clamped (``torch.nn.functional.interpolate``). Both keep ``E[t_j] = p``; only the
first and last half cell of the up-sampled grid differ, and those samples lie
mostly in the part the crop discards.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import Integral, Interval, Real, check_params
from .._io import config_from_dict, config_to_dict
from ..constants import DEFAULT_BLOCK_SIZE, DENSE_MODES, SAMPLINGS
from ..constants import MASK_MODES as MODES
from ..errors import ConfigError

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RISEMaskConfig:
    """Settings of the random RISE masks (stored in every result file)."""

    time_cells: int = 20  # cells of the binary time grid (study: 20)
    freq_cells: int = 34  # cells of the binary frequency grid (study: 34)
    p_keep: float = 0.75  # probability that a cell is kept (study: masked with 0.25)
    mode: str = "separable"  # "separable" (t fᵀ, the study), "time", "freq" or "grid" (2-D)
    fill: float = 0.0  # value of masked-out input: X·M + fill·(1 − M); 0 = silence
    block_size: int = DEFAULT_BLOCK_SIZE  # masks per reproducible block (keyed by seed, index)
    sampling: str = "iid"  # "iid" (the study), "antithetic", "latin", "latin-antithetic"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mask mode {self.mode!r} is not one of {sorted(MODES)}")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(
                f"mask sampling {self.sampling!r} is not one of {list(SAMPLINGS)}", param="sampling"
            )
        count = (Integral, Interval(1, None))
        check_params({"time_cells": count, "freq_cells": count, "block_size": count,
                      "p_keep": (Real, Interval(0, 1, closed="neither")), "fill": (Real, None)},
                     time_cells=self.time_cells, freq_cells=self.freq_cells,
                     block_size=self.block_size, p_keep=self.p_keep, fill=self.fill)  # fmt: skip

    @property
    def random_axes(self) -> tuple[bool, bool]:
        """(time randomised, frequency randomised) for this mode."""
        return MODES[self.mode]

    @property
    def dense(self) -> bool:
        """True for modes whose masks are not separable ("grid")."""
        return self.mode in DENSE_MODES

    @property
    def expected_value(self) -> float:
        """E[M] at every position: p² for "separable", p for "time", "freq" and "grid"."""
        if self.dense:
            return float(self.p_keep)
        return float(self.p_keep) ** sum(self.random_axes)

    def check_input(self, shape: tuple[int, int]) -> None:
        """Raise :class:`ConfigError` if the masks cannot cover an input of ``shape`` (T, F)."""
        if len(shape) != 2 or min(shape) <= 0:
            raise ConfigError(f"RISE explains one (T, F) spectrogram, got shape {tuple(shape)}")
        t, f = shape
        use_t, use_f = self.random_axes
        if use_t and self.time_cells > t:
            raise ConfigError(f"time_cells {self.time_cells} exceeds the {t} frames of the input")
        if use_f and self.freq_cells > f:
            raise ConfigError(f"freq_cells {self.freq_cells} exceeds the {f} bins of the input")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RISEMaskConfig:
        return config_from_dict(cls, data, known_only=True)


def block_seed(seed: int, block: int, *, stream: int = 0) -> int:
    """63-bit generator seed of mask block ``block`` for run seed ``seed`` (both ≥ 0).

    ``stream`` separates independent mask streams of one run: 0 = the masks of the
    estimate (entropy ``[seed, block]``), 1 = the pilot block of the centred estimator
    (entropy ``[seed, block, 1]``).
    """
    check_params({"seed": (Integral, Interval(0, None)), "block": (Integral, Interval(0, None))},
                 seed=seed, block=block)  # fmt: skip
    entropy = [int(seed), int(block)] + ([int(stream)] if stream else [])
    lo, hi = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return ((int(hi) << 32) | int(lo)) & (2**63 - 1)


@dataclass(frozen=True)
class MaskBlock:
    """The random part of one block of masks (on the CPU; tiny).

    Attributes
    ----------
    time_grid : Tensor [shape=(B, time_cells)], float32 0/1 (None when time is not
        randomised, and in "grid" mode)
    time_shift : Tensor [shape=(B,)], int64 in [0, time cell size)
    freq_grid, freq_shift : the same for frequency
    cells : Tensor [shape=(B, time_cells, freq_cells)], float32 0/1, "grid" mode only
    """

    time_grid: torch.Tensor | None
    time_shift: torch.Tensor | None
    freq_grid: torch.Tensor | None
    freq_shift: torch.Tensor | None
    cells: torch.Tensor | None = None

    def __len__(self) -> int:
        for grid in (self.cells, self.time_grid, self.freq_grid):
            if grid is not None:
                return int(grid.shape[0])
        return 0


def cell_size(cells: int, size: int) -> int:
    """Up-sampled length of one cell, ``ceil(size / cells)`` as in the original RISE."""
    return -(-size // cells)


def draw_block(
    cfg: RISEMaskConfig, shape: tuple[int, int], *, seed: int, block: int, stream: int = 0
) -> MaskBlock:
    """Draw the cell bits and shifts of block ``block`` (deterministic in (seed, block, stream)).

    The draw order is fixed: time grid, time shifts, frequency grid, frequency shifts
    (axes that are not randomised are skipped); "grid" mode: the 2-D cell grid, time
    shifts, frequency shifts.
    """
    gen = torch.Generator(device="cpu").manual_seed(block_seed(seed, block, stream=stream))
    n = cfg.block_size
    if cfg.sampling != "iid":
        return _coupled_block(cfg, shape, gen)
    if cfg.dense:
        cells = (torch.rand(n, cfg.time_cells, cfg.freq_cells, generator=gen) < cfg.p_keep).to(
            torch.float32
        )
        t_shift = torch.randint(0, cell_size(cfg.time_cells, shape[0]), (n,), generator=gen)
        f_shift = torch.randint(0, cell_size(cfg.freq_cells, shape[1]), (n,), generator=gen)
        return MaskBlock(None, t_shift, None, f_shift, cells=cells)
    use_t, use_f = cfg.random_axes
    out: list[torch.Tensor | None] = []
    for use, cells, size in ((use_t, cfg.time_cells, shape[0]), (use_f, cfg.freq_cells, shape[1])):
        if not use:
            out += [None, None]
            continue
        grid = (torch.rand(n, cells, generator=gen) < cfg.p_keep).to(torch.float32)
        shift = torch.randint(0, cell_size(cells, size), (n,), generator=gen)
        out += [grid, shift]
    return MaskBlock(*out)


def coupled_uniforms(n: int, k: int, *, sampling: str, gen: torch.Generator) -> torch.Tensor:
    """Uniforms [shape=(n, k)] in [0, 1), each marginally U(0, 1), coupled by ``sampling``.

    Rows 0, 2, 4, ... (fold 0) and 1, 3, 5, ... (fold 1) are drawn independently; within a
    fold, "antithetic" pairs rows as (u, 1 − u), "latin" stratifies every column.
    """
    antithetic, latin = "antithetic" in sampling, "latin" in sampling
    out = torch.empty(n, k, dtype=torch.float64)
    for fold in (0, 1):
        m = (n - fold + 1) // 2  # rows of this fold
        h = -(-m // 2) if antithetic else m
        if latin:
            strata = torch.argsort(torch.rand(h, k, generator=gen, dtype=torch.float64), dim=0)
            u = (strata + torch.rand(h, k, generator=gen, dtype=torch.float64)) / h
        else:
            u = torch.rand(h, k, generator=gen, dtype=torch.float64)
        if antithetic:  # 1 − u lies in (0, 1]; nudge the (measure-zero) 1 below 1
            u = torch.stack([u, (1.0 - u).clamp(max=1.0 - 2**-53)], 1).reshape(2 * h, k)
        out[fold::2] = u[:m]
    return out


def _coupled_block(cfg: RISEMaskConfig, shape: tuple[int, int], gen: torch.Generator) -> MaskBlock:
    """A block drawn from :func:`coupled_uniforms` (cells: u < p; shifts: floor(u · size))."""
    n, p = cfg.block_size, cfg.p_keep

    def shifts(u: torch.Tensor, cells: int, size: int) -> torch.Tensor:
        return (u * cell_size(cells, size)).floor().to(torch.int64)

    if cfg.dense:
        tc, fc = cfg.time_cells, cfg.freq_cells
        u = coupled_uniforms(n, tc * fc + 2, sampling=cfg.sampling, gen=gen)
        cells = (u[:, : tc * fc] < p).to(torch.float32).view(n, tc, fc)
        t_shift = shifts(u[:, -2], tc, shape[0])
        f_shift = shifts(u[:, -1], fc, shape[1])
        return MaskBlock(None, t_shift, None, f_shift, cells=cells)
    out: list[torch.Tensor | None] = []
    for use, cells, size in zip(
        cfg.random_axes, (cfg.time_cells, cfg.freq_cells), shape, strict=True
    ):
        if not use:
            out += [None, None]
            continue
        u = coupled_uniforms(n, cells + 1, sampling=cfg.sampling, gen=gen)
        out += [(u[:, :cells] < p).to(torch.float32), shifts(u[:, cells], cells, size)]
    return MaskBlock(*out)


def upsample(grid: torch.Tensor, shift: torch.Tensor, size: int) -> torch.Tensor:
    """Linear up-sampling to ``(cells + 1) * cell_size`` and a crop of ``size`` at ``shift``.

    Parameters
    ----------
    grid : Tensor [shape=(B, cells)], 0/1 cell values (any float dtype, any device)
    shift : Tensor [shape=(B,)], int64 crop offsets in [0, cell_size)
    size : int, length of the output axis (T or F)

    Returns
    -------
    Tensor [shape=(B, size)], values in [0, 1], on ``grid``'s device.
    """
    cells = grid.shape[1]
    up = (cells + 1) * cell_size(cells, size)
    ups = F.interpolate(grid[:, None, :], size=up, mode="linear", align_corners=False)[:, 0]
    idx = shift.to(grid.device)[:, None] + torch.arange(size, device=grid.device)[None, :]
    return torch.gather(ups, 1, idx)  # (B, size)


def upsample_grid(
    cells: torch.Tensor,
    time_shift: torch.Tensor,
    freq_shift: torch.Tensor,
    *,
    shape: tuple[int, int],
) -> torch.Tensor:
    """Bilinear up-sampling of 2-D cell grids and a crop of ``shape`` at a 2-D shift.

    Equal to ``F.interpolate(cells[:, None], size=((tc + 1) * cs_t, (fc + 1) * cs_f),
    mode="bilinear", align_corners=False)`` cropped at ``(time_shift, freq_shift)``.
    Bilinear interpolation is separable, so every mask is ``W_t[s]ᵀ G W_f[r]`` with the
    1-D interpolation weights of :func:`interpolation_weights` for its shifts (s, r):
    two batched matrix products, B·tc·F·(fc + T) multiply-adds per batch.

    Parameters
    ----------
    cells : Tensor [shape=(B, time_cells, freq_cells)], 0/1 cell values (any device)
    time_shift, freq_shift : Tensor [shape=(B,)], int64 crop offsets
    shape : (T, F) of the output

    Returns
    -------
    Tensor [shape=(B, T, F)], values in [0, 1], a new tensor on ``cells``' device.
    """
    _, tc, fc = cells.shape
    dev, dtype = cells.device, cells.dtype
    wt = _weights(tc, shape[0], str(dev), dtype)  # (cs_t, tc, T)
    wf = _weights(fc, shape[1], str(dev), dtype)  # (cs_f, fc, F)
    h = torch.bmm(cells, wf[freq_shift.to(dev)])  # (B, tc, F)
    return torch.bmm(wt[time_shift.to(dev)].transpose(1, 2), h)  # (B, T, F)


@functools.lru_cache(maxsize=32)
def _weights(cells: int, size: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """Cached :func:`interpolation_weights` [shape=(cell_size, cells, size)] on a device."""
    return interpolation_weights(cells, size).to(device=device, dtype=dtype)


@dataclass(frozen=True)
class MaskBatch:
    """The masks of one batch, on the device: factors (separable modes) or dense ("grid").

    Attributes
    ----------
    t : Tensor [shape=(B, T)] | None, time factors (None for dense masks)
    f : Tensor [shape=(B, F)] | None, frequency factors (ones for "time" mode)
    dense : Tensor [shape=(B, T, F)] | None, full masks ("grid" mode)
    """

    t: torch.Tensor | None = None
    f: torch.Tensor | None = None
    dense: torch.Tensor | None = None

    def __len__(self) -> int:
        return int((self.dense if self.dense is not None else self.t).shape[0])

    def full(self) -> torch.Tensor:
        """The masks as a new dense tensor [shape=(B, T, F)]."""
        if self.dense is not None:
            return self.dense.clone()
        return torch.einsum("bt,bf->btf", self.t, self.f)

    def apply(self, x_shifted: torch.Tensor, *, fill: float | torch.Tensor = 0.0) -> torch.Tensor:
        """A fresh masked batch ``x_shifted ⊙ M + fill`` [shape=(B, T, F)].

        ``x_shifted`` [shape=(T, F)] is the input minus the fill, so that
        ``(X − fill) ⊙ M + fill = X ⊙ M + fill · (1 − M)``; ``fill`` is a number or a
        reference [shape=(T, F)] whose cells replace the masked ones (e.g. normal content).
        """
        if self.dense is not None:
            x = self.dense * x_shifted  # new tensor; the masks stay intact for the sums
        else:
            x = torch.einsum("bt,bf->btf", self.t, self.f)
            x.mul_(x_shifted)
        if isinstance(fill, torch.Tensor) or fill:
            x.add_(fill)
        return x

    def weighted_sum(self, w: torch.Tensor) -> torch.Tensor:
        """Σ_b w_b M_b [shape=(T, F)] in float32; ``w`` [shape=(B,)].

        Separable: one matrix product Tᵀ diag(w) F. Dense: ``einsum('b,btf->tf')``.
        """
        if self.dense is not None:
            return torch.einsum("b,btf->tf", w, self.dense)
        return (w[:, None] * self.t).T @ self.f

    def weighted_block_sums(self, w: torch.Tensor, k: int) -> torch.Tensor:
        """Per-block Σ w M [shape=(k, T, F)] float32 for a batch of ``k`` equal blocks."""
        n = len(self) // k
        if self.dense is not None:
            d = self.dense
            return torch.einsum("kb,kbtf->ktf", w.view(k, n), d.view(k, n, *d.shape[1:]))
        wt = (w[:, None] * self.t).view(k, n, -1)
        return torch.bmm(wt.transpose(1, 2), self.f.view(k, n, -1))

    @staticmethod
    def cat(batches: list[MaskBatch]) -> MaskBatch:
        """Concatenate batches of the same kind along the mask axis."""
        if batches[0].dense is not None:
            return MaskBatch(dense=torch.cat([b.dense for b in batches]))
        return MaskBatch(t=torch.cat([b.t for b in batches]), f=torch.cat([b.f for b in batches]))


def block_masks(
    block: MaskBlock,
    shape: tuple[int, int],
    *,
    start: int = 0,
    stop: int | None = None,
    device: torch.device | str = "cpu",
) -> MaskBatch:
    """Masks ``start:stop`` of a block, built on ``device`` (factors, or dense for "grid").

    Returns
    -------
    MaskBatch with ``t`` [shape=(B, T)] and ``f`` [shape=(B, F)], or ``dense``
    [shape=(B, T, F)], float32.
    """
    if block.cells is not None:
        stop = len(block) if stop is None else stop
        cells = block.cells[start:stop].to(device, non_blocking=True)
        return MaskBatch(
            dense=upsample_grid(
                cells, block.time_shift[start:stop], block.freq_shift[start:stop], shape=shape
            )
        )
    t, f = block_factors(block, shape, start=start, stop=stop, device=device)
    return MaskBatch(t=t, f=f)


def block_factors(
    block: MaskBlock,
    shape: tuple[int, int],
    *,
    start: int = 0,
    stop: int | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Time and frequency factors of masks ``start:stop`` of a block, built on ``device``.

    Returns
    -------
    t : Tensor [shape=(B, T)], float32
    f : Tensor [shape=(B, F)], float32 (ones for an axis that is not randomised)

    Raises
    ------
    ConfigError
        For a "grid" block (not separable; use :func:`block_masks`).
    """
    if block.cells is not None:
        raise ConfigError("grid masks have no time / frequency factors; use block_masks()")
    stop = len(block) if stop is None else stop
    n = stop - start
    out = []
    for grid, shift, size in (
        (block.time_grid, block.time_shift, shape[0]),
        (block.freq_grid, block.freq_shift, shape[1]),
    ):
        if grid is None:
            out.append(torch.ones(n, size, device=device))
        else:
            g = grid[start:stop].to(device, non_blocking=True)
            out.append(upsample(g, shift[start:stop], size))
    return out[0], out[1]


def generate_masks(
    cfg: RISEMaskConfig,
    shape: tuple[int, int],
    *,
    n_blocks: int = 1,
    seed: int = 0,
    first_block: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """All factors of ``n_blocks`` consecutive blocks (for tests and inspection).

    Returns
    -------
    t : Tensor [shape=(n_blocks * block_size, T)]
    f : Tensor [shape=(n_blocks * block_size, F)]

    Raises
    ------
    ConfigError
        In "grid" mode (no factors; use :func:`generate_full_masks`).
    """
    cfg.check_input(shape)
    if cfg.dense:
        raise ConfigError("grid masks are not separable; use generate_full_masks()")
    ts, fs = [], []
    for b in range(first_block, first_block + n_blocks):
        t, f = block_factors(draw_block(cfg, shape, seed=seed, block=b), shape, device=device)
        ts.append(t)
        fs.append(f)
    return torch.cat(ts), torch.cat(fs)


def generate_full_masks(
    cfg: RISEMaskConfig,
    shape: tuple[int, int],
    *,
    n_blocks: int = 1,
    seed: int = 0,
    first_block: int = 0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Dense masks of ``n_blocks`` consecutive blocks, any mode (tests and inspection).

    Returns
    -------
    Tensor [shape=(n_blocks * block_size, T, F)], float32 in [0, 1]. Memory grows as
    N·T·F: use small blocks.
    """
    cfg.check_input(shape)
    out = [
        block_masks(draw_block(cfg, shape, seed=seed, block=b), shape, device=device).full()
        for b in range(first_block, first_block + n_blocks)
    ]
    return torch.cat(out)


def interpolation_weights(cells: int, size: int) -> torch.Tensor:
    """Weights of the cells in every output sample, one matrix per shift.

    Returns
    -------
    Tensor [shape=(cell_size, cells, size)], float64; ``upsample(g, s) = g @ W[s]``.
    """
    cs = cell_size(cells, size)
    eye = torch.eye(cells, dtype=torch.float64)
    return torch.stack(
        [upsample(eye, torch.full((cells,), s, dtype=torch.int64), size) for s in range(cs)]
    )


def mask_second_moment(cells: int, size: int, p_keep: float) -> torch.Tensor:
    """Exact ``E[t_j t_a]`` of one up-sampled, shifted mask axis.

    With W_s the interpolation weights for shift s (columns sum to 1) and i.i.d.
    Bernoulli(p) cells, ``E[t_j t_a | s] = p² + p(1 − p) (W_sᵀ W_s)_ja``; the shift is
    uniform, so the result is the mean over s.

    Returns
    -------
    Tensor [shape=(size, size)], float64, symmetric; its diagonal is ``E[t_j²]``.
    """
    w = interpolation_weights(cells, size)
    gram = torch.einsum("sci,scj->ij", w, w) / w.shape[0]
    return p_keep**2 + p_keep * (1.0 - p_keep) * gram
