"""openTSNE projection of embeddings, and placing new points into an existing projection."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._checks import Integral, Interval, Real, check_params
from .._io import config_from_dict, config_to_dict
from ..errors import ConfigError, DataError, ResultError

log = logging.getLogger(__name__)

_INITIALIZATIONS = ("pca", "random", "spectral")
#: Distances t-SNE and the nearest-normal measures accept.
METRICS = ("euclidean", "cosine")


@dataclass(frozen=True)
class TSNEConfig:
    """Settings of the t-SNE projection (openTSNE defaults unless the study says otherwise).

    The embeddings are unit-normalised, so ``metric="euclidean"`` and ``"cosine"``
    give the same neighbour order: on the unit sphere ``‖a - b‖² = 2 - 2 cos(a, b)``
    (Lemma 5 of the study). Euclidean is the default because openTSNE's exact and
    approximate neighbour searches are fastest for it.
    """

    perplexity: float = 30.0  # effective number of neighbours; lowered to (N - 1) / 3 for tiny N
    learning_rate: float | str = "auto"  # "auto" = N / early_exaggeration (Belkina et al. 2019)
    n_iter: int = 500  # iterations after the early-exaggeration phase (openTSNE default)
    early_exaggeration_iter: int = 250  # iterations with exaggerated attraction (openTSNE default)
    early_exaggeration: float | str = "auto"  # "auto" = 12 (openTSNE default)
    initialization: str = "pca"  # "pca" | "random" | "spectral"; pca keeps global structure
    metric: str = "euclidean"  # "euclidean" | "cosine" -- same neighbours on the unit sphere
    neighbors: str = "auto"  # "auto" (exact below 1000 points, Annoy above) | "exact" | "approx"
    negative_gradient_method: str = "auto"  # "auto" (Barnes-Hut below 10k points, FFT above)
    seed: int = 0  # random_state of the neighbour search, initialisation and optimisation
    n_jobs: int = 1  # threads for neighbour search and gradients

    def __post_init__(self) -> None:
        positive, count = (Real, Interval(0, None, closed="neither")), (Integral, Interval(0, None))
        numbers = {"perplexity": self.perplexity, "n_iter": self.n_iter,
                   "early_exaggeration_iter": self.early_exaggeration_iter}  # fmt: skip
        for name in ("learning_rate", "early_exaggeration"):  # a positive number or "auto"
            value = getattr(self, name)
            if isinstance(value, str) and value != "auto":
                raise ConfigError(f"{name} must be 'auto' or a positive number, got {value!r}",
                                  param=name)  # fmt: skip
            if not isinstance(value, str):
                numbers[name] = value
        check_params({"perplexity": positive, "learning_rate": positive,
                      "early_exaggeration": positive, "n_iter": count,
                      "early_exaggeration_iter": count}, **numbers)  # fmt: skip
        if self.initialization not in _INITIALIZATIONS:
            raise ConfigError(
                f"t-SNE initialization must be one of {_INITIALIZATIONS}, "
                f"got {self.initialization!r}"
            )
        if self.metric not in METRICS:
            raise ConfigError(f"t-SNE metric must be one of {METRICS}, got {self.metric!r}")
        if self.neighbors not in ("auto", "exact", "approx", "annoy"):
            raise ConfigError(f"t-SNE neighbors must be auto|exact|approx, got {self.neighbors!r}")
        if self.negative_gradient_method not in ("auto", "bh", "fft"):
            raise ConfigError(
                "t-SNE negative_gradient_method must be auto|bh|fft, "
                f"got {self.negative_gradient_method!r}"
            )
        if (
            isinstance(self.n_jobs, bool)
            or not isinstance(self.n_jobs, int)
            or (self.n_jobs == 0 or self.n_jobs < -1)
        ):
            raise ConfigError(f"t-SNE n_jobs must be >= 1 or -1 (all cores), got {self.n_jobs!r}")

    @property
    def threads(self) -> int:
        """Threads actually used: ``n_jobs`` capped at the machine's cores (-1 = all of them).

        More threads than cores only slow openTSNE down (130x at 1000 threads on 2 cores), and
        huge counts crash it.
        """
        cores = os.cpu_count() or 1
        return cores if self.n_jobs == -1 else min(self.n_jobs, cores)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TSNEConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (newer files)."""
        return config_from_dict(cls, d, known_only=True)


def _check_matrix(x: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (N, D), got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise DataError(f"{name} has {x.shape[0]} rows; need at least {min_rows}")
    if x.shape[1] < 1:
        raise DataError(f"{name} has no columns")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{name} contains NaN or infinite values")
    return x


#: openTSNE runs the callbacks (and the progress bar's tick) every this many iterations.
CALLBACK_EVERY = 50


def _tsne(cfg: TSNEConfig, n: int, callbacks: Any = None) -> Any:
    # openTSNE on first use: its import costs ~4/5 of torch's (measured)
    import openTSNE

    perplexity = cfg.perplexity
    max_perplexity = (n - 1) / 3
    if perplexity > max_perplexity:
        log.warning(
            "perplexity %.3g is too large for %d points; using %.3g", perplexity, n, max_perplexity
        )
        perplexity = max_perplexity
    return openTSNE.TSNE(
        n_components=2,
        perplexity=perplexity,
        learning_rate=cfg.learning_rate,
        n_iter=cfg.n_iter,
        early_exaggeration_iter=cfg.early_exaggeration_iter,
        early_exaggeration=cfg.early_exaggeration,
        initialization=cfg.initialization,
        metric=cfg.metric,
        neighbors=cfg.neighbors,
        negative_gradient_method=cfg.negative_gradient_method,
        n_jobs=cfg.threads,
        random_state=cfg.seed,
        callbacks=callbacks,
        callbacks_every_iters=CALLBACK_EVERY,
        verbose=False,
    )


def project(
    embeddings: np.ndarray,
    *,
    cfg: TSNEConfig | None = None,
    callbacks: Any = None,
    progress: bool = False,
) -> Any:
    """Project embeddings to 2-D with openTSNE.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(N, D)]
        Embeddings (unit-norm in asdxai, but any finite vectors work). N >= 4.
    cfg : TSNEConfig, optional
        Projection settings; the default follows openTSNE's defaults.
    callbacks : callable or list of callables, optional
        openTSNE callbacks ``(iteration, error, embedding) -> bool`` (True stops).
    progress : show a bar over the optimisation's iterations (exaggeration phase, then the rest)

    Returns
    -------
    openTSNE.TSNEEmbedding [shape=(N, 2)]
        An ndarray subclass that can :meth:`~openTSNE.TSNEEmbedding.transform` new
        points. The same input, config and seed give the same coordinates
        (with ``n_jobs=1``; approximate neighbours with more threads may differ slightly).
    """
    cfg = cfg or TSNEConfig()
    x = _check_matrix(embeddings, "embeddings", min_rows=4).astype(np.float64, copy=False)
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.early_exaggeration_iter + cfg.n_iter, desc="t-SNE", unit="it",
               disable=not progress, leave=False)  # fmt: skip

    def tick(iteration: int, error: float, embedding: Any) -> bool:
        bar.update(CALLBACK_EVERY)
        return False

    user = [] if callbacks is None else callbacks if isinstance(callbacks, list) else [callbacks]
    tsne = _tsne(cfg, x.shape[0], [*user, tick] if progress else callbacks)
    with bar:
        emb = tsne.fit(np.ascontiguousarray(x))
    log.info(
        "t-SNE of %d x %d embeddings: %.1f s", x.shape[0], x.shape[1], time.perf_counter() - t0
    )
    return emb


def transform(embedding: Any, new_points: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Place new points into an existing projection (openTSNE ``TSNEEmbedding.transform``).

    The reference points stay fixed; each new point starts at the median of its
    nearest reference neighbours and is optimised against the reference only.

    Parameters
    ----------
    embedding : openTSNE.TSNEEmbedding [shape=(M, 2)]
        Result of :func:`project` or :func:`reference_embedding`.
    new_points : np.ndarray [shape=(N, D)]
        New embeddings, same D as the reference's input.
    **kwargs
        Passed to ``TSNEEmbedding.transform`` (``perplexity=5``, ``n_iter=250``, ...).

    Returns
    -------
    np.ndarray [shape=(N, 2)] float64
    """
    x = _check_matrix(new_points, "new_points").astype(np.float64, copy=False)
    d_ref = embedding.affinities.knn_index.data.shape[1]
    if x.shape[1] != d_ref:
        raise DataError(
            f"new points have dimension {x.shape[1]}, the reference projection was built on {d_ref}"
        )
    t0 = time.perf_counter()
    out = embedding.transform(np.ascontiguousarray(x), **kwargs)
    log.info("t-SNE transform of %d points: %.1f s", x.shape[0], time.perf_counter() - t0)
    return np.asarray(out, dtype=np.float64)


def reference_embedding(
    embeddings: np.ndarray, projection: np.ndarray, *, cfg: TSNEConfig | None = None
) -> Any:
    """Rebuild a transformable ``TSNEEmbedding`` from stored embeddings and their projection.

    Used for ``--transform REF.h5``: the affinities (neighbour index) are recomputed
    from ``embeddings`` with ``cfg``'s perplexity / metric / seed; the coordinates
    are the stored ``projection`` unchanged.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(M, D)]
    projection : np.ndarray [shape=(M, 2)]
    cfg : TSNEConfig, optional
    """
    # openTSNE on first use: its import costs ~4/5 of torch's (measured)
    import openTSNE

    cfg = cfg or TSNEConfig()
    x = _check_matrix(embeddings, "reference embeddings", min_rows=4).astype(np.float64)
    y = _check_matrix(projection, "reference projection", min_rows=4)
    if y.shape != (x.shape[0], 2):
        raise ResultError(f"reference projection has shape {y.shape}, expected ({x.shape[0]}, 2)")
    perplexity = min(cfg.perplexity, (x.shape[0] - 1) / 3)
    aff = openTSNE.affinity.PerplexityBasedNN(
        np.ascontiguousarray(x),
        perplexity=perplexity,
        method=cfg.neighbors,
        metric=cfg.metric,
        n_jobs=cfg.threads,
        random_state=cfg.seed,
        verbose=False,
    )
    return openTSNE.TSNEEmbedding(
        np.asarray(y, dtype=np.float64),
        aff,
        negative_gradient_method=cfg.negative_gradient_method,
        random_state=cfg.seed,
        n_jobs=cfg.threads,
    )
