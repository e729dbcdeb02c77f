"""The study's argument measured across three detector families, all in the signal domain.

The study (Sections I-II) argues that reconstruction-based detectors -- the DCASE baseline
autoencoder family -- cannot tell the target machine from noise, while a classifier-trained
embedding model learns to isolate the machine. This script measures it: the map measures of
``focus_claim.py`` (:func:`asdxai.workflows.explain.map_measures`: machine focus, the signed
machine contrast, the machine correlation and its partial r *beyond energy*, event share,
pixel AUC and pointing game) and |machine r beyond energy| (how strongly the map follows the
machine beyond the cells' loudness, either sign), with the clip's *energy map* as the baseline
row, for

* the bundled DCASE-baseline-style autoencoder (``asdxai/bundled/autoencoder.pt``: log-mel
  frames with context, dense autoencoder per machine type, reconstruction error as the score);
* the bundled SC-AdaCos spectrogram model (``sc-adacos-attribute-spectrogram.pt``);
* the bundled one-class spectrogram model (``compactness-none-spectrogram.pt``).

The autoencoder reads log-mel frames, the embedding models linear spectrograms: to compare like
with like every map is computed in the *signal* domain (``Explainer(..., domain="signal")``):
RISE's separable masks on the clip's complex STFT on the ground-truth grid (n_fft 1024, hop
512), resynthesised, scored by the detector as it is used. The energy map (the clip's log
spectrogram on that grid) is then the same for the three detectors.

Clips: the anomalous clips of ``focus_claim.py`` (dev-test section 00, the first anomalous clip
of every machine type and domain; ``--clips-per-machine 1`` keeps the source-domain one).
Trial: the bundled models are seed 0 of focus_claim's trials, and the masks take seed
``--seed``. Maps are cached in the work folder (``rise/<detector>-<fingerprint>/signal-...``):
a re-run reads them. Reported: mean ± std per detector and the energy map, and for each
embedding model against the autoencoder a paired Wilcoxon signed-rank test over the clips and
per-clip win counts (how many clips the embedding model's value is above the autoencoder's,
and each detector's above the energy map's), and a per-clip table of the measures of
:data:`COMPARED`. Writes ``focus_families.csv`` (one row per map), ``.md`` and ``.json``.

    python figures/focus_families.py [--data ROOT] [--out DIR] [--clips-per-machine 1]
        [--n-masks 64000] [--agreement 0.95] [--model TITLE] [--autoencoder PATH]
        [--sc-adacos PATH] [--one-class PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

from _common import Study
from focus_claim import (
    ENERGY,
    MEASURES,
    finish,
    finite_stats,
    map_limits,
    map_parser,
    map_row,
    paired_p,
    per_map,
    pick_clips,
    stats_cell,
    wins,
)

#: (bundled name, title); the first is the reconstruction model every other is tested against.
FAMILIES = (
    ("autoencoder", "DCASE autoencoder"),
    ("sc-adacos-attribute-spectrogram", "SC-AdaCos"),
    ("compactness-none-spectrogram", "IC compactness"),
)
#: |machine r beyond energy|: how strongly the map follows the machine beyond the cells'
#: loudness, either sign (as machine focus is to machine contrast); derived per map.
ABS_PARTIAL = "machine_abs_partial_r"
#: The measures of the tables: focus_claim's and :data:`ABS_PARTIAL`.
TABLED = (*MEASURES, ABS_PARTIAL)
#: The measures of the paired tests and the per-clip table.
COMPARED = ("machine_partial_r", ABS_PARTIAL, "machine_contrast", "machine_focus",
            "event_share", "pixel_auc")  # fmt: skip
#: The option that overrides each family's detector (default: the bundled file).
OPTIONS = {"autoencoder": "--autoencoder", "sc-adacos-attribute-spectrogram": "--sc-adacos",
           "compactness-none-spectrogram": "--one-class"}  # fmt: skip


def family_clips(records: list, per_machine: int) -> list:
    """The anomalous clips of :func:`focus_claim.pick_clips`, at most ``per_machine`` per
    machine type (source domain first)."""
    out, count = [], {}
    for clip in pick_clips(records):
        if clip.label == "anomaly" and count.get(clip.machine, 0) < per_machine:
            count[clip.machine] = count.get(clip.machine, 0) + 1
            out.append(clip)
    return out


def summarise(rows: list[dict]) -> tuple[str, dict]:
    """Markdown tables and a JSON summary of the per-map rows of the three families: one row
    per detector and the energy map (mean ± std over the clips), the paired tests of
    :data:`COMPARED` against the autoencoder, and the per-clip values."""
    titles = [t for _, t in FAMILIES]
    base, others = titles[0], titles[1:]
    out: dict = {"overall": {}, "wilcoxon": {}, "wins": {}, "per_clip": {}}
    per = {m: per_map(rows, m, FAMILIES) for m in TABLED}
    n_clips = len(per[TABLED[0]][base])
    lines = [
        f"\n### anomalous clips, signal domain: mean ± std over {n_clips} clips\n",
        "| detector | " + " | ".join(TABLED) + " |",
        "|---|" + "---|" * len(TABLED),
    ]
    for t in [*titles, ENERGY]:
        stats = [finite_stats(per[m][t].values()) for m in TABLED]
        out["overall"][t] = {m: list(s) for m, s in zip(TABLED, stats, strict=True)}
        lines.append(f"| {t} | " + " | ".join(stats_cell(s) for s in stats) + " |")
    head = ["measure", *(f"p ({t} vs {base})" for t in others), *(f"{t} > {base}" for t in others),
            *(f"{t} > {ENERGY}" for t in titles)]  # fmt: skip
    lines += [
        f"\n### paired Wilcoxon tests against the {base}, per-clip wins\n",
        "| " + " | ".join(head) + " |",
        "|---|" + "---|" * (len(head) - 1),
    ]
    for m in COMPARED:
        ps = [paired_p(per[m][t], per[m][base]) for t in others]
        won = {f"{t} > {base}": wins(per[m][t], per[m][base]) for t in others}
        won |= {f"{t} > {ENERGY}": wins(per[m][t], per[m][ENERGY]) for t in titles}
        out["wilcoxon"][m] = {f"{t} vs {base}": p for t, p in zip(others, ps, strict=True)}
        out["wins"][m] = won
        lines.append(f"| {m} | " + " | ".join(f"{p:.2g}" for p in ps) + " | "
                     + " | ".join(won.values()) + " |")  # fmt: skip
    lines += ["\n### per clip\n", "| machine | clip | measure | " + " | ".join([*titles, ENERGY])
              + " |", "|---|---|---|" + "---|" * (len(titles) + 1)]  # fmt: skip
    for m in COMPARED:
        for key in per[m][base]:
            values = [per[m][t].get(key, float("nan")) for t in [*titles, ENERGY]]
            out["per_clip"].setdefault(key[1], {})[m] = dict(
                zip([*titles, ENERGY], values, strict=True)
            )
            lines.append(f"| {key[0]} | {key[1]} | {m} | "
                         + " | ".join(f"{v:.3f}" for v in values) + " |")  # fmt: skip
    return "\n".join(lines) + "\n", out


def main(argv: list[str] | None = None) -> int:
    from asdxai.explain import RISEExecution
    from asdxai.workflows.defaults import bundled_checkpoint
    from asdxai.workflows.explain import Explainer, MapSettings

    p = map_parser("The study's argument measured: an autoencoder's, SC-AdaCos' and a one-class "
                   "model's signal-domain RISE maps", FAMILIES)  # fmt: skip
    for name, option in OPTIONS.items():
        p.add_argument(option, type=Path, default=bundled_checkpoint(name),
                       help=f"the detector file (default: the bundled {name}.pt)")  # fmt: skip
    p.add_argument("--clips-per-machine", type=int, choices=(1, 2), default=2,
                   help="anomalous clips per machine type: 1 (the source domain's) or 2 (source "
                   "and target, focus_claim's anomalous clips; default)")  # fmt: skip
    args = p.parse_args(argv)
    if args.trials not in (None, 1):
        p.error("--trials: the bundled detectors are one trial (seed 0) each; give 1")
    args.trials = 1
    study = Study(args)
    agreement, n_masks = map_limits(args, study)
    clips = family_clips(study.records("dev-test"), args.clips_per_machine)
    if not clips:
        raise SystemExit("focus_families: no anomalous dev-test clips of section 00 in the data")
    execution = RISEExecution(progress=study.progress)
    settings = MapSettings(n_masks=n_masks, seed=study.seed, until_agreement=agreement)
    rows = []
    for name, title in FAMILIES:
        if args.model not in (None, title):
            continue
        spec = getattr(args, OPTIONS[name].removeprefix("--").replace("-", "_"))
        explainer = Explainer(spec, device=study.device, domain="signal")
        fingerprint = explainer.detector.fingerprint[:10]
        folder = study.cache.maps.model(
            f"{name}-{fingerprint}", f"signal-seed{study.seed}-n{n_masks}-a{agreement}"
        ).root
        for clip in clips:
            row = map_row(explainer, clip, settings, execution, folder, label=clip.label,
                          model=title, trial=study.seed, detector=Path(spec).name)  # fmt: skip
            for prefix in ("", "energy_"):
                row[f"{prefix}{ABS_PARTIAL}"] = abs(row[f"{prefix}machine_partial_r"])
            rows.append(row)
    head = (f"{len(clips)} anomalous clips x {len(FAMILIES)} detectors, signal-domain masks; "
            f"maps to split-half agreement {agreement} (at most {n_masks} masks)\n")  # fmt: skip
    return finish(study, args, "focus_families", rows, clips, head, summarise, agreement, n_masks)


if __name__ == "__main__":
    sys.exit(main())
