"""The surrogate of the control-variate RISE estimator: a quadratic model of the score in
the mask's pooled time and frequency profiles, with its exact expected map.

For a separable mask M = t fᵀ the features are

    z = [1, P_t t, P_f f, (P_t t)², (P_f f)²]        (squares element-wise)

where P_t [shape=(bins, T)] averages t over ``bins`` contiguous stretches of frames
(:data:`BINS_PER_CELL` per mask cell) and P_f likewise over frequency; an axis that is
not randomised contributes nothing. The surrogate is h(M) = β·z, fitted by ridge least
squares. Measured on the bundled SC-AdaCos spectrogram model (8 clips of ``small``, issue
26; ridge fits on 750 masks, R² on 8,000 others), this model explains more of the score
than one linear in the cells' 0/1 bits (the first surrogate, result format 1): median R²
0.72 vs 0.54 over the 8 clips (gearbox anomaly 0.43 vs 0.19, ToyCar anomaly 0.57 vs
0.45). Pooled profiles alone give 0.66: the squares add most on the clips where the
linear models explain least (the score depends on how much of a stretch is kept, not
linearly). Products of neighbouring stretches, cubes or time x frequency products added
less than 0.03 each. The experiment's scripts are not part of the package; the
estimator's effect on the maps is measured by ``asdxai bench rise --quality``.

Where the remaining noise is (same clips, offline): with β fitted on 8,000 other masks the
surrogate's exact map E[h(M) M] *alone* correlates at r = 0.998 (median) with the
128,000-mask references, yet the unbiased estimate at 1,000 passes reaches only 0.9875
(0.984 with β cross-fitted as here). About 90 % of its error variance is in the map's
additive part (row + column profiles), whose noise is Var(z (s − h))/n: only a better R²
lowers it. Neither 4 or 8 cross-fitting folds instead of 2 (r 0.9854 / 0.9857 at 1,000
passes) nor a plug-in feature tᵀ K f with K the clip's (log-)spectrogram (R² + 0.00–0.01)
changes that much; nor do 3 stretches per cell instead of 2 (median r at 1,000 passes 0.9859
vs 0.9859) or a ridge 10x larger or smaller (0.9843 / 0.9839), measured with
``asdxai.benchmarks.rise_quality`` on the same 8 clips and references.

Exact expectations
------------------
The estimator adds back E[h(M) M] = Σ_k β_k E[z_k M]; every term is separable and in
closed form. Along one axis, with cell bits g (i.i.d. Bernoulli(p)), the up-sampled,
shifted mask t_j = Σ_c g_c W_s[c, j] for a uniform shift s, and a pooled value
X_a = (P t)_a = Σ_c g_c A_s[c, a] (A_s = W_s Pᵀ): with the cumulants κ₁ = p,
κ₂ = p(1 − p), κ₃ = p(1 − p)(1 − 2p) of one bit and Y = t_j,

    E[X Y]  = κ₂ Σ_c A_ca W_cj + E[X] E[Y]
    E[X² Y] = κ₃ Σ_c A_ca² W_cj + 2 κ₂ (Σ_c A_ca W_cj) E[X]
              + κ₂ (Σ_c A_ca²) E[Y] + E[X]² E[Y]

(the moment-cumulant expansion for independent summands), averaged over s. The other
axis contributes its mean, p (or 1). :func:`axis_moments` computes both;
``tests/test_rise.py`` checks them against a Monte-Carlo average.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from .masks import MaskBatch, RISEMaskConfig, interpolation_weights

#: Pooled stretches per mask cell on each axis (at most one per frame / bin).
BINS_PER_CELL = 2
#: Ridge of the surrogate's fit, per mask (the intercept is not penalised).
RIDGE = 3e-3


def pooling_matrix(size: int, bins: int) -> torch.Tensor:
    """Averages over ``bins`` contiguous, near-equal stretches of an axis of ``size``.

    Returns
    -------
    Tensor [shape=(bins, size)], float64; every row sums to 1.
    """
    edges = np.linspace(0, size, bins + 1).round().astype(int)
    out = torch.zeros(bins, size, dtype=torch.float64)
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        out[b, lo:hi] = 1.0 / (hi - lo)
    return out


def axis_moments(
    cells: int, size: int, pool: torch.Tensor, *, p_keep: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[X_a t_j]`` and ``E[X_a² t_j]`` of one mask axis, X = ``pool`` @ t (module docstring).

    Returns
    -------
    lin, sq : Tensor [shape=(bins, size)], float64
    """
    k1, k2, k3 = p_keep, p_keep * (1 - p_keep), p_keep * (1 - p_keep) * (1 - 2 * p_keep)
    weights = interpolation_weights(cells, size)  # (shifts, cells, size)
    a = weights @ pool.T  # (shifts, cells, bins)
    ex = k1 * a.sum(1)  # (shifts, bins) E[X]
    ey = k1 * weights.sum(1)  # (shifts, size) E[Y]
    cross = a.transpose(1, 2) @ weights  # (shifts, bins, size) Σ_c A_ca W_cj
    a2 = a * a
    lin = k2 * cross + ex[:, :, None] * ey[:, None, :]
    sq = (
        k3 * a2.transpose(1, 2) @ weights
        + 2 * k2 * cross * ex[:, :, None]
        + k2 * a2.sum(1)[:, :, None] * ey[:, None, :]
        + (ex * ex)[:, :, None] * ey[:, None, :]
    )
    return lin.mean(0), sq.mean(0)


@functools.lru_cache(maxsize=8)
def _axis(cells: int, size: int, p_keep: float) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The pooling and (lin, sq) moments of one randomised axis, cached: every clip of a
    dataset shares them, and they take ~10 ms per axis to compute. Never written to."""
    pool = pooling_matrix(size, min(size, BINS_PER_CELL * cells))
    return pool, axis_moments(cells, size, pool, p_keep=p_keep)


@dataclass(frozen=True)
class Surrogate:
    """The features of a mask and the expected map of any linear combination of them.

    Build it with :meth:`for_masks`. ``pools[i]`` [shape=(bins, size)] is the pooling of
    axis i (None when it is not randomised), ``moments[i]`` its (lin, sq) of
    :func:`axis_moments`, ``means[i]`` [shape=(size,)] E[t] (p) or 1 along axis i.
    """

    pools: tuple[torch.Tensor | None, torch.Tensor | None]
    moments: tuple[tuple[torch.Tensor, torch.Tensor] | None, ...]
    means: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def for_masks(cls, cfg: RISEMaskConfig, shape: tuple[int, int]) -> Surrogate:
        """The surrogate for masks of ``cfg`` on inputs of ``shape`` (T, F).

        Raises
        ------
        ConfigError
            For "grid" masks (no time and frequency profiles).
        """
        if cfg.dense:
            raise ConfigError("the cv estimator needs separable masks, not 'grid'",
                              param="estimator")  # fmt: skip
        p = float(cfg.p_keep)
        pools, moments, means = [], [], []
        for use, cells, size in zip(cfg.random_axes, (cfg.time_cells, cfg.freq_cells), shape,
                                    strict=True):  # fmt: skip
            means.append(torch.full((size,), p if use else 1.0, dtype=torch.float64))
            if not use:
                pools.append(None)
                moments.append(None)
                continue
            pool, moment = _axis(cells, size, p)
            pools.append(pool)
            moments.append(moment)
        return cls(tuple(pools), tuple(moments), tuple(means))  # type: ignore[arg-type]

    @property
    def n_features(self) -> int:
        """K = 1 + 2 x (pooled stretches of the randomised axes)."""
        return 1 + 2 * sum(p.shape[0] for p in self.pools if p is not None)

    def features(self, masks: MaskBatch) -> torch.Tensor:
        """z [shape=(B, K)], float64, on the masks' device (order: 1, time profile, frequency
        profile, their squares)."""
        factors = (masks.t, masks.f)
        profiles = [
            factor.double() @ pool.to(factor.device).T
            for factor, pool in zip(factors, self.pools, strict=True)
            if pool is not None
        ]
        ones = torch.ones(len(masks), 1, dtype=torch.float64, device=masks.t.device)
        return torch.cat([ones, *profiles, *(x * x for x in profiles)], 1)

    def expected_map(self, beta: np.ndarray) -> np.ndarray:
        """E[(β·z) M] [shape=(T, F)], float64, for coefficients β [shape=(K,)]."""
        beta_t = torch.as_tensor(np.asarray(beta, dtype=np.float64))
        mean_t, mean_f = self.means
        out = beta_t[0] * torch.outer(mean_t, mean_f)
        slices, i = [], 1
        for pool in self.pools:  # the linear terms, then the squares, as in features()
            n = 0 if pool is None else pool.shape[0]
            slices.append(slice(i, i + n))
            i += n
        for power in (0, 1):
            for axis, (mom, sl) in enumerate(zip(self.moments, slices, strict=True)):
                if mom is None:
                    continue
                coef = beta_t[sl.start + power * (i - 1) : sl.stop + power * (i - 1)]
                profile = coef @ mom[power]  # (size,)
                out += torch.outer(profile, mean_f) if axis == 0 else torch.outer(mean_t, profile)
        return out.numpy()


def fit(gram: np.ndarray, zs: np.ndarray, n: int) -> np.ndarray:
    """Ridge least-squares β [shape=(K,)] of s ≈ β·z from Σ z zᵀ and Σ z s over n masks
    (ridge :data:`RIDGE` x n; the intercept unpenalised); zeros when n = 0."""
    if n == 0:
        return np.zeros(len(zs))
    ridge = np.eye(len(zs)) * RIDGE * n
    ridge[0, 0] = 0.0
    return np.linalg.solve(gram + ridge, zs)
