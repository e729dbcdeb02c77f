"""Does masking with *normal* content change the RISE maps and the faithfulness ranking?

RISE masks cells to silence (the study) and the faithfulness measures replace removed cells by the
clip's median frame or by silence; to encoders that subtract each bin's temporal mean first, all
of these are nearly the same input -- one that SC-AdaCos scores as more anomalous than its normal
clips. Here the two models of Fig. 4 (``focus_claim.py``'s, trial ``--seed``) explain the first
anomalous source clip of section 00 of each machine type in ``--machines`` with RISE under three
fills (:func:`asdxai.explain.reference.normal_reference` from the section's normal training
clips of the clip's domain, :meth:`asdxai.workflows.explain.Explainer.normal_fill`, as
``asdxai rise --fill normal-mean`` / ``normal-nearest`` build them):

* ``silence`` -- 0 (the study);
* ``normal-mean`` -- the cell-wise mean of those clips' spectrograms;
* ``normal-nearest`` -- the spectrogram of the one nearest to the clip (dB distance);

and reports the score of each reference (beside the clip's and the normal clips' range), the
Pearson r of each map with the silence-filled one, the focus measures of every map beside the
energy map's, and the ins − del faithfulness of every map (the three RISE maps, the energy map,
Saliency, Occlusion, a random map) under four faithfulness fills: median frame, zero, normal
mean, normal nearest. Writes ``fill_reference.md`` and ``fill_reference.json``.

    python figures/fill_reference.py [--data ROOT] [--out DIR] [--machines fan gearbox]
"""

from __future__ import annotations

import sys

from _common import Study, parser
from focus_claim import MODELS

from asdxai.constants import NORMAL_FILLS

FILLS = ("silence", *NORMAL_FILLS)
OTHERS = ("energy", "saliency", "occlusion", "random")
SHOWN = ("machine_focus", "machine_contrast", "machine_correlation", "machine_partial_r",
         "pixel_auc")  # fmt: skip


def pearson(a, b) -> float:
    import numpy as np

    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def explain_clip(explainer, clip, n_masks: int, seed: int) -> dict:
    """Maps, measures, reference scores and faithfulness of one clip under one model."""
    import numpy as np
    import torch

    from asdxai.explain import RISE, RISEExecution, RISEMaskConfig
    from asdxai.explain.attribution import MethodSettings, compute_map, faithfulness_measures
    from asdxai.workflows.explain import map_measures

    inputs = explainer.inputs(clip.path)
    score_fn = explainer.scorer.bind(clip.section_key, spectrum=inputs.spectrum)
    dev, normals = explainer.device, explainer.normal_clips(clip.path)
    refs = {"silence": torch.zeros_like(inputs.spec),
            **{f: explainer.normal_fill(clip.path, f, inputs.spec) for f in NORMAL_FILLS}}
    with torch.no_grad():
        normal_scores = np.concatenate([
            score_fn(torch.stack([explainer.inputs(p).spec for p in normals[i : i + 32]])).cpu()
            for i in range(0, len(normals), 32)
        ])  # fmt: skip
        ref_scores = {k: float(score_fn(v[None])[0]) for k, v in refs.items()}
        clip_score = float(score_fn(inputs.spec[None])[0])
    maps = {}
    for fill, ref in refs.items():
        res = RISE(score_fn, mask_config=RISEMaskConfig()).attribute(
            inputs.spec, n_masks=n_masks, seed=seed, estimator="centered",
            execution=RISEExecution(progress=False), fill=None if fill == "silence" else ref,
        )  # fmt: skip
        maps[f"rise/{fill}"] = res.importance
    settings = MethodSettings()
    for method in OTHERS:
        maps[method] = compute_map(method, score_fn, inputs.spec, seed=seed,
                                   settings=settings, device=dev).importance  # fmt: skip
    faith_fills = {"median": "median", "zero": "zero", "normal-mean": refs["normal-mean"],
                   "normal-nearest": refs["normal-nearest"]}  # fmt: skip
    return {
        "clip_score": clip_score,
        "reference_scores": ref_scores,
        "normal_scores": [
            float(normal_scores.min()),
            float(np.median(normal_scores)),
            float(normal_scores.max()),
        ],  # fmt: skip
        "r_vs_silence": {k: pearson(maps[k], maps["rise/silence"]) for k in maps if "rise" in k},
        "measures": {
            k: map_measures(m, clip.path, log_energy=inputs.log_spec) for k, m in maps.items()
        },  # fmt: skip
        "ins_minus_del": {
            f: {
                k: faithfulness_measures(score_fn, inputs.spec, m, fill=v)["ins_minus_del"]
                for k, m in maps.items()
            }
            for f, v in faith_fills.items()
        },  # fmt: skip
    }


def report(results: dict) -> str:
    """Markdown of :func:`explain_clip`'s results, one section per (model, clip)."""
    lines = []
    for key, r in results.items():
        ref = ", ".join(f"{k} {v:.3g}" for k, v in r["reference_scores"].items())
        lo, mid, hi = r["normal_scores"]
        lines += [f"\n### {key}\n",
                  f"Scores: clip {r['clip_score']:.3g}; references: {ref}; the section's normal "
                  f"training clips: min {lo:.3g}, median {mid:.3g}, max {hi:.3g}.\n",
                  "Pearson r of the RISE maps with the silence-filled one: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in r["r_vs_silence"].items()) + "\n",
                  "| map | " + " | ".join(SHOWN) + " | " + " | ".join(
                      f"ins − del ({f})" for f in r["ins_minus_del"]) + " |",
                  "|---|" + "---|" * (len(SHOWN) + len(r["ins_minus_del"]))]  # fmt: skip
        for m, meas in r["measures"].items():
            cells = [f"{meas[k]:.3f}" if k in meas else "—" for k in SHOWN]
            cells += [f"{r['ins_minus_del'][f][m]:.2f}" for f in r["ins_minus_del"]]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from asdxai.workflows.explain import Explainer

    p = parser("Masking with normal content: RISE maps and faithfulness under three fills")
    p.add_argument("--machines", nargs="+", default=["fan", "gearbox"],
                   help="machine types whose first anomalous source clip of section 00 is "
                   "explained (default: fan gearbox)")  # fmt: skip
    p.add_argument("--n-masks", type=int, default=4000, help="masks per map (default: 4000)")
    args = p.parse_args(argv)
    study = Study(args)
    test = study.records("dev-test")
    clips = [next((r for r in test if r.machine == m and r.section == "00" and r.domain == "source"
                   and r.label == "anomaly"), None) for m in args.machines]  # fmt: skip
    if None in clips:
        raise SystemExit(
            "fill_reference: a machine type has no anomalous source clip in section 00"
        )
    results = {}
    for recipe, title in MODELS:
        path, _ = study.checkpoint(recipe, study.seed)
        explainer = Explainer(path, device=study.device)
        for clip in clips:
            results[f"{title}, {clip.machine} {clip.name}"] = explain_clip(
                explainer, clip, args.n_masks, study.seed
            )
    text = (f"{len(clips)} clips x {len(MODELS)} models, trial (seed) {study.seed}, "
            f"{args.n_masks} masks per map, centred estimator\n" + report(results))  # fmt: skip
    study.layout.markdown("fill_reference").write_text(text)
    study.write_json("fill_reference", {"results": results, "n_masks": args.n_masks,
                                             "clips": [str(c.path) for c in clips]})  # fmt: skip
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
