"""The study's explanation, measured: where do the RISE maps of the two models look?

The study (Sec. IV-E, Fig. 4) says the classifier-trained model "learns to ignore noise and
isolate the targeted machine sound" (its map's structure follows the machine, the machine's
high-energy regions read as normal), while the one-class model's map "looks almost random" or
follows background events. On the synthetic tree every test clip has a machine / background
ground truth, so this can be measured (:func:`asdxai.explain.focus.map_focus`):

* machine focus: max(A, 1 - A), A the AUC with which the map's values separate machine-dominant
  from background-dominant cells (0.5 = chance; 1 = the map ranks the machine apart, either way);
* machine contrast: 2 A - 1, its signed twin (negative = machine regions read as normal);
* machine correlation: Pearson r of the map with the machine-to-background level (negative =
  machine regions read as normal, as in Fig. 4b);
* machine r beyond energy: the partial correlation of the map and the level given the clip's log
  spectrogram (0 = nothing beyond what the cells' loudness explains);
* event share: the map's |deviation| mass on background-event cells over their area share
  (> 1 = drawn to background events);
* pixel AUC and pointing game against the anomaly mask (anomalous clips).

Every measure is reported beside the same measure of the clip's *energy map* (its log
spectrogram, a map that knows nothing of the model): the baseline column, and per measure how
many (clip, trial) maps of SC-AdaCos beat the one-class model's and the energy map's. The
measures are recomputed from the maps (cached maps get the current definitions).

Models: the two spectrogram-only recipes of Fig. 4, ``--trials`` seeds each (trained and cached
like every figure script; seed 0 on the default ``small`` tree is the bundled model). Clips: for
every machine type and domain of dev-test section 00 the first anomalous and the first normal
clip (14 + 14). Maps: the ``asdxai rise`` pipeline, separable masks, centred estimator, stopped at
a split-half agreement of ``--agreement`` (0.95: the full map then has a Spearman-Brown
reliability of 2r / (1 + r) = 0.97). Reported: mean ± std per model (over clips and trials)
for anomalous and normal clips, per machine type, and a paired Wilcoxon signed-rank test over
(clip, trial) pairs for each measure. Writes ``focus_claim.csv`` (one row per map),
``focus_claim.md`` and ``focus_claim.json``.

    python figures/focus_claim.py [--data ROOT] [--out DIR] [--trials 3] [--quick]
"""

from __future__ import annotations

import sys

from _common import Study, parser, write_csv

MODELS = (
    ("synthetic-small-sc-adacos-attribute-spectrogram", "SC-AdaCos"),
    ("synthetic-small-compactness-none-spectrogram", "IC compactness"),
)
MEASURES = ("machine_focus", "machine_contrast", "machine_correlation", "machine_partial_r",
            "event_share", "pixel_auc", "pointing_game")  # fmt: skip
#: Column of the energy-map baseline in the tables.
ENERGY = "energy map"


def pick_clips(records: list, section: str = "00") -> list:
    """The first anomalous and the first normal clip of every machine type and domain."""
    picked, seen = [], set()
    for r in records:
        key = (r.machine, r.domain, r.label)
        if r.section == section and key not in seen:
            seen.add(key)
            picked.append(r)
    return sorted(picked, key=lambda r: (r.label, r.machine, r.domain))


def paired_p(a: dict, b: dict) -> float:
    """Paired Wilcoxon signed-rank p over the keys both ``{pair key: value}`` dicts hold
    (finite values only; nan with fewer than 5 pairs or no difference)."""
    import numpy as np
    from scipy.stats import wilcoxon

    keys = [k for k in a if k in b]
    x = np.array([a[k] for k in keys], dtype=float)
    y = np.array([b[k] for k in keys], dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 5 or not np.any(x[ok] != y[ok]):
        return float("nan")
    return float(wilcoxon(x[ok], y[ok]).pvalue)


def map_parser(description: str, models: tuple = MODELS):
    """The figure scripts' parser plus the map options of the focus scripts (``--model``: one
    of the titles of ``models``, (name, title) pairs)."""
    p = parser(description)
    p.add_argument("--agreement", type=float, default=None,
                   help="stop each map at this split-half agreement (default: 0.95; 0.9 with "
                   "--quick)")  # fmt: skip
    p.add_argument(
        "--n-masks",
        type=int,
        default=None,
        help="upper bound of masks per map (default: 64000; 8000 with --quick)",
    )
    p.add_argument(
        "--model",
        choices=[t for _, t in models],
        default=None,
        help="only compute this model's maps (to run the models in separate processes "
        "on one work folder; a run without it then only reads the cached maps)",
    )
    return p


def map_limits(args, study: Study) -> tuple[float, int]:
    """(split-half agreement, most masks) of every map: the options, else the defaults."""
    agreement = args.agreement or (0.9 if study.quick else 0.95)
    return agreement, args.n_masks or (8000 if study.quick else 64000)


def map_row(explainer, clip, settings, execution, folder, **columns) -> dict:
    """Compute (or load) the map of ``clip`` into ``folder``; its row of the per-map CSV: the
    map's :data:`MEASURES` and the energy map's (``energy_<measure>``), recomputed from the map."""
    from asdxai.layout import Layout
    from asdxai.workflows.explain import map_measures

    item = explainer.explain(
        clip.path, section=clip.section_key, settings=settings, execution=execution,
        out_stem=Layout(folder).map_stem(clip.path), plot=False,
    )  # fmt: skip
    measures = map_measures(item.result.importance, clip.path, log_energy=item.log_spec)
    nan = float("nan")
    return {"clip": clip.name, "machine": clip.machine, "domain": clip.domain, **columns,
            "n_masks": item.result.n_masks, "agreement": item.result.agreement,
            "score": item.score, **{m: measures.get(m, nan) for m in MEASURES},
            **{f"energy_{m}": measures.get(f"energy_{m}", nan) for m in MEASURES}}  # fmt: skip


def write_report(study: Study, stem: str, rows: list[dict], text: str, info: dict) -> None:
    """Write ``<stem>.csv`` (one row per map), ``<stem>.md`` (``text``) and ``<stem>.json``
    (``info``) to the output folder, and print ``text``."""
    write_csv(study.layout.csv(stem), rows)
    study.layout.markdown(stem).write_text(text)
    study.write_json(stem, info)
    print(text)


def finite_stats(values) -> tuple[float, float, int]:
    """(mean, std, count) of the finite ``values``; (nan, nan, 0) if there are none."""
    import numpy as np

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return (float(v.mean()), float(v.std()), int(v.size)) if v.size else (np.nan, np.nan, 0)


def stats_cell(stats: tuple[float, float, int], digits: int = 3) -> str:
    """A table cell ``mean ± std`` of :func:`finite_stats` output ("—" without values)."""
    mean, std, n = stats
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n else "—"


def per_map(rows: list[dict], measure: str, models: tuple = MODELS) -> dict[str, dict]:
    """model title (and :data:`ENERGY`) -> {(machine, clip, trial, ...): value} of ``measure``,
    for the (name, title) pairs ``models``; the energy map's values are read from the first
    model's rows (the same clip, the same map)."""
    keys = [k for k in ("machine", "clip", "trial", "mode", "fill") if rows and k in rows[0]]
    titles = [t for _, t in models]
    out = {t: {tuple(r[k] for k in keys): r[measure] for r in rows if r["model"] == t}
           for t in titles}  # fmt: skip
    out[ENERGY] = {tuple(r[k] for k in keys): r[f"energy_{measure}"]
                   for r in rows if r["model"] == titles[0]}  # fmt: skip
    return out


def wins(a: dict, b: dict) -> str:
    """``k/n``: on how many of the keys both hold (finite values) ``a`` is above ``b``."""
    import numpy as np

    pairs = [(a[k], b[k]) for k in a if k in b and np.isfinite(a[k]) and np.isfinite(b[k])]
    return f"{sum(x > y for x, y in pairs)}/{len(pairs)}" if pairs else "—"


def summarise(rows: list[dict]) -> tuple[str, dict]:
    """Markdown tables and a JSON summary of the per-map rows."""
    titles = [t for _, t in MODELS]
    out: dict = {"overall": {}, "per_machine": {}, "wilcoxon": {}, "wins": {}}
    lines = []
    for label in ("anomaly", "normal"):
        sel = [r for r in rows if r["label"] == label]
        n_maps = len({(r["machine"], r["clip"], r["trial"]) for r in sel})
        lines += [f"\n### {label} clips ({n_maps} maps per "
                  "model)\n", "| measure | " + " | ".join([*titles, ENERGY])
                  + f" | paired Wilcoxon p | {titles[0]} > {titles[1]} | {titles[0]} > energy |",
                  "|---|" + "---|" * (len(titles) + 4)]  # fmt: skip
        for m in MEASURES:
            per = per_map(sel, m)
            cells = []
            for t in [*titles, ENERGY]:
                s = finite_stats(per[t].values())
                cells.append(stats_cell(s))
                out["overall"].setdefault(label, {}).setdefault(m, {})[t] = list(s)
            p = paired_p(per[titles[0]], per[titles[1]])
            out["wilcoxon"].setdefault(label, {})[m] = p
            energy = {k[:2]: v for k, v in per[ENERGY].items()}  # one energy map per clip
            vs_energy = {k: energy[k[:2]] for k in per[titles[0]] if k[:2] in energy}
            won = [wins(per[titles[0]], per[titles[1]]), wins(per[titles[0]], vs_energy)]
            out["wins"].setdefault(label, {})[m] = won
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {p:.2g} | " + " | ".join(won)
                         + " |")  # fmt: skip
    machines = sorted({r["machine"] for r in rows})
    lines += [
        "\n### machine focus per machine type (all clips)\n",
        "| machine | " + " | ".join([*titles, ENERGY]) + " |",
        "|---|" + "---|" * (len(titles) + 1),
    ]
    for mach in machines:
        cells = []
        per = per_map([r for r in rows if r["machine"] == mach], "machine_focus")
        for t in [*titles, ENERGY]:
            mean, std, n = finite_stats(per[t].values())
            cells.append(f"{mean:.2f} ± {std:.2f}")
            out["per_machine"].setdefault(mach, {})[t] = [mean, std, n]
        lines.append(f"| {mach} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", out


def main(argv: list[str] | None = None) -> int:
    from asdxai.explain import RISEExecution
    from asdxai.workflows.explain import Explainer, MapSettings

    p = map_parser("The study's explanation, measured: machine focus of two models' RISE maps")
    args = p.parse_args(argv)
    if args.trials is None and not args.quick:
        args.trials = 3
    study = Study(args)
    agreement, n_masks = map_limits(args, study)
    clips = pick_clips(study.records("dev-test"))
    if not clips:
        raise SystemExit("focus_claim: no dev-test clips of section 00 in the data")
    execution = RISEExecution(progress=study.progress)
    rows = []
    for seed in study.seeds():
        settings = MapSettings(n_masks=n_masks, seed=seed, until_agreement=agreement)
        for recipe, title in MODELS:
            if args.model not in (None, title):
                continue
            path, _ = study.checkpoint(recipe, seed)
            explainer = Explainer(path, device=study.device)
            folder = study.map_folder(recipe, seed, n_masks, agreement)
            for clip in clips:
                rows.append(map_row(explainer, clip, settings, execution, folder,
                                    label=clip.label, model=title, trial=seed))  # fmt: skip
    head = (f"{len(clips)} clips x {len(study.seeds())} trials x {len(MODELS)} models; maps to "
            f"split-half agreement {agreement} (at most {n_masks} masks)\n")  # fmt: skip
    return finish(study, args, "focus_claim", rows, clips, head, summarise, agreement, n_masks)


def finish(study: Study, args, stem: str, rows: list[dict], clips: list, head: str, summarise_fn,
           agreement: float, n_masks: int) -> int:  # fmt: skip
    """The end of a map script: with ``--model`` only the maps were wanted; else the tables of
    ``summarise_fn(rows)`` under ``head``, written by :func:`write_report`."""
    if args.model is not None:
        print(f"computed the maps of {args.model}; run without --model for the tables")
        return 0
    text, summary = summarise_fn(rows)
    write_report(study, stem, rows, head + text,
                 {"summary": summary, "agreement": agreement, "n_masks_max": n_masks,
                  "clips": [str(c.path) for c in clips]})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
