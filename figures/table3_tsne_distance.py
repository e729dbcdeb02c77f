"""Table III of the study: mean distance of anomalous clips to the nearest normal clip.

For the six models of Fig. 5 and every trial: project the dev-test embeddings with t-SNE and
average, over the anomalous clips, the Euclidean distance in 2-D to the closest normal clip;
then mean ± std over trials. Beside it, the same trials' AUC per domain (study protocol, as in
Table II), and in the JSON the Spearman rank correlation over the six models between the mean
2-D distance and the mean AUC (the study: the distances "agree with the performance results").
Writes ``table3_tsne_distance.{csv,md,tex}`` (and ``.json`` with the per-trial values and the
same distance measured in the embedding space, cosine).

    python figures/table3_tsne_distance.py [--data ROOT] [--out DIR] [--device cpu] [--quick]
"""

from __future__ import annotations

import sys

from _common import TSNE_MODELS, Study, parser


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    from scipy.stats import spearmanr

    from asdxai import metrics
    from asdxai.embed import trial_table

    study = Study(parser("Table III: nearest-normal distances in the t-SNE views").parse_args(argv))
    per_trial, per_trial_cos = {}, {}
    per_trial_auc: dict[str, dict[str, list[float]]] = {"source": {}, "target": {}}
    for recipe, title in TSNE_MODELS:
        results = [study.tsne(recipe, seed) for seed in study.seeds()]
        per_trial[title] = [r.mean_distance for r in results]
        per_trial_cos[title] = [float(r.distances_embedding.mean()) for r in results]
        for seed in study.seeds():
            summary = study.scores(recipe, seed)["study"]
            for domain, values in per_trial_auc.items():
                values.setdefault(title, []).append(summary[f"hmean_auc_{domain}"])
    tables = {"distance_2d": per_trial, "cosine_embedding": per_trial_cos,
              **{f"auc_{d}": v for d, v in per_trial_auc.items()}}  # fmt: skip
    stats = {name: {r["label"]: r for r in trial_table(v)} for name, v in tables.items()}
    rows = [
        {"model": title, "trials": stats["distance_2d"][title]["n_trials"],
         **{name: metrics.MeanStd(s[title]["mean"], s[title]["std"], s[title]["n_trials"])
            for name, s in stats.items()}}
        for _, title in TSNE_MODELS
    ]  # fmt: skip
    distance = [stats["distance_2d"][t]["mean"] for _, t in TSNE_MODELS]
    auc = [np.mean([stats[f"auc_{d}"][t]["mean"] for d in per_trial_auc]) for _, t in TSNE_MODELS]
    rho = float(spearmanr(distance, auc).statistic)
    paths = metrics.write_tables(rows, study.layout.table("table3_tsne_distance"), digits=3)
    study.write_json("table3_tsne_distance",
                     {"per_trial_2d": per_trial, "per_trial_cosine": per_trial_cos,
                      "per_trial_auc": per_trial_auc,
                      "spearman_distance_vs_mean_auc": rho})  # fmt: skip
    print(metrics.format_terminal(rows, digits=3), end="")
    print(f"Spearman rank correlation of the 2-D distance with the mean AUC over the "
          f"{len(TSNE_MODELS)} models: {rho:+.2f}")  # fmt: skip
    print("wrote", ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
