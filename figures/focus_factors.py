"""Does the focus finding depend on how RISE masks? Mask mode x fill value as factors.

``focus_claim.py`` masks with separable time x frequency masks and fills masked cells with
silence (the study's setting). Masking to silence removes the machine together with the
background, so a map could look at the machine only because removing it changes the score. Here
the same maps are computed, on one trial and the anomalous clips of ``focus_claim.py``, for
every combination of

* mask mode: ``separable`` (the study), ``time`` (whole frames) and ``freq`` (whole bins);
* fill value: ``silence`` (0) and ``mean`` (the clip's mean linear magnitude, one number per
  clip: masked cells keep the clip's average loudness but lose their structure);

and the measures of :func:`asdxai.explain.focus.map_focus` are compared between the two models
(mean ± std over clips, paired Wilcoxon signed-rank over clips) in each condition, beside the
clip's energy map (its log spectrogram: the baseline column, the same in every condition). A
time-only map is constant along frequency and a frequency-only map constant along time, so their
machine focus only measures whether the machine's *frames* (or *bins*) stand out. Writes
``focus_factors.csv`` (one row per map), ``focus_factors.md`` and ``focus_factors.json``; the
separable / silence maps are shared with ``focus_claim.py`` (same cache folder).

    python figures/focus_factors.py [--data ROOT] [--out DIR] [--seed 0] [--model TITLE]
"""

from __future__ import annotations

import itertools
import sys

from _common import Study
from focus_claim import (
    ENERGY,
    MEASURES,
    MODELS,
    finite_stats,
    map_limits,
    map_parser,
    map_row,
    paired_p,
    per_map,
    pick_clips,
    stats_cell,
    wins,
    write_report,
)

MODES = ("separable", "time", "freq")
FILLS = ("silence", "mean")


def summarise(rows: list[dict]) -> tuple[str, dict]:
    """One Markdown table per measure: conditions x models, with the paired Wilcoxon p."""
    titles = [t for _, t in MODELS]
    lines, out = [], {}
    for m in MEASURES:
        lines += [f"\n### {m}\n", "| mask mode | fill | " + " | ".join([*titles, ENERGY])
                  + f" | paired Wilcoxon p | {titles[0]} > {titles[1]} | {titles[0]} > energy |",
                  "|---|---|" + "---|" * (len(titles) + 4)]  # fmt: skip
        for mode, fill in itertools.product(MODES, FILLS):
            sel = [r for r in rows if (r["mode"], r["fill"]) == (mode, fill)]
            if not sel:
                continue
            per = per_map(sel, m)
            cells, stats = [], {}
            for t in [*titles, ENERGY]:
                s = finite_stats(per[t].values())
                stats[t] = list(s) if s[2] else None
                cells.append(stats_cell(s))
            p = paired_p(per[titles[0]], per[titles[1]])
            won = [wins(per[titles[0]], per[titles[1]]), wins(per[titles[0]], per[ENERGY])]
            out.setdefault(m, {})[f"{mode}/{fill}"] = {"models": stats, "wilcoxon_p": p,
                                                      "wins": won}  # fmt: skip
            lines.append(f"| {mode} | {fill} | " + " | ".join(cells) + f" | {p:.2g} | "
                         + " | ".join(won) + " |")  # fmt: skip
    return "\n".join(lines) + "\n", out


def main(argv: list[str] | None = None) -> int:
    from asdxai.explain import RISEExecution, RISEMaskConfig
    from asdxai.workflows.explain import Explainer, MapSettings

    p = map_parser("Mask mode x fill value as factors of the focus measures (one trial)")
    args = p.parse_args(argv)
    study = Study(args)
    agreement, n_masks = map_limits(args, study)
    clips = [c for c in pick_clips(study.records("dev-test")) if c.label == "anomaly"]
    if not clips:
        raise SystemExit("focus_factors: no anomalous dev-test clips of section 00 in the data")
    execution = RISEExecution(progress=study.progress)
    seed, rows = study.seed, []
    for recipe, title in MODELS:
        if args.model not in (None, title):
            continue
        path, _ = study.checkpoint(recipe, seed)
        explainer = Explainer(path, device=study.device)
        for clip in clips:
            mean_level = float(explainer.inputs(clip.path).spec.mean())
            for mode, fill in itertools.product(MODES, FILLS):
                config = RISEMaskConfig(mode=mode, fill=mean_level if fill == "mean" else 0.0)
                settings = MapSettings(config, n_masks, seed, until_agreement=agreement)
                # separable / silence is focus_claim's own setting: its folder, its maps
                condition = "" if (mode, fill) == ("separable", "silence") else f"{mode}-{fill}"
                folder = study.map_folder(recipe, seed, n_masks, agreement, condition)
                rows.append(map_row(explainer, clip, settings, execution, folder, model=title,
                                    mode=mode, fill=fill, fill_value=config.fill))  # fmt: skip
    if args.model is not None:
        print(f"computed the maps of {args.model}; run without --model for the tables")
        return 0
    text, summary = summarise(rows)
    head = (f"{len(clips)} anomalous clips x {len(MODES) * len(FILLS)} conditions x "
            f"{len(MODELS)} models, trial (seed) {seed}; maps to split-half agreement "
            f"{agreement} (at most {n_masks} masks)\n")  # fmt: skip
    write_report(study, "focus_factors", rows, head + text,
                 {"summary": summary, "agreement": agreement, "n_masks_max": n_masks,
                  "seed": seed, "clips": [str(c.path) for c in clips]})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
