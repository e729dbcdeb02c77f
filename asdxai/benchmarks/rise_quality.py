"""``asdxai bench rise --quality``: forward passes each RISE estimator needs to reach the
converged map.

For every (model, clip) a *reference* map is computed once and cached: the centred
estimator (same expectation as the study's plain one, less noise) at ``ref_masks`` masks
with another seed than the maps it judges (issue 26: ≥ 128,000 masks). Then every
variant (estimator + mask sampling) runs up to ``max_passes`` forward passes and, at
every block boundary, its map is compared with the reference:

* ``r``: Pearson correlation with the reference map;
* ``r_est``: the run's own estimate of it from its split-half agreement
  (:func:`asdxai.explain.rise.estimated_correlation`), what a convergence stop sees;
* the focus measures (machine focus, machine correlation, event share, pixel AUC)
  against the reference's.

Reported per variant: the forward passes (the centred estimator's pilot included) from
which r stays ≥ 0.99 and ≥ 0.995 up to ``max_passes``, and from which every focus
measure stays within 0.01 of the reference's; the median over clips. A reference has
noise of its own: its estimated correlation with the converged map (from its split-half
agreement) is reported with it, and r against it is an underestimate by about that
factor.
"""

from __future__ import annotations

import logging
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import STUDY_MASKS

# The library loads inside the functions: `asdxai bench --help` imports this module for its
# option lists and must stay torch-free (tests/test_help.py).

log = logging.getLogger(__name__)

#: Variants measured by default: "<estimator>" or "<estimator>+<sampling>".
DEFAULT_VARIANTS = (
    "plain", "centered", "cv", "centered+latin-antithetic", "cv+antithetic", "cv+latin-antithetic",
)  # fmt: skip
TARGETS = (0.99, 0.995)
FOCUS_KEYS = ("machine_focus", "machine_correlation", "event_share", "pixel_auc")
FOCUS_TOLERANCE = 0.01
#: The issue's sizes (the documented defaults): 8 clips, references of 128,000 masks.
DEFAULT_CLIPS = 8
DEFAULT_REF_MASKS = 128_000
DEFAULT_MAX_PASSES = 16_000
REF_SEED = 99
STUDY_SEED = 98  # the study-setting maps (plain, 640,000 masks) of --study-refs


@dataclass(frozen=True)
class Variant:
    """An estimator with a mask sampling, e.g. ``Variant.parse("cv+latin-antithetic")``."""

    estimator: str
    sampling: str = "iid"

    @classmethod
    def parse(cls, text: str) -> Variant:
        from ..errors import ConfigError
        from ..explain.masks import SAMPLINGS
        from ..explain.rise import ESTIMATORS

        est, _, sampling = text.partition("+")
        if est not in ESTIMATORS or (sampling and sampling not in SAMPLINGS):
            raise ConfigError(
                f"variant {text!r} is not <estimator>[+<sampling>] with an estimator of "
                f"{list(ESTIMATORS)} and a sampling of {list(SAMPLINGS)}",
                param="variants",
            )
        return cls(est, sampling or "iid")

    @property
    def name(self) -> str:
        return self.estimator if self.sampling == "iid" else f"{self.estimator}+{self.sampling}"


def pick_clips(root: str | os.PathLike, n: int) -> list[Path]:
    """``n`` dev-test clips of section 00, alternately anomalous and normal, one machine type
    after another (sorted, so the choice is reproducible)."""
    from ..errors import DataError

    machines = sorted(p for p in (Path(root) / "dev_data").iterdir() if (p / "test").is_dir())
    if not machines:
        raise DataError(f"{root}: no dev_data/<machine>/test folders", param="data")
    picked: list[Path] = []
    i = 0
    while len(picked) < n and i < 4 * n * len(machines):
        machine = machines[i % len(machines)]
        label = "anomaly" if len(picked) % 2 == 0 else "normal"
        clips = sorted((machine / "test").glob(f"section_00_*_test_{label}_*.wav"))
        taken = [c for c in clips if c not in picked]
        if taken:
            picked.append(taken[0])
        i += 1
    return picked


def _focus(importance: np.ndarray, clip: Path) -> dict[str, float]:
    from ..workflows.explain import map_measures

    return {k: v for k, v in map_measures(importance, clip).items() if k in FOCUS_KEYS}


def reference(explainer, clip: Path, *, n_masks: int, cache: Path, progress: bool):
    """The cached (resumable) centred reference map of ``clip``: an ExplainedClip."""
    from ..explain import RISEExecution
    from ..workflows.explain import MapSettings

    settings = MapSettings(n_masks=n_masks, seed=REF_SEED, estimator="centered",
                           until_agreement=None)  # fmt: skip
    # clips of two machine types can share a file name (ToyCar / ToyTrain): key by the folder
    stem = cache / explainer.detector.fingerprint[:12] / clip.parent.parent.name / clip.stem
    return explainer.explain(
        clip, settings=settings, out_stem=stem, plot=False,
        execution=RISEExecution(progress=progress, checkpoint_every=8_000),
    )  # fmt: skip


def study_reference(explainer, clip: Path, *, cache: Path, progress: bool):
    """The cached (resumable) map of ``clip`` in the study's exact setting: the plain
    estimator at 640,000 masks (seed :data:`STUDY_SEED`), an ExplainedClip."""
    from ..explain import RISEExecution
    from ..workflows.explain import MapSettings

    stem = (cache / explainer.detector.fingerprint[:12] / clip.parent.parent.name
            / f"{clip.stem}-study")  # fmt: skip
    return explainer.explain(
        clip, settings=MapSettings.study(seed=STUDY_SEED), out_stem=stem, plot=False,
        execution=RISEExecution(progress=progress, checkpoint_every=16_000),
    )  # fmt: skip


def curve(
    score_fn, spec, variant: Variant, *, ref_map: np.ndarray, clip: Path, max_passes: int,
    block_size: int, seed: int = 0, study_map: np.ndarray | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """r, r_est and focus of ``variant``'s map at every block boundary up to ``max_passes``
    (and ``r_study``, r with ``study_map``, when one is given)."""
    from ..explain import RISE, RISEExecution, RISEMaskConfig
    from ..explain.rise import PILOT_MASKS, estimated_correlation, split_half_agreement

    cfg = RISEMaskConfig(block_size=block_size, sampling=variant.sampling)
    pilot = min(PILOT_MASKS, block_size) if variant.estimator == "centered" else 0
    points: list[dict[str, Any]] = []

    def record(res) -> None:
        points.append({
            "passes": res.n_masks + pilot,
            "r": split_half_agreement(res.importance, ref_map),
            "r_est": estimated_correlation(res.agreement),
            "focus": _focus(res.importance, clip),
        })  # fmt: skip
        if study_map is not None:
            points[-1]["r_study"] = split_half_agreement(res.importance, study_map)

    res = RISE(score_fn, mask_config=cfg).attribute(
        spec, n_masks=max_passes - pilot, seed=seed, estimator=variant.estimator,
        execution=RISEExecution(checkpoint=record, checkpoint_every=block_size),
    )  # fmt: skip
    record(res)
    return points


def passes_to(points: Sequence[dict[str, Any]], ok) -> int | None:
    """Passes from which ``ok(point)`` holds at every later point; None if not at the last."""
    first = None
    for p in points:
        if ok(p):
            first = p["passes"] if first is None else first
        else:
            first = None
    return first


def _focus_within(ref_focus: dict[str, float]):
    """Test of a curve point: every focus measure within the tolerance of the reference's."""

    def ok(point: dict[str, Any]) -> bool:
        return all(
            abs(point["focus"][k] - v) <= FOCUS_TOLERANCE
            for k, v in ref_focus.items()
            if k in point["focus"]
        )

    return ok


def stop_point(curve: Sequence[dict[str, Any]], block_size: int) -> dict[str, Any] | None:
    """Where the default stop (estimated r ≥ 0.99, after the minimum number of blocks)
    ends a run on this curve: its point (passes, r, r_est), or None if it never does."""
    from ..constants import DEFAULT_CORRELATION
    from ..explain.rise import MIN_AGREEMENT_BLOCKS

    for p in curve:
        if p["passes"] >= MIN_AGREEMENT_BLOCKS * block_size and p["r_est"] >= DEFAULT_CORRELATION:
            return p
    return None


def run(
    checkpoints: Sequence[str | os.PathLike],
    clips: Sequence[Path],
    *,
    variants: Sequence[Variant],
    ref_masks: int = DEFAULT_REF_MASKS,
    max_passes: int = DEFAULT_MAX_PASSES,
    block_size: int = 250,
    study_refs: int = 0,
    cache: Path,
    progress: bool = False,
) -> dict[str, Any]:
    """Reference maps (cached) and the curves of every variant for every (model, clip).

    For the first ``study_refs`` clips the map in the study's own setting (plain, 640,000
    masks, :func:`study_reference`, cached) is computed too; the reference's r with it and
    every curve's r with it (``r_study``) are recorded.

    Returns
    -------
    dict with ``rows`` (one per model, clip, variant: passes to each target and to the
    focus tolerance, r at 1,000 passes, and the curve) and ``references`` (one per model
    and clip: masks, estimated r with the converged map, seconds).
    """
    from tqdm.auto import tqdm

    from ..explain.rise import estimated_correlation, split_half_agreement
    from ..workflows.explain import Explainer

    rows, refs = [], []
    for ck in checkpoints:
        ex = Explainer(ck, device="cpu")
        for i, clip in enumerate(clips):
            ref = reference(ex, clip, n_masks=ref_masks, cache=cache, progress=progress)
            r_ref = estimated_correlation(ref.result.agreement)
            refs.append({
                "model": Path(ck).stem, "clip": clip.name, "section": ref.section,
                "masks": ref.result.n_masks, "r_est": r_ref, "cached": ref.reused,
                "seconds": None if ref.reused else ref.result.elapsed_s,
            })  # fmt: skip
            study_map = None
            if i < study_refs:
                study = study_reference(ex, clip, cache=cache, progress=progress)
                study_map = study.result.importance
                refs[-1].update({
                    "study_masks": study.result.n_masks,
                    "study_r_est": estimated_correlation(study.result.agreement),
                    "r_study": split_half_agreement(ref.result.importance, study_map),
                    "study_seconds": None if study.reused else study.result.elapsed_s,
                })  # fmt: skip
            ref_focus = _focus(ref.result.importance, clip)
            inputs = ex.inputs(clip)
            score_fn = ex.scorer.bind(ref.section, spectrum=inputs.spectrum)
            for v in tqdm(variants, desc=clip.name, disable=not progress, leave=False):
                pts = curve(score_fn, inputs.spec, v, ref_map=ref.result.importance, clip=clip,
                            max_passes=max_passes, block_size=block_size,
                            study_map=study_map)  # fmt: skip
                row = {"model": Path(ck).stem, "section": ref.section, "clip": clip.name,
                       "variant": v.name}  # fmt: skip
                for t in TARGETS:
                    row[f"passes_r{t}"] = passes_to(pts, lambda p, t=t: p["r"] >= t)
                    row[f"passes_r_est{t}"] = passes_to(pts, lambda p, t=t: p["r_est"] >= t)
                row["passes_focus"] = passes_to(pts, _focus_within(ref_focus))
                at = [p for p in pts if p["passes"] <= 1000]
                row["r_at_1000"] = at[-1]["r"] if at else None
                row["curve"] = [{k: p[k] for k in ("passes", "r", "r_est", "r_study") if k in p}
                                for p in pts]  # fmt: skip
                rows.append(row)
                log.info("%s %s %s: %s", row["model"], clip.name, v.name,
                         {k: row[k] for k in row if k.startswith("passes")})  # fmt: skip
    return {"rows": rows, "references": refs}


def _map_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """(model, section, clip) of a row or reference: ToyCar and ToyTrain clips share names."""
    return row["model"], row["section"], row["clip"]


def _median_passes(passes: Sequence[int | None], max_passes: int) -> tuple[Any, int]:
    """The median of per-map passes to a target (None: never reached, counted as more than
    any) -- ``"> max_passes"`` when it is such a map -- and how many maps reached it."""
    vals = [float("inf") if n is None else n for n in passes]
    med = statistics.median(vals)
    return (med if np.isfinite(med) else f"> {max_passes}"), int(sum(np.isfinite(vals)))


def summary(result: dict[str, Any], max_passes: int, block_size: int) -> list[dict[str, Any]]:
    """Per variant: median over (model, clip) of the passes to each target (a run that never
    reaches it counts as > max_passes), how many reached it, and where the default stop
    (:func:`stop_point`) ends the runs and the true r there (median, minimum).

    ``passes_rc*`` use r corrected for the reference's noise, r / r_ref with r_ref the
    reference's estimated correlation with the converged map (Spearman's correction for
    attenuation): r against a noisy reference understates r against the converged map."""
    out = []
    ref_r = {_map_key(r): r["r_est"] for r in result["references"]}
    for name in dict.fromkeys(r["variant"] for r in result["rows"]):
        rows = [dict(r) for r in result["rows"] if r["variant"] == name]
        for r in rows:  # Spearman's correction for the reference's own noise: r / r_ref
            rr = ref_r[_map_key(r)]
            for t in TARGETS:
                r[f"passes_rc{t}"] = passes_to(r["curve"], lambda p, t=t, rr=rr: p["r"] / rr >= t)
        entry: dict[str, Any] = {"variant": name, "maps": len(rows)}
        keys = [f"passes_r{t}" for t in TARGETS] + [f"passes_rc{t}" for t in TARGETS]
        for key in keys + ["passes_focus", "passes_r_est0.99"]:
            entry[key], entry[key + "_reached"] = _median_passes([r[key] for r in rows],
                                                                 max_passes)  # fmt: skip
        entry["median_r_at_1000"] = statistics.median(
            [r["r_at_1000"] for r in rows if r["r_at_1000"] is not None] or [float("nan")]
        )
        stops = [
            dict(p, rc=p["r"] / ref_r[_map_key(r)])
            for r in rows
            if (p := stop_point(r["curve"], block_size)) is not None
        ]
        entry["stopped"] = len(stops)
        entry["stop_passes_median"] = statistics.median([p["passes"] for p in stops] or [0])
        entry["stop_r_median"] = statistics.median([p["r"] for p in stops] or [float("nan")])
        entry["stop_r_min"] = min([p["r"] for p in stops] or [float("nan")])
        entry["stop_rc_median"] = statistics.median([p["rc"] for p in stops] or [float("nan")])
        entry["stop_rc_min"] = min([p["rc"] for p in stops] or [float("nan")])
        out.append(entry)
    return out


def markdown(result: dict[str, Any], settings: dict[str, Any], command: str) -> str:
    """The results file's Markdown: settings, the per-variant table, the references."""
    table = summary(result, settings["max_passes"], settings["block_size"])
    n = len(result["references"])  # one per (model, clip); clip names repeat across machines
    lines = [
        "# RISE: forward passes to the converged map",
        "",
        f"Command: `{command}`",
        "",
        f"{n} maps ({len(settings['clips'])} clips x {len(settings['checkpoints'])} models); "
        f"references: centred estimator, {settings['ref_masks']:,} masks, seed {REF_SEED}; "
        f"variants up to {settings['max_passes']:,} passes in blocks of "
        f"{settings['block_size']}, seed 0. Medians over the maps; a run that never stays at "
        "the target counts as more than the maximum (the count in brackets reached it). "
        "r: against the reference; r/r_ref: corrected for the reference's own noise (r_ref, "
        "its estimated correlation with the converged map, is listed below).",
        "",
        "| variant | passes to r ≥ 0.99 | to r ≥ 0.995 | to r/r_ref ≥ 0.99 | "
        "to r/r_ref ≥ 0.995 | focus within 0.01 | r_est ≥ 0.99 (stop) | r at 1,000 passes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in table:
        cells = [
            f"{e[k]} ({e[k + '_reached']}/{e['maps']})"
            for k in (
                "passes_r0.99",
                "passes_r0.995",
                "passes_rc0.99",
                "passes_rc0.995",
                "passes_focus",
                "passes_r_est0.99",
            )  # fmt: skip
        ]
        lines.append(f"| {e['variant']} | " + " | ".join(cells)
                     + f" | {e['median_r_at_1000']:.4f} |")  # fmt: skip
    lines += [
        "",
        "The default stop (estimated r ≥ 0.99 from the split-half agreement, after at least "
        "4 blocks) on the same curves, and the true r where it stops:",
        "",
        "| variant | runs stopped | median passes at the stop | median r (r/r_ref) there | "
        "lowest r (r/r_ref) |",
        "|---|---|---|---|---|",
    ]
    for e in table:
        lines.append(
            f"| {e['variant']} | {e['stopped']}/{e['maps']} | {e['stop_passes_median']:.0f} | "
            f"{e['stop_r_median']:.4f} ({e['stop_rc_median']:.4f}) | {e['stop_r_min']:.4f} "
            f"({e['stop_rc_min']:.4f}) |"
        )
    lines += [
        "",
        "References (r_est: estimated correlation with the converged map):",
        "",
        "| model | clip | section | masks | r_est | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["references"]:
        sec = "cached" if r["seconds"] is None else f"{r['seconds']:.0f}"
        lines.append(f"| {r['model']} | {r['clip']} | {r['section']} | {r['masks']:,} | "
                     f"{r['r_est']:.5f} | {sec} |")  # fmt: skip
    return "\n".join(lines + _study_lines(result, settings)) + "\n"


def study_summary(result: dict[str, Any], max_passes: int,
                  block_size: int) -> list[dict[str, Any]]:  # fmt: skip
    """Per variant, on the maps with a study-setting map (``--study-refs``): median over
    them of the r with the study's own map at 1,000 passes, of the passes to r ≥ 0.99 with
    it (held to the end; a run that never reaches it counts as > max_passes, with how many
    reached it) and of that r where the default stop ends the runs. Empty without study
    maps."""
    keys = {_map_key(r) for r in result["references"] if "r_study" in r}
    out = []
    for name in dict.fromkeys(r["variant"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["variant"] == name and _map_key(r) in keys]
        if not rows:
            continue
        at = [[p for p in r["curve"] if p["passes"] <= 1000][-1]["r_study"] for r in rows]
        passes, reached = _median_passes(
            [passes_to(r["curve"], lambda p: p["r_study"] >= 0.99) for r in rows], max_passes)
        stops = [p["r_study"] for r in rows
                 if (p := stop_point(r["curve"], block_size)) is not None]  # fmt: skip
        out.append({"variant": name, "maps": len(rows), "median_r_at_1000": statistics.median(at),
                    "passes_r0.99": passes, "passes_r0.99_reached": reached,
                    "stopped": len(stops),
                    "stop_r_median": statistics.median(stops or [float("nan")])})  # fmt: skip
    return out


def _study_lines(result: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The Markdown on the study-setting maps (none without ``--study-refs``)."""
    studied = [r for r in result["references"] if "r_study" in r]
    if not studied:
        return []
    lines = [
        "",
        f"Against the study's own map (plain estimator, {STUDY_MASKS:,} masks, seed "
        f"{STUDY_SEED}) on {len(studied)} maps: the reference's r with it, and for each "
        "variant the r with it at 1,000 passes, the passes to r ≥ 0.99 with it (held to the "
        "end) and the r with it where the default stop ends the run (medians over these maps):",
        "",
        "| model | clip | section | study map: masks | its r_est | r(reference, study map) "
        "| seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in studied:
        sec = "cached" if r["study_seconds"] is None else f"{r['study_seconds']:.0f}"
        lines.append(f"| {r['model']} | {r['clip']} | {r['section']} | {r['study_masks']:,} | "
                     f"{r['study_r_est']:.5f} | {r['r_study']:.5f} | {sec} |")  # fmt: skip
    lines += ["", "| variant | r with the study map at 1,000 passes | passes to r ≥ 0.99 with it "
              "| at the default stop |", "|---|---|---|---|"]  # fmt: skip
    for e in study_summary(result, settings["max_passes"], settings["block_size"]):
        stop = (f"{e['stop_r_median']:.4f} ({e['stopped']}/{e['maps']} stopped)"
                if e["stopped"] else f"none of {e['maps']} stopped")  # fmt: skip
        lines.append(f"| {e['variant']} | {e['median_r_at_1000']:.4f} | {e['passes_r0.99']} "
                     f"({e['passes_r0.99_reached']}/{e['maps']}) | {stop} |")  # fmt: skip
    return lines


def write(result: dict[str, Any], settings: dict[str, Any], stem: str | os.PathLike,
          *, command: str) -> tuple[Path, Path]:  # fmt: skip
    """Write ``<stem>.json`` (everything, curves included) and ``<stem>.md``."""
    import json

    from .._atomic import atomic_path
    from .._io import json_default

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out_json, out_md = stem.with_suffix(".json"), stem.with_suffix(".md")
    doc = {"command": command, "settings": settings,
           "summary": summary(result, settings["max_passes"], settings["block_size"]),
           "study_summary": study_summary(result, settings["max_passes"],
                                          settings["block_size"]),
           **result}  # fmt: skip
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1, default=json_default))
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(markdown(result, settings, command))
    return out_json, out_md
