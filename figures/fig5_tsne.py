"""Fig. 5 of the study: t-SNE views of the dev-test embeddings of six models.

Panels (a)-(f): IC compactness with no auxiliary classes / machine types / machine types +
sections / one model per section / attribute classes, and sub-cluster AdaCos with attribute
classes (recipes ``synthetic-small-compactness-*`` and ``synthetic-small-sc-adacos-attribute``,
first seed). Normal clips as dots, anomalous clips as crosses. The same models and projections
feed ``table3_tsne_distance.py``.

    python figures/fig5_tsne.py [--data ROOT] [--out DIR] [--device cpu] [--quick]
"""

from __future__ import annotations

import sys

from _common import TSNE_MODELS, Study, parser


def main(argv: list[str] | None = None) -> int:
    from asdxai.plots.tsne import plot_tsne_panels, result_panel

    study = Study(parser("Fig. 5: t-SNE views of six models' embedding spaces").parse_args(argv))
    panels, info = [], {}
    for recipe, title in TSNE_MODELS:
        result = study.tsne(recipe, study.seed)
        panels.append(result_panel(result, title))
        info[recipe] = {"mean_nearest_normal_2d": result.mean_distance,
                        "n_clips": int(len(result.projection))}  # fmt: skip
        print(f"{title:45s} mean nearest-normal distance {result.mean_distance:.3f}")
    paths = study.save(plot_tsne_panels(panels, ncols=3), "fig5_tsne")
    study.write_json("fig5_tsne", {"models": info})
    print("wrote", ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
