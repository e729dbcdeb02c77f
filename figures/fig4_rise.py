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
    from asdxai.inference import score_records
    from asdxai.plots.rise import clip_label, measures_caption, plot_importance_grid
    from asdxai.workflows.explain import Explainer, MapSettings, top_anomalous_clips

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
    test = study.records("dev-test")
    settings = MapSettings(n_masks=n_masks, seed=seed, until_agreement=agreement)
    execution = RISEExecution(progress=study.progress)

    explainers = {}
    for recipe, title in MODELS:
        path, _ = study.checkpoint(recipe, seed)
        explainers[title] = (recipe, Explainer(path, device=study.device))
    ref = explainers[MODELS[0][1]][1]
    clips = top_anomalous_clips(test, score_records(ref.scorer, ref.ckpt, test,
                                                    progress=study.progress))  # fmt: skip
    if not clips:
        raise SystemExit("fig4: no anomalous dev-test clip with a ground-truth mask in the data")

    rows, table, captions = [], [], []
    for clip in clips:
        maps, log_spec, caption = {}, None, {}
        for title, (recipe, explainer) in explainers.items():
            folder = study.work / "rise" / study.key(recipe) / f"seed{seed}-n{n_masks}-a{agreement}"
            item = explainer.explain(
                clip.path, section=clip.section_key, settings=settings, execution=execution,
                out_stem=folder / clip.machine / clip.path.stem, plot=False,
            )  # fmt: skip
            maps[title] = item.result.importance
            caption[title] = measures_caption(item.measures)
            log_spec = item.log_spec
            table.append({
                "clip": clip.name, "machine": clip.machine, "model": title,
                "n_masks": int(item.result.n_masks), "agreement": float(item.result.agreement),
                **item.measures,
            })  # fmt: skip
        rows.append((clip_label(clip.machine, clip.section, clip.name, clip.label), log_spec, maps))
        captions.append(caption)

    fig = plot_importance_grid(
        rows, ref.ckpt.features, captions=captions,
        title="RISE maps under the spectrogram-only encoders ("
        + ", ".join(recipe for recipe, _ in MODELS) + ")",
    )  # fmt: skip
    paths = study.save(fig, "fig4_rise")
    write_csv(study.out / "fig4_rise.csv", table)
    info = {"clips": [str(c.path) for c in clips], "maps": table, "n_masks_max": n_masks}
    study.write_json("fig4_rise.json", {**info, "agreement": agreement})
    for r in table:
        measures = ", ".join(f"{k} {r[k]:.3f}" for k in r if k not in
                             ("clip", "machine", "model", "n_masks", "agreement"))  # fmt: skip
        print(f"{r['clip']:60s} {r['model']:30s} masks {r['n_masks']:6d} {measures}")
    print("wrote", ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
