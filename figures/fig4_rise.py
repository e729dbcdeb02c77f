"""Fig. 4 of the study: RISE importance maps of two anomalous test clips under two models.

One row per clip: log spectrogram | RISE map of the sub-cluster AdaCos model trained on
attribute classes | RISE map of the one-class IC compactness model (both spectrogram-only
encoders: recipes ``synthetic-small-sc-adacos-attribute-spectrogram`` and
``synthetic-small-compactness-none-spectrogram``), each panel with its own colour scale.

The clips: the anomalous dev-test clips with a ground-truth anomaly mask that the SC-AdaCos
model ranks highest, from two different machine types. The maps come from the same pipeline as
``asdxai rise`` (:class:`asdxai.workflows.explain.Explainer`): centred estimator, stopped once
the split-half agreement reaches ``--agreement`` (at most ``--n-masks`` masks). The measures of
each map against the clip's ground truth are written to ``fig4_rise.csv`` / ``.json``.

    python figures/fig4_rise.py [--data ROOT] [--out DIR] [--device cpu] [--quick]
"""

from __future__ import annotations

import sys

from _common import Study, parser, write_csv

MODELS = (
    ("synthetic-small-sc-adacos-attribute-spectrogram", "SC-AdaCos, attribute classes"),
    ("synthetic-small-compactness-none-spectrogram", "IC compactness, 1 class"),
)


def main(argv: list[str] | None = None) -> int:
    from asdxai.explain import RISEExecution
    from asdxai.workflows.explain import Explainer, MapSettings
    from asdxai.workflows.figure4 import ExplainedModel, explain_top_clips

    p = parser("Fig. 4: RISE maps of two anomalous clips, SC-AdaCos vs one-class compactness")
    p.add_argument(
        "--n-masks", type=int, default=None,
        help="upper bound of masks per map (default: 64000; 8000 with --quick)",
    )  # fmt: skip
    p.add_argument(
        "--agreement", type=float, default=None,
        help="stop at this split-half agreement (default: 0.99; 0.95 with --quick)",
    )  # fmt: skip
    args = p.parse_args(argv)
    study = Study(args)
    n_masks = args.n_masks or (8000 if study.quick else 64000)
    agreement = args.agreement or (0.95 if study.quick else 0.99)
    seed = study.seed
    settings = MapSettings(n_masks=n_masks, seed=seed, until_agreement=agreement)
    models = [
        ExplainedModel(study.key(recipe), title,
                       Explainer(study.checkpoint(recipe, seed)[0], device=study.device),
                       study.map_folder(recipe, seed, n_masks, agreement))
        for recipe, title in MODELS
    ]  # fmt: skip
    fig4 = explain_top_clips(
        study.records("dev-test"), models, settings=settings,
        execution=RISEExecution(progress=study.progress), progress=study.progress,
    )  # fmt: skip
    if not fig4.clips:
        raise SystemExit("fig4: no anomalous dev-test clip with a ground-truth mask in the data")

    paths = study.save(fig4.figure, "fig4_rise")
    write_csv(study.layout.csv("fig4_rise"), fig4.rows)
    info = {"clips": [str(c.path) for c in fig4.clips], "maps": fig4.rows, "n_masks_max": n_masks}
    study.write_json("fig4_rise", {**info, "agreement": agreement})
    fixed = ("clip", "machine", "section", "label", "model", "n_masks", "agreement")
    for r in fig4.rows:
        measures = ", ".join(f"{k} {r[k]:.3f}" for k in r if k not in fixed)
        print(f"{r['clip']:60s} {r['model']:30s} masks {r['n_masks']:6d} {measures}")
    print("wrote", ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
