"""Table II of the study: AUC / pAUC per domain, harmonic means over sections, every model.

One row per ``synthetic-small-*`` recipe in ``asdxai/recipes/`` (the eight DCASE2022 rows of the
study at width 0.25, plus the two spectrogram-only models of Fig. 4), ``--trials`` seeds each,
scored on dev-test with the study's protocol (a domain's AUC/pAUC from that domain's normal and
anomalous clips) and the DCASE organisers' protocol; mean ± std over trials. Writes
``table2_performance_<protocol>.{csv,md,tex}`` and ``table2_performance.json`` (per trial).

    python figures/table2_performance.py [--data ROOT] [--out DIR] [--device cpu] [--quick]
        [--trials N] [--recipes NAME ...]
"""

from __future__ import annotations

import sys

from _common import Study, parser, short, synthetic_recipes


def main(argv: list[str] | None = None) -> int:
    from asdxai import metrics

    p = parser("Table II: AUC/pAUC of every synthetic recipe, mean ± std over trials")
    p.add_argument("--recipes", nargs="+", default=None,
                   help="only these recipes (default: every synthetic-small-* recipe)")  # fmt: skip
    args = p.parse_args(argv)
    study = Study(args)
    recipes = args.recipes or synthetic_recipes()
    per_trial: dict[str, dict[str, list[dict]]] = {"study": {}, "dcase": {}}
    for recipe in recipes:
        for seed in study.seeds():
            summary = study.scores(recipe, seed)
            for protocol, values in summary.items():
                per_trial[protocol].setdefault(recipe, []).append(values)
    paths = []
    for protocol, by_recipe in per_trial.items():
        rows = [
            metrics.performance_row(short(r), metrics.trials_table(s)) for r, s in by_recipe.items()
        ]
        paths += metrics.write_tables(rows, study.layout.table(f"table2_performance_{protocol}"))
        print(f"\n[{protocol} protocol, mean ± std over {study.trials} trial(s)]")
        print(metrics.format_terminal(rows), end="")
    study.write_json("table2_performance", {"recipes": recipes, "per_trial": per_trial})
    print("wrote", ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
