"""bench rise --quality: variant names, passes-to-target, the stop point, a curve."""

from pathlib import Path

import numpy as np
import pytest
import torch

from asdxai.benchmarks import rise_quality as q
from asdxai.errors import ConfigError


def test_variant_names_round_trip_and_bad_ones_raise():
    assert q.Variant.parse("cv+latin-antithetic") == q.Variant("cv", "latin-antithetic")
    assert q.Variant.parse("centered").name == "centered"
    for bad in ("median", "cv+sobol"):
        with pytest.raises(ConfigError):
            q.Variant.parse(bad)


def test_passes_to_needs_the_target_to_hold_until_the_end():
    pts = [{"passes": n, "r": r} for n, r in ((250, 0.97), (500, 0.991), (750, 0.989),
                                              (1000, 0.992), (1250, 0.995))]  # fmt: skip
    assert q.passes_to(pts, lambda p: p["r"] >= 0.99) == 1000  # not 500: it fell back
    assert q.passes_to(pts, lambda p: p["r"] >= 0.999) is None


def test_stop_point_waits_for_the_minimum_blocks():
    curve = [{"passes": 250 * k, "r": 0.99, "r_est": 0.995} for k in range(1, 6)]
    assert q.stop_point(curve, 250)["passes"] == 1000  # 4 blocks of 250
    assert q.stop_point([dict(c, r_est=0.9) for c in curve], 250) is None


def test_curve_of_a_linear_box_approaches_its_reference(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, w = torch.rand(40, 48, generator=g) + 0.5, torch.randn(40, 48, generator=g)

    def box(y):
        return (y * w).sum((1, 2))

    from asdxai.explain import RISE, RISEMaskConfig

    ref = RISE(box, mask_config=RISEMaskConfig(block_size=1000)).attribute(
        x, n_masks=8000, seed=99, estimator="cv"
    )
    pts = q.curve(box, x, q.Variant("cv", "latin-antithetic"), ref_map=ref.importance,
                  clip=Path(tmp_path / "none.wav"), max_passes=1000, block_size=100)  # fmt: skip
    assert [p["passes"] for p in pts] == list(range(100, 1001, 100))
    assert pts[-1]["r"] > 0.95 and np.isnan(pts[0]["r_est"])  # one block: no halves yet
    assert pts[-1]["focus"] == {}  # a clip without ground truth has no focus measures


def test_summary_corrects_for_the_reference_noise_and_renders():
    curve = [{"passes": 250 * k, "r": r, "r_est": e}
             for k, (r, e) in enumerate([(0.9, np.nan), (0.97, 0.98), (0.985, 0.985),
                                         (0.986, 0.991), (0.987, 0.993)], 1)]  # fmt: skip
    row = {"model": "m", "section": "s", "clip": "c", "variant": "cv", "r_at_1000": 0.986,
           "curve": curve,
           "passes_focus": None, "passes_r_est0.99": 1000, "passes_r0.99": None,
           "passes_r0.995": None}  # fmt: skip
    ref = {"model": "m", "clip": "c", "r_est": 0.99, "section": "s", "masks": 8000, "seconds": 1}
    result = {"rows": [row], "references": [ref]}
    (entry,) = q.summary(result, 1250, 250)
    assert entry["passes_r0.99"] == "> 1250" and entry["passes_rc0.99"] == 750  # 0.985 / 0.99
    assert entry["stopped"] == 1 and entry["stop_passes_median"] == 1000
    assert entry["stop_rc_median"] == pytest.approx(0.986 / 0.99)
    settings = {"max_passes": 1250, "block_size": 250, "clips": ["c"], "checkpoints": ["m"],
                "ref_masks": 8000}  # fmt: skip
    text = q.markdown(result, settings, "asdxai bench rise --quality")
    assert "| cv | > 1250 (0/1) | > 1250 (0/1) | 750 (1/1) |" in text


def test_run_computes_and_caches_references_of_a_checkpoint(tmp_path):
    """The whole benchmark on a tiny tree and checkpoint: references are cached per detector
    fingerprint and reused by a second run."""
    from conftest import tiny_checkpoint, tiny_tree

    from asdxai.features import FeatureConfig

    feat = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)
    tiny_tree(tmp_path / "data", int(0.4 * 16000))
    ck = tiny_checkpoint(tmp_path / "m.pt", feat)
    clips = q.pick_clips(tmp_path / "data", 2)
    kw = dict(variants=[q.Variant("cv", "iid")], ref_masks=400, max_passes=200, block_size=50,
              cache=tmp_path / "cache", progress=False)  # fmt: skip
    first = q.run([str(ck)], clips, **kw)
    assert len(first["references"]) == 2 and len(first["rows"]) == 2
    assert not any(r["cached"] for r in first["references"])
    again = q.run([str(ck)], clips, **kw)
    assert all(r["cached"] for r in again["references"])
    assert [r["r_at_1000"] for r in again["rows"]] == [r["r_at_1000"] for r in first["rows"]]


def test_study_references_are_compared_and_reported(tmp_path, monkeypatch):
    """--study-refs: the study-setting map (plain; its 640,000 masks shrunk to 600 here) of
    the first clip is cached, the reference's and every curve point's r with it recorded,
    and the Markdown reports them."""
    from conftest import tiny_checkpoint, tiny_tree

    import asdxai.workflows.explain as explain
    from asdxai.features import FeatureConfig

    monkeypatch.setattr(explain, "STUDY_MASKS", 600)
    feat = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)
    tiny_tree(tmp_path / "data", int(0.4 * 16000))
    ck = tiny_checkpoint(tmp_path / "m.pt", feat)
    clips = q.pick_clips(tmp_path / "data", 2)
    res = q.run([str(ck)], clips, variants=[q.Variant("cv", "iid")], ref_masks=400,
                max_passes=200, block_size=50, study_refs=1, cache=tmp_path / "cache")  # fmt: skip
    first, second = res["references"]
    assert first["study_masks"] == 600 and -1 <= first["r_study"] <= 1
    assert "r_study" not in second
    assert all("r_study" in p for p in res["rows"][0]["curve"])
    assert all("r_study" not in p for p in res["rows"][1]["curve"])
    settings = {"max_passes": 200, "block_size": 50, "clips": [str(c) for c in clips],
                "checkpoints": [str(ck)], "ref_masks": 400}  # fmt: skip
    text = q.markdown(res, settings, "asdxai bench rise --quality --study-refs 1")
    assert "Against the study's own map" in text and f"{first['r_study']:.5f}" in text
    assert "Against the study's own map" not in q.markdown(
        {"rows": res["rows"][1:], "references": [second]}, settings, "x"
    )


def test_maps_of_clips_that_share_a_name_stay_apart():
    # ToyCar and ToyTrain clips share file names: references are matched by section too
    curve = [{"passes": 250 * k, "r": 0.985, "r_est": 0.9} for k in range(1, 5)]
    rows = [{"model": "m", "section": s, "clip": "c", "variant": "cv", "r_at_1000": 0.985,
             "curve": curve, "passes_focus": None, "passes_r_est0.99": None,
             "passes_r0.99": None, "passes_r0.995": None} for s in ("a", "b")]  # fmt: skip
    refs = [{"model": "m", "section": s, "clip": "c", "r_est": r}
            for s, r in (("a", 0.99), ("b", 1.0))]  # fmt: skip
    (entry,) = q.summary({"rows": rows, "references": refs}, 1000, 250)
    # a: 0.985 / 0.99 ≥ 0.99 from the first point; b: 0.985 / 1.0 never (keyed by clip
    # name alone, both rows would take b's reference: 0 reached)
    assert entry["passes_rc0.99_reached"] == 1


def test_study_summary_counts_only_maps_with_a_study_map():
    """r with the study's own map: held from 500 passes on the studied map; the unstudied
    map (no r_study) is left out, so one map per variant."""
    curve = [{"passes": 250 * k, "r": 0.99, "r_est": e, "r_study": r}
             for k, (r, e) in enumerate([(0.9, np.nan), (0.995, 0.98), (0.991, 0.985),
                                         (0.993, 0.992)], 1)]  # fmt: skip
    rows = [{"model": "m", "section": s, "clip": "c", "variant": "cv", "curve": curve}
            for s in ("a", "b")]  # fmt: skip
    refs = [{"model": "m", "section": "a", "clip": "c", "r_study": 0.998},
            {"model": "m", "section": "b", "clip": "c"}]  # fmt: skip
    (entry,) = q.study_summary({"rows": rows, "references": refs}, 1000, 250)
    assert entry["maps"] == 1 and entry["median_r_at_1000"] == 0.993
    assert entry["passes_r0.99"] == 500 and entry["passes_r0.99_reached"] == 1
    assert entry["stopped"] == 1 and entry["stop_r_median"] == 0.993  # r_est ≥ 0.99 at 1,000
    never = [dict(p, r_study=0.9) for p in curve]
    (entry,) = q.study_summary({"rows": [dict(rows[0], curve=never)], "references": refs},
                               1000, 250)  # fmt: skip
    assert entry["passes_r0.99"] == "> 1000" and entry["passes_r0.99_reached"] == 0
    assert q.study_summary({"rows": rows, "references": refs[1:]}, 1000, 250) == []
