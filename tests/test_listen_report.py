"""``listen_to_map`` / ``asdxai listen`` end to end on a tiny real checkpoint and RISE map."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import tiny_checkpoint  # noqa: E402

from asdxai.cli import main
from asdxai.data.audio import write_wav
from asdxai.errors import CheckpointError, ResultError
from asdxai.explain.result import load_result, save_result
from asdxai.features import FeatureConfig
from asdxai.listen import resynthesise, soft_top_mask
from asdxai.workflows.explain import output_stem
from asdxai.workflows.listen_report import ListenReport, _random_region, listen_to_map

FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)  # 49 frames x 129 bins
SECTION = "fan_section_00"


def _checkpoint(tmp: Path, feat: FeatureConfig = FEAT, arch="spectrogram", name="m.pt") -> Path:
    return tiny_checkpoint(tmp / name, feat, arch, True, SECTION)


def _clip(tmp: Path) -> Path:
    path = tmp / "data" / "fan" / "test" / "section_00_source_test_anomaly_0000_x.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = FEAT.sample_rate
    t = np.arange(FEAT.n_samples) / rate
    wave = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.01 * np.random.default_rng(1).normal(size=t.size)
    wave[2000:3000] += 0.3 * np.sin(2 * np.pi * 3000 * t[2000:3000])  # a short "rattle"
    return write_wav(path, wave.astype(np.float32), rate)


def _rise(tmp: Path, ckpt: Path, clip: Path, *extra: str) -> Path:
    out = tmp / "maps"
    args = ["rise", "--checkpoint", str(ckpt), "--clip", str(clip), "--out", str(out),
            "--n-masks", "100", "--block-size", "50", "--batch-size", "50", "--study",
            "--device", "cpu", "--no-progress", "--no-plot", *extra]  # fmt: skip
    assert main(args) == 0
    return output_stem(out, clip).with_suffix(".h5")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("listen")
    ckpt, clip = _checkpoint(tmp), _clip(tmp)
    return tmp, ckpt, clip, _rise(tmp, ckpt, clip)


def test_listen_writes_valid_wavs_overlay_and_scores(tree, tmp_path):
    _, _, clip, h5 = tree
    rep = listen_to_map(h5, top_percent=10, smooth_cells=1, out_dir=tmp_path, device="cpu")
    stem = h5.stem
    assert rep.paths["overlay"] == tmp_path / f"{stem}_overlay.png"
    assert rep.paths["overlay"].stat().st_size > 1000
    audio = {}
    for key in ("flagged", "rest", "original"):
        path = rep.paths[key]
        assert path == tmp_path / f"{stem}_{key}.wav"
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.frames) == (16_000, 1, FEAT.n_samples)
        assert info.subtype == "PCM_16"
        audio[key], _ = sf.read(str(path), dtype="float64")
    # flagged + rest = original (up to 16-bit rounding of each file)
    np.testing.assert_allclose(audio["flagged"] + audio["rest"], audio["original"], atol=3 / 2**15)
    # the original is the clip, away from the edge samples
    wave, _ = sf.read(str(clip), dtype="float64")
    inner = slice(FEAT.n_fft, (FEAT.n_frames - 1) * FEAT.hop_length)
    np.testing.assert_allclose(audio["original"][inner], wave[inner], atol=2 / 2**15)
    # the flagged part is the quieter, smaller one
    assert np.sum(audio["flagged"] ** 2) < np.sum(audio["rest"] ** 2)
    assert set(rep.scores) == {"original", "flagged", "rest"}
    assert all(np.isfinite(v) for v in rep.scores.values())
    assert len(rep.random_removed) == 5 and np.isfinite(rep.random_removed).all()
    assert rep.scores["original"] == pytest.approx(load_result(h5).meta["clip_score"], abs=1e-3)
    text = rep.summary()
    for word in ("original", "flagged part removed", "random same-size", "files:"):
        assert word in text
    assert ("OK:" in text) != ("NOTE:" in text)
    # the same seed gives the same baseline
    again = listen_to_map(h5, out_dir=tmp_path, device="cpu")
    assert again.random_removed == rep.random_removed


def test_listen_dual_checkpoint_scores_each_versions_spectrum(tmp_path):
    ckpt, clip = _checkpoint(tmp_path, arch="dual", name="dual.pt"), _clip(tmp_path)
    h5 = _rise(tmp_path, ckpt, clip)
    rep = listen_to_map(h5, top_percent=20, out_dir=tmp_path / "o", device="cpu", n_random=2)
    assert len(rep.random_removed) == 2
    assert rep.scores["rest"] != rep.scores["original"]


def test_summary_says_when_removing_the_flagged_part_does_not_lower_the_score_most():
    base = dict(
        map_path=Path("m.h5"), clip=Path("c.wav"), section=SECTION, checkpoint=Path("x.pt"),
        top_percent=10.0, smooth_cells=1.0, flagged_share=0.1, paths={},
    )  # fmt: skip
    good = ListenReport(
        **base, scores={"original": 0.5, "flagged": 0.6, "rest": 0.2}, random_removed=[0.45, 0.4]
    )
    assert good.flagged_lowers_most and "OK:" in good.summary()
    beaten = ListenReport(
        **base, scores={"original": 0.5, "flagged": 0.6, "rest": 0.4}, random_removed=[0.3, 0.45]
    )
    assert not beaten.flagged_lowers_most and beaten.n_random_lower == 1
    assert "does NOT lower the score the most: 1 of 2" in beaten.summary()
    raised = ListenReport(
        **base, scores={"original": 0.5, "flagged": 0.6, "rest": 0.7}, random_removed=[0.5]
    )
    text = raised.summary()
    assert "does NOT lower the anomaly score" in text
    assert "looks more anomalous, not less" in text  # what a negative result means
    assert "next: listen to the 'rest' file" in text  # and what to do about it
    assert "next:" not in good.summary()


def test_random_region_has_the_same_size_and_little_overlap():
    imp = np.random.default_rng(0).random((49, 129))
    mask = soft_top_mask(imp, 10, smooth_cells=1.0)
    hard = soft_top_mask(imp, 10, smooth_cells=0.0) > 0.5
    rnd = _random_region(mask, hard, np.random.default_rng(3))
    assert rnd.sum() == pytest.approx(mask.sum())
    rolled_hard = rnd > 0.5
    assert (rolled_hard & (mask > 0.5)).sum() <= 0.5 * max((mask > 0.5).sum(), 1) + 1e-9


def test_flagged_plus_rest_equals_resynthesised_original():
    wave = np.random.default_rng(2).standard_normal(FEAT.n_samples) * 0.1
    mask = soft_top_mask(np.random.default_rng(3).random((FEAT.n_frames, FEAT.n_bins)), 10)
    out = resynthesise(wave, mask, cfg=FEAT)
    full = resynthesise(wave, np.ones_like(mask), cfg=FEAT).flagged
    np.testing.assert_allclose(out.flagged + out.rest, full, atol=1e-12)


def test_bad_maps_raise_clear_errors(tree, tmp_path):
    tmp, ckpt, clip, h5 = tree
    res = load_result(h5)
    no_clip = tmp_path / "no_clip.h5"
    res.meta.pop("clip")
    save_result(no_clip, res)
    with pytest.raises(ResultError, match="no clip path"):
        listen_to_map(no_clip, device="cpu")
    res = load_result(h5)
    res.meta["clip"] = str(tmp_path / "gone.wav")
    gone = save_result(tmp_path / "gone.h5", res)
    with pytest.raises(ResultError, match="does not exist"):
        listen_to_map(gone, device="cpu")
    other = _checkpoint(tmp_path, FeatureConfig(duration_s=0.4, n_fft=512, hop_length=256))
    with pytest.raises(CheckpointError, match="map shape"):
        listen_to_map(h5, checkpoint=other, out_dir=tmp_path, device="cpu")
    with pytest.raises(ResultError, match="not found"):
        listen_to_map(tmp_path / "missing.h5", device="cpu")


def test_listen_cli(tree, tmp_path, capsys):
    _, _, _, h5 = tree
    out = tmp_path / "cli"
    code = main(["listen", "--map", str(h5), "--out", str(out), "--device", "cpu",
                 "--top-percent", "15", "--random", "2"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "top 15% of time-frequency cells" in text and "flagged part removed" in text
    assert (out / f"{h5.stem}_rest.wav").is_file()
    assert main(["listen", "--map", str(tmp_path / "nope.h5"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.h5" in err and len(err.splitlines()) == 1
    assert main(["listen", "--map", str(h5), "--top-percent", "0"]) == 2


def test_rise_cli_listen_flag_and_grid_mode(tmp_path, capsys):
    ckpt, clip = _checkpoint(tmp_path), _clip(tmp_path)
    h5 = _rise(tmp_path, ckpt, clip, "--mask-mode", "grid", "--listen", "20")
    assert load_result(h5).mask_config.mode == "grid"
    assert "flagged part removed" in capsys.readouterr().out
    assert (h5.parent / f"{h5.stem}_flagged.wav").is_file()
    assert (h5.parent / f"{h5.stem}_overlay.png").is_file()
