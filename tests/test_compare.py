"""RISE against Captum's methods: wrappers on an analytic black box with a known answer, the
measures on hand-made cases, and ``asdxai compare-explainers`` end to end on a tiny checkpoint."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import tiny_checkpoint

from asdxai.cli import main
from asdxai.constants import DEFAULT_BLOCK_SIZE
from asdxai.data.audio import write_wav
from asdxai.errors import ConfigError, ResultError
from asdxai.explain.attribution import (
    METHODS,
    MethodSettings,
    cell_ids,
    compare_methods,
    compute_map,
    faithfulness_measures,
    rank_agreement,
    stft_resynthesis,
)
from asdxai.explain.rise import PILOT_MASKS
from asdxai.features import FeatureConfig, spectrogram
from asdxai.workflows.compare import compare_explainers

T, F = 16, 32
BOX_A = (slice(2, 6), slice(4, 10))  # the anomaly: the only cells the scorer reads
BOX_B = (slice(10, 14), slice(20, 26))  # as loud as A, at another time and frequency
SMALL = MethodSettings(
    n_masks=400, cells=(4, 8), occlusion_window=(2, 4), occlusion_stride=(2, 4), ig_steps=8,
    shap_samples=8, kernel_samples=200, batch_size=64,
)  # fmt: skip
#: Methods meant to find what the black box reads (the baselines are not); rise-stft needs a
#: waveform and has its own test.
FINDERS = [m for m, (family, _) in METHODS.items() if family != "baseline" and m != "rise-stft"]


def _two_boxes() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    spec = torch.full((T, F), 0.1)
    spec[BOX_A] = 1.0
    spec[BOX_B] = 1.0
    weights = torch.zeros(T, F)
    weights[BOX_A] = 1.0
    truth = np.zeros((T, F), dtype=bool)
    truth[BOX_A] = True
    return spec, weights, truth


def _linear(weights: torch.Tensor):
    return lambda x: (x * weights).sum(dim=(1, 2))


@pytest.fixture(scope="module")
def two_box_results():
    spec, weights, truth = _two_boxes()
    methods = [m for m in METHODS if m != "rise-stft"]
    results = compare_methods(
        _linear(weights), spec, methods=methods, settings=SMALL, anomaly_mask=truth
    )
    return {r.method: r for r in results}


@pytest.mark.parametrize("method", FINDERS)
def test_every_method_ranks_the_anomalous_box_highest(two_box_results, method):
    m = two_box_results[method].map.importance
    _, _, truth = _two_boxes()
    assert m.shape == (T, F)
    assert m[BOX_A].mean() > m[BOX_B].mean()
    assert m[BOX_A].mean() > m[~truth].mean()
    assert two_box_results[method].measures["pixel_auc"] > 0.85


def test_the_baselines_cannot_tell_the_boxes_apart(two_box_results):
    energy = two_box_results["energy"].map.importance
    assert energy[BOX_A].mean() == pytest.approx(energy[BOX_B].mean())
    assert abs(two_box_results["random"].measures["stability"]) < 0.1
    assert two_box_results["random"].measures["pixel_auc"] < 0.75


def test_costs_and_stability_are_counted(two_box_results):
    r = {k: v.measures for k, v in two_box_results.items()}
    assert (r["saliency"]["forward"], r["saliency"]["backward"]) == (1, 1)
    assert r["integrated-gradients"]["backward"] == SMALL.ig_steps
    assert r["rise-separable-plain"]["forward"] == SMALL.n_masks
    pilot = min(PILOT_MASKS, DEFAULT_BLOCK_SIZE)  # the centred pilot block (one block at most)
    assert r["rise-separable"]["forward"] == SMALL.n_masks + pilot
    assert r["rise-separable"]["backward"] == 0
    assert r["feature-ablation"]["forward"] == 1 + 4 * 8  # the input, then every cell
    assert r["kernel-shap"]["forward"] == SMALL.kernel_samples
    assert np.isnan(r["occlusion"]["stability"]) and np.isnan(r["energy"]["stability"])
    assert r["rise-separable"]["stability"] > 0.8


def test_same_seed_same_map_and_unknown_method_refused():
    spec, weights, _ = _two_boxes()
    for method in ("rise-grid", "kernel-shap", "gradient-shap"):
        a = compute_map(method, _linear(weights), spec, settings=SMALL, seed=3).importance
        b = compute_map(method, _linear(weights), spec, settings=SMALL, seed=3).importance
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="unknown method"):
        compute_map("lime", _linear(weights), spec)


def test_stft_masking_finds_the_anomalous_tone_burst():
    cfg = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)  # 49 frames x 129 bins
    t = np.arange(cfg.n_samples) / 16_000
    wave = 0.05 * np.random.default_rng(0).normal(size=t.size)
    wave[1600:3200] += np.sin(2 * np.pi * 2000 * t[1600:3200])  # the anomaly: frames ~12-24
    wave[4000:5600] += np.sin(2 * np.pi * 6000 * t[4000:5600])  # as loud, later and higher
    wave = torch.from_numpy(wave.astype(np.float32))
    resynthesis = stft_resynthesis(wave, cfg)
    spec = spectrogram(wave, cfg=cfg)
    torch.testing.assert_close(resynthesis(torch.ones(1, *spec.shape))[0], spec, atol=1e-3,
                               rtol=1e-3)  # fmt: skip
    weights = torch.zeros_like(spec)
    weights[13:22, 28:37] = 1.0  # 2 kHz = bin 32
    settings = MethodSettings(n_masks=300, cells=(8, 8), batch_size=100)
    m = compute_map("rise-stft", _linear(weights), spec, settings=settings,
                    resynthesis=resynthesis).importance  # fmt: skip
    assert m[13:22, 28:37].mean() > m[32:44, 90:100].mean()  # 6 kHz = bin 96
    assert m[13:22, 28:37].mean() > m.mean()
    with pytest.raises(ConfigError, match="waveform"):
        compute_map("rise-stft", _linear(weights), spec)


def test_cell_ids_split_the_input_into_the_grid():
    ids = cell_ids((92, 513), (20, 34)).numpy()
    assert ids.shape == (92, 513) and ids.min() == 0 and ids.max() == 20 * 34 - 1
    assert len(np.unique(ids)) == 20 * 34
    with pytest.raises(ConfigError):
        cell_ids((10, 10), (20, 2))


@pytest.mark.parametrize("fill", ["median", "zero"])
def test_faithfulness_prefers_the_true_map_to_a_random_one(fill):
    spec, weights, truth = _two_boxes()
    score = _linear(weights)
    noise = np.random.default_rng(0).random((T, F))
    good = faithfulness_measures(score, spec, truth + 0.01 * noise, steps=16, bands=8, fill=fill)
    bad = faithfulness_measures(score, spec, noise, steps=16, bands=8, fill=fill)
    assert good["deletion"] < bad["deletion"]
    assert good["insertion"] > bad["insertion"]
    assert good["ins_minus_del"] > bad["ins_minus_del"]
    assert good["band_deletion"] <= bad["band_deletion"]
    assert good["average_drop"] == 0.0 < bad["average_drop"]  # the top 20 % cover box A


def test_faithfulness_with_a_reference_tensor():
    """A (T, F) reference replaces removed cells: zeros are the zero fill, the median frame the
    median fill, and a reference equal to the input removes nothing (flat curves)."""
    from asdxai.explain.attribution.methods import median_frame

    spec, weights, truth = _two_boxes()
    score = _linear(weights)
    importance = truth + 0.01 * np.random.default_rng(0).random((T, F))
    kw = {"steps": 16, "bands": 8}
    for name, ref in (("zero", torch.zeros_like(spec)), ("median", median_frame(spec))):
        named = faithfulness_measures(score, spec, importance, fill=name, **kw)
        assert faithfulness_measures(score, spec, importance, fill=ref, **kw) == named
    same = faithfulness_measures(score, spec, importance, fill=spec.clone(), **kw)
    assert same["deletion"] == pytest.approx(1.0) and same["insertion"] == pytest.approx(1.0)
    assert same["average_drop"] == 0.0 and same["average_increase"] == 0.0
    with pytest.raises(ConfigError):
        faithfulness_measures(score, spec, importance, fill=spec[:, :-1], **kw)
    with pytest.raises(ConfigError):
        faithfulness_measures(score, spec, importance, fill="normal", **kw)


def test_rank_agreement_on_hand_rows():
    rows = [{"a": 0.1, "b": 1.0}, {"a": 0.5, "b": 3.0}, {"a": 0.9, "b": 4.0}]
    assert rank_agreement(rows, first="a", second="b") == pytest.approx(1.0)
    assert rank_agreement(
        [{**r, "b": -r["b"]} for r in rows], first="a", second="b"
    ) == pytest.approx(-1.0)
    assert np.isnan(rank_agreement(rows[:2], first="a", second="b"))


FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)  # 49 frames x 129 bins


def _setup(tmp: Path) -> tuple[Path, Path]:
    ckpt = tiny_checkpoint(tmp / "tiny.pt", FEAT)
    clip = tmp / "tree" / "dev_data" / "fan" / "test" / "section_00_source_test_anomaly_0000_a.wav"
    clip.parent.mkdir(parents=True)
    t = np.arange(int(16_000 * FEAT.duration_s)) / 16_000
    wave = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.01 * np.random.default_rng(1).normal(size=t.size)
    write_wav(clip, wave.astype(np.float32), 16_000)
    mask = np.zeros((49, 129), dtype=bool)
    mask[10:20, 30:50] = True
    with h5py.File(tmp / "tree" / "anomaly_masks.h5", "w") as h5:
        h5["dev_data/fan/test/" + clip.name] = mask
    return ckpt, clip


def test_workflow_writes_tables_and_figure(tmp_path):
    ckpt, clip = _setup(tmp_path)
    settings = MethodSettings(n_masks=100, kernel_samples=50, ig_steps=4, shap_samples=4)
    methods = ("rise-separable", "rise-stft", "occlusion", "saliency", "random", "energy")
    out = tmp_path / "out"
    twin = tmp_path / "twin.pt"
    twin.write_bytes(ckpt.read_bytes())
    res = compare_explainers([ckpt, twin], [clip], out=out, methods=methods, settings=settings,
                             device="cpu")  # fmt: skip
    assert res.methods == list(methods) and len(res.rows) == 2 * len(methods)
    assert all(np.isfinite(r["pixel_auc"]) for r in res.rows)
    assert len(res.agreement) == 2
    by_model = res.summary(model="twin")
    assert by_model["random"]["pixel_auc"][2] == 1  # one clip of that model
    assert set(res.files) == {"rows", "summary_csv", "markdown", "latex", "figure"}
    md = (out / "summary.md").read_text()
    assert "| rise-separable |" in md and "n_masks = 100" in md and "twin alone:" in md
    assert (out / "maps.png").stat().st_size > 0


def test_cli_runs_and_names_the_option_of_a_bad_setting(tmp_path, capsys):
    ckpt, clip = _setup(tmp_path)
    args = ["compare-explainers", "--checkpoint", str(ckpt), "--clip", str(clip),
            "--out", str(tmp_path / "o"), "--methods", "energy", "feature-ablation",
            "--device", "cpu"]  # fmt: skip
    assert main([*args, "--cells", "4x4"]) == 0
    assert "feature-ablation" in capsys.readouterr().out
    assert main([*args, "--cells", "99x2", "--out", str(tmp_path / "o2")]) == 2
    assert "--cells" in capsys.readouterr().err
    # the first folder holds rows of --cells 4x4: other settings are refused there
    assert main([*args, "--cells", "5x5"]) == 2
    assert "cells" in capsys.readouterr().err


def test_deviation_auc_sees_an_anomaly_read_as_normal():
    from asdxai.explain.attribution import localisation_measures

    _, _, truth = _two_boxes()
    reversed_map = -truth.astype(float) + 0.01 * np.random.default_rng(0).random((T, F))
    m = localisation_measures(reversed_map, truth)
    assert m["pixel_auc"] < 0.1 and m["deviation_auc"] > 0.9
    assert np.isnan(localisation_measures(reversed_map, None)["deviation_auc"])


def test_an_interrupted_comparison_keeps_its_rows_and_resumes(tmp_path):
    """rows.csv is rewritten after every map: Ctrl-C keeps the finished rows, and a re-run into
    the same folder computes only the missing ones (the same rows as one uninterrupted run)."""
    from asdxai.workflows.compare import read_rows

    ckpt, clip = _setup(tmp_path)
    settings = MethodSettings(n_masks=60, kernel_samples=30)
    methods = ("rise-separable", "occlusion", "random", "energy")
    out = tmp_path / "out"
    seen = []

    def interrupt(model, clip, result):
        seen.append(result.method)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compare_explainers([ckpt], [clip], out=out, methods=methods, settings=settings,
                           device="cpu", on_result=interrupt, progress=False)  # fmt: skip
    kept = read_rows(out / "rows.csv")
    assert [r["method"] for r in kept] == list(methods[:2])
    assert kept[0]["model"] == "tiny" and kept[0]["section"] == "fan_section_00"
    again = []
    res = compare_explainers([ckpt], [clip], out=out, methods=methods, settings=settings,
                             device="cpu", progress=False,
                             on_result=lambda m, c, r: again.append(r.method))  # fmt: skip
    assert again == list(methods[2:])  # only the missing maps were computed
    fresh = compare_explainers([ckpt], [clip], out=tmp_path / "fresh", methods=methods,
                               settings=settings, device="cpu", progress=False)  # fmt: skip
    assert [r["method"] for r in res.rows] == list(methods)
    for a, b in zip(res.rows, fresh.rows, strict=True):
        np.testing.assert_allclose(a["pixel_auc"], b["pixel_auc"], rtol=1e-6)
    # other settings into the same folder are refused, naming the file
    with pytest.raises(ResultError, match="rows.csv"):
        compare_explainers([ckpt], [clip], out=out, methods=methods, device="cpu", progress=False,
                           settings=MethodSettings(n_masks=61, kernel_samples=30))  # fmt: skip


def test_cli_normal_fill_of_the_faithfulness_measures(tmp_path, capsys):
    """``--fill normal-mean`` / ``normal-nearest``: the faithfulness measures remove cells to the
    section's normal content (other numbers than the median fill), the fill is in the settings;
    a clip outside a DCASE tree with training clips is refused before any map."""
    from conftest import tiny_tree

    from asdxai.workflows.compare import read_rows

    tiny_tree(tmp_path / "tree", FEAT.n_samples)
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt", FEAT)
    clip = sorted((tmp_path / "tree/dev_data/fan/test").glob("*_source_test_anomaly_*"))[0]
    args = ["compare-explainers", "--checkpoint", str(ckpt), "--clip", str(clip),
            "--methods", "energy", "--device", "cpu", "--no-progress"]  # fmt: skip
    ins_del = {}
    for fill in ("median", "normal-mean", "normal-nearest"):
        out = tmp_path / fill
        assert main([*args, "--fill", fill, "--out", str(out)]) == 0
        assert f"fill = {fill}" in (out / "summary.md").read_text()
        ins_del[fill] = read_rows(out / "rows.csv")[0]["ins_minus_del"]
    assert len(set(ins_del.values())) == 3, ins_del
    _, loose = _setup(tmp_path / "loose")  # a dev_data/fan/test clip without train/ beside it
    assert main([*args[:4], str(loose), *args[5:], "--fill", "normal-mean",
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "normal training clips" in err and "--fill" in err
    assert not (tmp_path / "o" / "rows.csv").exists()
