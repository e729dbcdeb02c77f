"""Project your own embeddings with t-SNE and measure nearest-normal distances (Table III).

Bring any ``(N, D)`` array of embeddings from any model plus a label per row; here they are
drawn at random: normal clips around a few cluster centres on the unit sphere, anomalous clips
nearby but off-centre.

    python examples/project_own_embeddings.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from asdxai.embed import TSNEConfig, nearest_normal_distances, run_tsne


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="write project_own_embeddings.png here")
    p.add_argument("--quick", action="store_true", help="fewer points and t-SNE iterations")
    args = p.parse_args(argv)

    # 1. Your embeddings (N, D) and labels; here: 4 machine types, 64-D, unit-normalised.
    rng = np.random.default_rng(0)
    n = 40 if args.quick else 150
    centres = rng.standard_normal((4, 64))
    machine = np.repeat(np.arange(4), n)
    normal = centres[machine] + 0.3 * rng.standard_normal((4 * n, 64))
    anomalous = centres[machine[: 4 * n // 5]] + 0.9 * rng.standard_normal((4 * n // 5, 64))
    emb = np.vstack([normal, anomalous])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = ["normal"] * len(normal) + ["anomaly"] * len(anomalous)
    machines = [f"type{m}" for m in machine] + [f"type{m}" for m in machine[: len(anomalous)]]

    # 2a. The distances alone, on any points (here the embeddings themselves, cosine).
    is_anomaly = np.array(labels) == "anomaly"
    d = nearest_normal_distances(emb, is_anomaly, metric="cosine")
    print(f"embedding space: mean cosine distance to the nearest normal clip {d.mean():.3f}")

    # 2b. t-SNE projection + distances in 2-D + a separation report, in one call.
    cfg = TSNEConfig(seed=0, n_iter=250 if args.quick else 500)
    result = run_tsne(emb, {"label": labels, "machine": machines}, cfg=cfg, name="my model")
    print(f"t-SNE: {result.projection.shape} points, mean 2-D nearest-normal distance "
          f"{result.mean_distance:.3f}")  # fmt: skip

    if args.out is not None:
        from asdxai.plots.tsne import plot_tsne

        fig = plot_tsne(
            result.projection, result.is_anomaly, color_by=np.array(machines), title="my model"
        )
        args.out.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out / "project_own_embeddings.png", dpi=100)
        print("wrote", args.out / "project_own_embeddings.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
