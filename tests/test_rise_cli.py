"""``asdxai rise`` end to end on a tiny real checkpoint (spectrogram and dual encoders)."""

from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_checkpoint

from asdxai.cli import main
from asdxai.constants import DEFAULT_ESTIMATOR, DEFAULT_STOP_AGREEMENT, DENSE_ESTIMATOR
from asdxai.data.audio import write_wav
from asdxai.explain.result import load_result
from asdxai.features import FeatureConfig

FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)  # 49 frames x 129 bins
SECTION = "fan_section_00"


def _checkpoint(tmp: Path, arch: str = "spectrogram", backend: bool = True) -> Path:
    name = f"{arch}{'' if backend else '_nobackend'}.pt"
    return tiny_checkpoint(tmp / name, FEAT, arch, backend, SECTION)


def _clip(tmp: Path, name="section_00_source_test_anomaly_0000_x.wav", rate=16_000) -> Path:
    path = tmp / "data" / "fan" / "test" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * FEAT.duration_s)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.01 * np.random.default_rng(1).normal(size=t.size)
    return write_wav(path, wave.astype(np.float32), rate)


def _args(ckpt, clip, out, *extra):
    return ["rise", "--checkpoint", str(ckpt), "--clip", str(clip), "--out", str(out),
            "--n-masks", "100", "--block-size", "50", "--batch-size", "50", "--study",
            "--device", "cpu", "--no-progress", *extra]  # fmt: skip


def test_rise_cli_writes_h5_and_png_and_continues(tmp_path, capsys):
    ckpt, clip = _checkpoint(tmp_path), _clip(tmp_path)
    out = tmp_path / "out"
    assert main(_args(ckpt, clip, out)) == 0
    h5 = out / "fan" / (clip.stem + ".h5")  # <out>/<machine>/<clip>: names never collide
    res = load_result(h5)
    assert res.importance.shape == (FEAT.n_frames, FEAT.n_bins) and res.complete
    assert res.meta["section"] == SECTION and len(res.meta["detector_fingerprint"]) == 64
    assert res.meta["detector"] == ckpt.name and res.meta["domain"] == "input"
    assert res.meta["clip_sha256"] and res.meta["clip"] == str(clip.resolve())
    from asdxai.workflows.explain import META_KEYS

    assert set(META_KEYS) <= set(res.meta)  # the documented contract listen and figures read
    assert (out / "fan" / (clip.stem + ".png")).stat().st_size > 1000
    # a complete result is kept as it is (not recomputed, not overwritten)
    before = h5.stat().st_mtime_ns
    assert main(_args(ckpt, clip, out, "--no-plot")) == 0
    assert "already complete" in capsys.readouterr().out and h5.stat().st_mtime_ns == before
    # an existing result is extended to more masks and equals a fresh run of that size
    assert main(_args(ckpt, clip, out, "--no-plot") + ["--n-masks", "150"]) == 0
    fresh = tmp_path / "fresh"
    assert main(_args(ckpt, clip, fresh, "--no-plot") + ["--n-masks", "150"]) == 0
    a, b = load_result(h5), load_result(fresh / "fan" / (clip.stem + ".h5"))
    assert a.n_masks == b.n_masks == 150
    np.testing.assert_allclose(a.importance, b.importance, rtol=1e-5, atol=1e-6)
    # a result with other mask settings is refused with one line, and kept
    assert main(_args(ckpt, clip, out, "--p-keep", "0.5")) == 2
    assert "cannot resume" in capsys.readouterr().err
    assert load_result(h5).n_masks == 150
    # ... unless --overwrite
    assert main(_args(ckpt, clip, out, "--p-keep", "0.5", "--overwrite")) == 0
    assert load_result(h5).mask_config.p_keep == 0.5
    # a different clip at the same path is refused (its content hash differs)
    clip.write_bytes(_clip(tmp_path / "other", rate=16_000).read_bytes()[:-64] + bytes(64))
    assert main(_args(ckpt, clip, out, "--p-keep", "0.5", "--n-masks", "200")) == 2
    assert "clip_sha256" in capsys.readouterr().err


def test_rise_cli_defaults_converge_and_report_speed(tmp_path, capsys):
    ckpt, clip = _checkpoint(tmp_path), _clip(tmp_path)
    argv = ["rise", "--checkpoint", str(ckpt), "--clip", str(clip), "--out", str(tmp_path / "o"),
            "--n-masks", "20000", "--block-size", "100", "--no-plot", "--no-progress",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "masks/s measured" in printed and "min per clip" in printed
    res = load_result(tmp_path / "o" / "fan" / (clip.stem + ".h5"))
    assert res.estimator == DEFAULT_ESTIMATOR and res.until_agreement == DEFAULT_STOP_AGREEMENT
    assert res.estimated_correlation >= 0.99 if res.stopped_early else res.n_masks == 20_000
    assert main(argv + ["--until-agreement", "0.5", "--overwrite"]) == 0
    res = load_result(tmp_path / "o" / "fan" / (clip.stem + ".h5"))
    assert res.stopped_early and res.n_masks < 20_000 and res.agreement >= 0.5
    assert main(argv[:-2] + ["--study", "--until-agreement", "0.9"]) == 2
    assert "--study" in capsys.readouterr().err


def test_rise_cli_default_estimator_per_mask_mode_and_old_results(tmp_path, capsys):
    ckpt, clip = _checkpoint(tmp_path), _clip(tmp_path)
    out, h5 = tmp_path / "o", tmp_path / "o" / "fan" / (clip.stem + ".h5")
    base = ["rise", "--checkpoint", str(ckpt), "--clip", str(clip), "--out", str(out),
            "--block-size", "50", "--no-plot", "--no-progress", "--device", "cpu",
            "--until-agreement", "0.999"]  # fmt: skip
    # a result of the old default (centred) is refused with the defaults, naming both estimators
    assert main(base + ["--n-masks", "100", "--estimator", "centered"]) == 0
    assert main(base + ["--n-masks", "200"]) == 2
    err = capsys.readouterr().err
    assert "'centered'" in err and f"'{DEFAULT_ESTIMATOR}'" in err
    # ... and continued when its estimator is named
    assert main(base + ["--n-masks", "200", "--estimator", "centered"]) == 0
    res = load_result(h5)
    assert res.estimator == "centered" and res.n_masks == 200
    # grid masks default to the centred estimator; cv is refused for them
    grid = base + ["--n-masks", "100", "--mask-mode", "grid", "--overwrite"]
    assert main(grid) == 0 and load_result(h5).estimator == DENSE_ESTIMATOR
    assert main(grid + ["--estimator", "cv"]) == 2
    assert "grid" in capsys.readouterr().err


def test_rise_cli_clips_of_two_machines_with_one_name(tmp_path):
    ckpt = _checkpoint(tmp_path)
    a = _clip(tmp_path)
    b = tmp_path / "data" / "pump" / "test" / a.name
    b.parent.mkdir(parents=True)
    b.write_bytes(a.read_bytes())
    out = tmp_path / "out"
    assert main(_args(ckpt, a, out, "--no-plot", "--section", SECTION)[:5] + [str(b)]
                + _args(ckpt, a, out, "--no-plot", "--section", SECTION)[5:]) == 0  # fmt: skip
    assert (out / "fan" / (a.stem + ".h5")).is_file() and (
        out / "pump" / (a.stem + ".h5")
    ).is_file()


def test_rise_cli_bad_inputs(tmp_path, capsys, caplog):
    ckpt, clip = _checkpoint(tmp_path), _clip(tmp_path)
    out = tmp_path / "out"
    odd = _clip(tmp_path, name="my_recording.wav")
    assert main(_args(ckpt, odd, out, "--no-plot")) == 0  # the nearest section, said so
    assert load_result(out / "fan" / "my_recording.h5").meta["section"] == SECTION
    assert "closest to" in caplog.text
    assert main(_args(ckpt, clip, out, "--section", "pump_section_03")) == 2
    err = capsys.readouterr().err
    assert "not in the detector" in err and "--section" in err
    assert main(_args(_checkpoint(tmp_path, backend=False), clip, out)) == 2
    assert "backend" in capsys.readouterr().err
    wrong_rate = _clip(tmp_path, name="section_00_source_test_normal_0001_x.wav", rate=22_050)
    assert main(_args(ckpt, wrong_rate, out)) == 2
    assert "sample rate" in capsys.readouterr().err


def test_rise_cli_dual_checkpoint_holds_spectrum_fixed(tmp_path, caplog):
    ckpt, clip = _checkpoint(tmp_path, arch="dual"), _clip(tmp_path)
    out = tmp_path / "out"
    assert main(_args(ckpt, clip, out, "--no-plot", "--section", SECTION)) == 0
    assert "spectrum input is held fixed" in caplog.text
    meta = load_result(out / "fan" / (clip.stem + ".h5")).meta
    assert meta["domain"] == "input" and meta["detector_describe"]["arch"] == "dual"
    # as it is used: both inputs recomputed from the masked signal
    signal = tmp_path / "signal"
    assert main(_args(ckpt, clip, signal, "--no-plot", "--section", SECTION, "--domain",
                      "signal", "--time-cells", "5", "--freq-cells", "20")) == 0  # fmt: skip
    assert "both inputs recomputed" in caplog.text
    held, used = load_result(out / "fan" / (clip.stem + ".h5")), load_result(
        signal / "fan" / (clip.stem + ".h5"))  # fmt: skip
    assert used.meta["domain"] == "signal" and used.meta["grid"]["n_fft"] == 1024
    assert used.importance.shape == (11, 513)  # the default signal grid: n_fft 1024, hop 512
    assert used.meta["clip_score"] == pytest.approx(held.meta["clip_score"], rel=1e-5)


def test_nearest_section_is_the_one_whose_normals_the_clip_matches(tmp_path):
    import dataclasses

    import torch

    from asdxai.checkpoint import load_checkpoint, save_checkpoint
    from asdxai.scoring import KMeansBackend
    from asdxai.workflows.explain import Explainer

    ckpt_path, clip = _checkpoint(tmp_path), _clip(tmp_path, name="anything.wav")
    explainer = Explainer(ckpt_path, device="cpu")
    inputs = explainer.inputs(clip)
    with torch.no_grad():
        enc = explainer.scorer.encoder_for(SECTION)
        emb = enc(inputs.spec[None]).numpy()  # (1, 16)
    rng = np.random.default_rng(0)
    backend = KMeansBackend(k=2, n_init=1).fit({
        "fan_section_00": (rng.normal(size=(6, 16)), rng.normal(size=(2, 16))),
        "pump_section_01": (np.repeat(emb, 6, 0) + 1e-3 * rng.normal(size=(6, 16)), emb),
    })  # fmt: skip
    ckpt = dataclasses.replace(load_checkpoint(ckpt_path), backend=backend.to_dict())
    two = save_checkpoint(ckpt, tmp_path / "two.pt")
    loose = tmp_path / "anything.wav"  # out of the fan folder, which would restrict it to fan
    loose.write_bytes(clip.read_bytes())
    assert Explainer(two, device="cpu").section_for(loose) == "pump_section_01"
    assert Explainer(two, device="cpu").section_for(clip) == "fan_section_00"


def test_rise_cli_normal_fill_is_the_library_reference_and_is_kept_on_resume(tmp_path, capsys):
    """``--fill normal-mean``: masked cells take the mean spectrogram of the section's normal
    training clips of the clip's domain, the map is the library's with that reference (same
    seed) and not the silence-filled one; resume refuses another fill; a clip outside a DCASE
    tree or the signal domain is refused with one line naming --fill."""
    import torch
    from conftest import tiny_tree

    from asdxai.data.audio import read_clip
    from asdxai.detectors import load_detector
    from asdxai.explain import RISE, RISEExecution, RISEMaskConfig
    from asdxai.explain.reference import normal_reference

    tiny_tree(tmp_path / "tree", FEAT.n_samples)
    ckpt = _checkpoint(tmp_path)
    fan = tmp_path / "tree" / "dev_data" / "fan"
    clip = sorted((fan / "test").glob("section_00_source_test_anomaly_*.wav"))[0]
    out, silent = tmp_path / "out", tmp_path / "silent"
    assert main(_args(ckpt, clip, out, "--no-plot", "--fill", "normal-mean")) == 0
    assert main(_args(ckpt, clip, silent, "--no-plot")) == 0
    res = load_result(out / "fan" / (clip.stem + ".h5"))
    assert res.meta["fill"] == "normal-mean"
    assert load_result(silent / "fan" / (clip.stem + ".h5")).meta["fill"] == 0.0

    normals = sorted((fan / "train").glob("section_00_source_train_normal_*.wav"))
    assert len(normals) == 6  # the source clips only: the clip's domain
    tf = load_detector(ckpt, device="cpu").time_frequency(
        torch.from_numpy(read_clip(clip, FEAT)), SECTION
    )
    expect = RISE(tf.score, mask_config=RISEMaskConfig(block_size=50)).attribute(
        tf.x, n_masks=100, seed=0, estimator="plain", fill=normal_reference(normals, FEAT),
        execution=RISEExecution(batch_size=50, device="cpu", progress=False),
    )  # fmt: skip
    np.testing.assert_allclose(res.importance, expect.importance, rtol=1e-5, atol=1e-7)
    other = load_result(silent / "fan" / (clip.stem + ".h5")).importance
    assert np.abs(res.importance - other).max() > 1e-3 * np.abs(other).max()

    for fill in ("0", "normal-nearest"):  # another fill into the same result is refused
        assert main(_args(ckpt, clip, out, "--no-plot", "--fill", fill, "--n-masks", "150")) == 2
        err = capsys.readouterr().err
        assert "cannot resume" in err and "fill" in err
    assert main(_args(ckpt, clip, out, "--no-plot", "--fill", "normal-nearest",
                      "--overwrite")) == 0  # fmt: skip
    assert load_result(out / "fan" / (clip.stem + ".h5")).meta["fill"] == "normal-nearest"

    loose = _clip(tmp_path)  # <tmp>/data/fan/test/...: no train/ folder beside it
    assert main(_args(ckpt, loose, tmp_path / "o2", "--fill", "normal-mean")) == 2
    err = capsys.readouterr().err
    assert "normal training clips" in err and "--fill" in err and len(err.splitlines()) == 1
    assert main(_args(ckpt, clip, tmp_path / "o3", "--fill", "normal-mean", "--domain",
                      "signal")) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "signal domain" in err and "--fill" in err
