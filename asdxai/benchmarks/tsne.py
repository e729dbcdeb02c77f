"""``asdxai bench tsne``: openTSNE vs scikit-learn's TSNE on the same embeddings.

Synthetic 256-D unit vectors with two-level cluster structure (7 "machine types" x
6 "sections", as in DCASE2022) are projected by both libraries in one run. For
each size the benchmark prints wall and CPU time, the speed ratios and two quality
measures of the 2-D result: kNN accuracy of the section labels (k = 10, 5-fold
cross-validation) and trustworthiness (k = 10, on a subsample for large N).

Goal (issue 7): openTSNE >= 3x faster than scikit-learn at N = 4,200 with equal
or better quality. Both libraries run with their default schedules (openTSNE:
250 early-exaggeration + 500 iterations; scikit-learn: ``max_iter=1000`` in total)
and the same number of threads (``--n-jobs``, also applied to OpenMP/BLAS pools).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ..embed import TSNEConfig, project

log = logging.getLogger(__name__)


def synthetic_embeddings(
    n: int,
    *,
    dim: int = 256,
    n_groups: int = 7,
    n_sub: int = 6,
    spread: float = 0.8,
    noise: float = 2.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors with cluster structure: ``n_groups`` x ``n_sub`` sub-clusters.

    Returns
    -------
    x : np.ndarray [shape=(n, dim)] float32, unit rows
    labels : np.ndarray [shape=(n,)] int64, sub-cluster index (0 ... n_groups * n_sub - 1)
    """
    rng = np.random.default_rng(seed)

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    groups = unit(rng.standard_normal((n_groups, dim)))
    subs = unit(groups[:, None, :] + spread * unit(rng.standard_normal((n_groups, n_sub, dim))))
    subs = subs.reshape(-1, dim)
    labels = rng.integers(0, len(subs), size=n)
    x = subs[labels] + noise * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return unit(x).astype(np.float32), labels.astype(np.int64)


def knn_accuracy(points: np.ndarray, labels: np.ndarray, *, k: int = 10, seed: int = 0) -> float:
    """5-fold cross-validated accuracy of a k-nearest-neighbour classifier on ``points``."""
    # scikit-learn on first use: its import costs ~3/4 of torch's (measured); most runs skip it
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), points, labels, cv=cv).mean())


def trust(
    x: np.ndarray, y: np.ndarray, *, k: int = 10, max_points: int = 2000, seed: int = 0
) -> float:
    """scikit-learn's trustworthiness on at most ``max_points`` random rows."""
    # scikit-learn on first use: its import costs ~3/4 of torch's (measured); most runs skip it
    from sklearn.manifold import trustworthiness

    if len(x) > max_points:
        idx = np.random.default_rng(seed).choice(len(x), max_points, replace=False)
        x, y = x[idx], y[idx]
    return float(trustworthiness(x, y, n_neighbors=k))


def _time(fn: Any) -> tuple[np.ndarray, float, float]:
    """Result, wall seconds and CPU seconds of this process (all its threads).

    CPU time is the fairer measure on a shared machine: other processes stretch the
    wall time but not the CPU time a single-threaded run needs.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return np.asarray(out, dtype=np.float64), time.perf_counter() - t0, time.process_time() - c0


def benchmark(
    *,
    sizes: Sequence[int] = (1000, 4200, 20000),
    dim: int = 256,
    seed: int = 0,
    n_jobs: int = 1,
    sklearn: bool = True,
    sklearn_max_iter: int | None = None,
    method: str = "auto",
) -> list[dict[str, Any]]:
    """Project the same synthetic embeddings with openTSNE and scikit-learn; one row per size.

    Returns
    -------
    list of dict with ``n``, ``opentsne_s``, ``sklearn_s``, ``speedup``, ``knn_input``,
    ``knn_opentsne``, ``knn_sklearn``, ``trust_opentsne``, ``trust_sklearn``.
    """

    rows = []
    for n in sizes:
        x, labels = synthetic_embeddings(n, dim=dim, seed=seed)
        row: dict[str, Any] = {"n": n, "knn_input": knn_accuracy(x, labels, seed=seed)}
        with threadpool_limits(limits=n_jobs):
            y, t, c = _time(
                lambda x=x: project(
                    x, cfg=TSNEConfig(seed=seed, n_jobs=n_jobs, negative_gradient_method=method)
                )
            )
            row.update(
                opentsne_s=t,
                opentsne_cpu_s=c,
                knn_opentsne=knn_accuracy(y, labels, seed=seed),
                trust_opentsne=trust(x, y, seed=seed),
            )
            log.info("N=%d openTSNE %.1f s", n, t)
            if sklearn:
                # scikit-learn on first use (its import costs ~3/4 of torch's, measured)
                from sklearn.manifold import TSNE

                kw: dict[str, Any] = {"max_iter": sklearn_max_iter} if sklearn_max_iter else {}
                sk = TSNE(
                    n_components=2,
                    perplexity=30.0,
                    init="pca",
                    learning_rate="auto",
                    random_state=seed,
                    n_jobs=n_jobs,
                    **kw,
                )
                y2, t2, c2 = _time(lambda x=x, sk=sk: sk.fit_transform(x))
                row.update(
                    sklearn_s=t2,
                    sklearn_cpu_s=c2,
                    speedup=t2 / t,
                    speedup_cpu=c2 / c,
                    knn_sklearn=knn_accuracy(y2, labels, seed=seed),
                    trust_sklearn=trust(x, y2, seed=seed),
                    sklearn_iter=int(sk.n_iter_),
                )
                log.info("N=%d scikit-learn %.1f s", n, t2)
        rows.append(row)
    return rows


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of :func:`benchmark` rows."""
    head = (
        f"{'N':>6} {'oT wall':>8} {'sk wall':>8} {'speedup':>8} {'oT cpu':>8} {'sk cpu':>8} "
        f"{'speedup':>8} {'kNN in':>7} "
        f"{'kNN oT':>7} {'kNN sk':>7} {'trust oT':>8} {'trust sk':>8}"
    )
    lines = [head]
    nan = float("nan")
    for r in rows:
        lines.append(
            f"{r['n']:>6d} {r['opentsne_s']:>8.1f} {r.get('sklearn_s', nan):>8.1f} "
            f"{r.get('speedup', nan):>7.2f}x {r['opentsne_cpu_s']:>8.1f} "
            f"{r.get('sklearn_cpu_s', nan):>8.1f} {r.get('speedup_cpu', nan):>7.2f}x "
            f"{r['knn_input']:>7.3f} {r['knn_opentsne']:>7.3f} "
            f"{r.get('knn_sklearn', nan):>7.3f} {r['trust_opentsne']:>8.3f} "
            f"{r.get('trust_sklearn', nan):>8.3f}"
        )
    return "\n".join(lines)
