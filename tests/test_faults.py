"""Fault suite (issue 9): every bad input through the real CLI, untrusted files, determinism.

Each bad input must give exit code 2 and ONE line on stderr that names the file (or option)
and the problem. The library-level checks live in test_audio / test_records / test_checkpoint /
test_dataset; here the same faults go end to end through ``asdxai.cli.main``.

Note: the tests run as root, so ``chmod`` cannot make a directory read-only for them; an output
path *under a regular file* (``some_file/sub``) is used to provoke "cannot create output
directory" instead, which is the same code path (``asdxai._atomic.ensure_writable_dir``).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import tiny_checkpoint  # noqa: E402

from asdxai.checkpoint import load_checkpoint
from asdxai.cli import main
from asdxai.data.audio import write_wav
from asdxai.explain.result import load_result
from asdxai.features import FeatureConfig
from asdxai.workflows.explain import output_stem

FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)  # 49 frames x 129 bins
SR = FEAT.sample_rate
SECTION = "fan_section_00"
TEST_NAME = "section_00_source_test_anomaly_0000_x.wav"


# ----------------------------------------------------------------------------- fixtures


def _tone(seconds=FEAT.duration_s, rate=SR, f0=1000.0, seed=0, channels=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(rate * seconds))) / rate
    x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(t.size)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    return x.astype(np.float32)


def _make_checkpoint(path: Path, arch="spectrogram", backend=True, feat=FEAT) -> Path:
    return tiny_checkpoint(path, feat, arch, backend, SECTION)


def _make_tree(root: Path) -> Path:
    """dev_data/fan: 6 train clips (4 source, 2 target), 8 test clips (2 per domain x label)."""
    fan = root / "dev_data" / "fan"
    for i in range(6):
        dom = "source" if i < 4 else "target"
        name = f"section_00_{dom}_train_normal_{i:04d}_a_1.wav"
        write_wav(fan / "train" / name, _tone(f0=300 + 11 * i, seed=i), SR)
    j = 0
    for dom in ("source", "target"):
        for lab in ("normal", "anomaly"):
            for _ in range(2):
                x = _tone(f0=300 + 7 * j, seed=100 + j)
                if lab == "anomaly":
                    x = x + _tone(f0=5000, seed=j)
                write_wav(fan / "test" / f"section_00_{dom}_test_{lab}_{j:04d}_a_1.wav", x, SR)
                j += 1
    return root


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("assets")
    return {
        "ckpt": _make_checkpoint(base / "model.pt"),
        "tree": _make_tree(base / "tree"),
        "clip": write_wav(base / "clips" / "fan" / "test" / TEST_NAME, _tone(), SR),
    }


@pytest.fixture
def tree(assets, tmp_path):
    """A fresh copy of the good tree, to damage."""
    return Path(shutil.copytree(assets["tree"], tmp_path / "tree"))


def _rise(ckpt, clip, out, *extra):
    return ["-q", "rise", "--checkpoint", str(ckpt), "--clip", str(clip), "--out", str(out),
            "--n-masks", "100", "--block-size", "50", "--batch-size", "50", "--study",
            "--device", "cpu", "--no-progress", "--no-plot", *extra]  # fmt: skip


def _h5(out, clip):
    """Where ``asdxai rise`` writes the map of ``clip`` below ``out``."""
    return output_stem(out, clip).with_suffix(".h5")


def _score(ckpt, data, out, *extra):
    return ["-q", "score", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(out),
            "--device", "cpu", "--no-progress", "--protocol", "study", "--k", "2",
            *extra]  # fmt: skip


def _main(argv) -> int:
    return main([str(a) for a in argv])


def _fails(capsys, argv, *needles) -> str:
    """Run the CLI, expect exit 2 and one stderr line holding every needle; return the line."""
    code = _main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}, stderr: {err}"
    assert len(lines) == 1, f"expected one error line, got: {err!r}"
    for needle in needles:
        assert str(needle) in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


# ----------------------------------------------------------------------------- bad wav files


def _wav_bytes(tmp: Path, wave=None, rate=SR, subtype="PCM_16") -> bytes:
    path = tmp / "_scratch.wav"
    sf.write(path, _tone() if wave is None else wave, rate, subtype=subtype, format="WAV")
    data = path.read_bytes()
    path.unlink()
    return data


def _header_only(tmp):
    full = _wav_bytes(tmp)
    return full[:4] + struct.pack("<I", 36) + full[8:40] + struct.pack("<I", 0)


def _nan_float(tmp):
    x = _tone()
    x[100] = np.nan
    return _wav_bytes(tmp, x, subtype="FLOAT")


# name -> (bytes factory, words the error line must hold)
BAD_WAVS = {
    "empty": (lambda t: b"", "empty file"),
    "header-only": (_header_only, "no audio frames"),
    "truncated-mid-frame": (lambda t: _wav_bytes(t)[: 44 + 2001], "truncated wav file"),
    "not-a-wav": (lambda t: b"this is not audio\n" * 50, "not a readable audio file"),
    "stereo": (lambda t: _wav_bytes(t, _tone(channels=2)), "2 channels, expected mono"),
    "44.1kHz": (lambda t: _wav_bytes(t, _tone(rate=44100), 44100), "sample rate 44100 Hz"),
    "48kHz": (lambda t: _wav_bytes(t, _tone(rate=48000), 48000), "sample rate 48000 Hz"),
    "nan-float": (_nan_float, "non-finite samples"),
    "silent": (lambda t: _wav_bytes(t, np.zeros(FEAT.n_samples, np.float32)), "silent clip"),
    "too-short": (lambda t: _wav_bytes(t, _tone(seconds=0.15)), "shorter than half"),
}


@pytest.mark.parametrize("case", sorted(BAD_WAVS))
def test_bad_wav_via_rise_clip(case, assets, tmp_path, capsys):
    make, words = BAD_WAVS[case]
    clip = tmp_path / "fan" / "test" / TEST_NAME
    clip.parent.mkdir(parents=True)
    clip.write_bytes(make(tmp_path))
    _fails(capsys, _rise(assets["ckpt"], clip, tmp_path / "out"), clip, words)
    assert not _h5(tmp_path / "out", clip).exists()


@pytest.mark.parametrize("case", ["empty", "truncated-mid-frame", "stereo", "48kHz", "nan-float"])
def test_bad_wav_in_a_tree_via_score(case, assets, tree, tmp_path, capsys):
    make, words = BAD_WAVS[case]
    victim = sorted((tree / "dev_data" / "fan" / "test").iterdir())[3]
    victim.write_bytes(make(tmp_path))
    _fails(capsys, _score(assets["ckpt"], tree, tmp_path / "out"), victim.name, words)


def test_accepted_wavs_follow_the_stated_rules(assets, tmp_path, capsys):
    """8-bit PCM is scaled like any PCM depth; a clip of >= half the duration is zero-padded at
    the end, a longer one trimmed at the end (the checkpoint's duration, here 0.4 s)."""
    cases = {
        "8bit": _wav_bytes(tmp_path, subtype="PCM_U8"),
        "short": _wav_bytes(tmp_path, _tone(seconds=0.25)),  # padded 0.25 s -> 0.4 s
        "long": _wav_bytes(tmp_path, _tone(seconds=1.3)),  # trimmed 1.3 s -> 0.4 s
    }
    for name, data in cases.items():
        clip = tmp_path / name / "fan" / "test" / TEST_NAME
        clip.parent.mkdir(parents=True)
        clip.write_bytes(data)
        out = tmp_path / f"out_{name}"
        assert _main(_rise(assets["ckpt"], clip, out, "--n-masks", "50")) == 0, name
        res = load_result(_h5(out, clip))
        assert res.importance.shape == (FEAT.n_frames, FEAT.n_bins)
    capsys.readouterr()


def test_non_dcase_name_takes_the_nearest_section(assets, tmp_path, capsys):
    clip = write_wav(tmp_path / "my_recording.wav", _tone(), SR)
    # without a section in the name, the clip is explained in the section it is closest to
    assert _main(_rise(assets["ckpt"], clip, tmp_path / "out")) == 0
    assert load_result(_h5(tmp_path / "out", clip)).meta["section"] == SECTION
    _fails(capsys, _rise(assets["ckpt"], clip, tmp_path / "o", "--section", "x_section_09"),
           "--section")  # fmt: skip
    # in a tree, a stray non-DCASE wav name is an error of the scan, naming the file
    tree = _make_tree(tmp_path / "tree")
    odd = write_wav(tree / "dev_data" / "fan" / "test" / "recording.wav", _tone(), SR)
    _fails(capsys, _score(assets["ckpt"], tree, tmp_path / "o2"), odd, "DCASE naming")


# ----------------------------------------------------------------------------- data trees


def test_missing_test_or_train_folder(assets, tree, tmp_path, capsys):
    shutil.rmtree(tree / "dev_data" / "fan" / "train")
    # score: no train/ only disables the decision files (a warning), scores are still written
    out = tmp_path / "out"
    assert _main(_score(assets["ckpt"], tree, out)) == 0
    assert (out / "anomaly_score_fan_section_00_test.csv").is_file()
    assert not (out / "decision_result_fan_section_00_test.csv").exists()
    capsys.readouterr()
    # train needs train/
    argv = ["-q", "train", "--data", tree, "--out", tmp_path / "m.pt", "--device", "cpu"]
    _fails(capsys, argv, "missing train/ folder")
    shutil.copytree(assets["tree"] / "dev_data" / "fan" / "train", tree / "dev_data/fan/train")
    shutil.rmtree(tree / "dev_data" / "fan" / "test")
    _fails(capsys, _score(assets["ckpt"], tree, out), tree / "dev_data", "missing test/ folder")


def test_section_without_source_training_clips(assets, tree, tmp_path, capsys, caplog):
    for p in (tree / "dev_data" / "fan" / "train").glob("*_source_*"):
        p.unlink()
    ckpt = Path(shutil.copy(assets["ckpt"], tmp_path / "m.pt"))
    argv = ["-q", "fit-backend", "--checkpoint", ckpt, "--data", tree, "--device", "cpu",
            "--no-progress", "--k", "2", "--force"]  # fmt: skip
    _fails(capsys, argv, SECTION, "source")
    assert "no source-domain training clips" in caplog.text
    assert load_checkpoint(ckpt).backend is not None  # the file is untouched


def test_attributes_csv_with_missing_rows_and_extra_columns_warns(assets, tree, tmp_path, caplog):
    (tree / "dev_data" / "fan" / "attributes_00.csv").write_text(
        "file_name,d1p,d1v,extra\n"
        "fan/train/section_00_source_train_normal_0000_a_1.wav,a,1,x,surplus\n"
    )
    assert _main(_score(assets["ckpt"], tree, tmp_path / "out")) == 0
    assert "attributes_00.csv" in caplog.text  # warned, named, did not crash


def test_duplicate_clip_names(assets, tree, tmp_path, capsys):
    test = tree / "dev_data" / "fan" / "test"
    first = sorted(test.iterdir())[0]
    shutil.copy(first, test / (first.stem + ".WAV"))  # the same name up to case
    _fails(capsys, _score(assets["ckpt"], tree, tmp_path / "out"), "duplicate of", first.stem)


def test_unreadable_clip_mid_run_raise_or_skip_with_count(assets, tree, tmp_path, capsys):
    test = tree / "dev_data" / "fan" / "test"
    victims = sorted(test.iterdir())[2:4]
    for v in victims:
        v.write_bytes(v.read_bytes()[:100])  # truncated
    train_victim = sorted((tree / "dev_data" / "fan" / "train").iterdir())[1]
    train_victim.write_bytes(b"")
    # default: stop at the first unreadable clip (training clips are read first)
    _fails(capsys, _score(assets["ckpt"], tree, tmp_path / "a"), train_victim.name, "empty file")
    _fails(capsys, _score(assets["ckpt"], tree, tmp_path / "a", "--on-error", "raise"), "empty")
    # skip: left out, counted on stdout, listed in score.json
    out = tmp_path / "b"
    assert _main(_score(assets["ckpt"], tree, out, "--on-error", "skip")) == 0
    printed = capsys.readouterr().out
    assert "6 clips scored" in printed and "skipped 3 unreadable clip(s)" in printed
    info = json.loads((out / "score.json").read_text())
    assert sorted(Path(p).name for p in info["skipped_clips"]) == sorted(
        p.name for p in [*victims, train_victim]
    )
    scored = (out / "anomaly_score_fan_section_00_test.csv").read_text()
    assert victims[0].name not in scored and len(scored.strip().splitlines()) == 6
    # train: the same option
    argv = ["-q", "train", "--data", tree, "--out", tmp_path / "m.pt", "--device", "cpu",
            "--epochs", "1", "--batch-size", "2", "--width", "0.125", "--arch", "spectrogram",
            "--classes", "section", "--loss", "compactness", "--no-progress"]  # fmt: skip
    _fails(capsys, argv, train_victim.name, "empty file")
    assert not (tmp_path / "m.pt").exists()
    assert _main([*argv, "--on-error", "skip"]) == 0
    assert "skipped 1 unreadable clip(s)" in capsys.readouterr().out
    prov = load_checkpoint(tmp_path / "m.pt").provenance
    assert prov["skipped_clips"] == [str(train_victim)] and prov["device"] == "cpu"
    assert {"torch_version", "numpy_version", "asdxai_version"} <= set(prov)


# ----------------------------------------------------------------------------- checkpoints


class _Touch:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _ckpt_faults(assets, tmp: Path) -> dict[str, tuple[Path, str]]:
    good = assets["ckpt"].read_bytes()
    truncated = tmp / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    evil = tmp / "evil.pt"
    torch.save({"format_version": 1, "encoders": _Touch(tmp / "PWNED")}, evil)
    d = torch.load(assets["ckpt"], weights_only=True)
    newer = tmp / "newer.pt"
    torch.save({**d, "format_version": 99}, newer)
    wrong_arch = tmp / "wrong_arch.pt"
    torch.save({**d, "net_config": {**d["net_config"], "arch": "dual"}}, wrong_arch)
    return {
        "truncated": (truncated, "truncated or corrupt checkpoint"),
        "pickle-with-code": (evil, "refused to load"),
        "newer-format": (newer, "format_version 99 is newer"),
        "no-backend": (_make_checkpoint(tmp / "nobackend.pt", backend=False), "fit-backend"),
        "other-architecture": (wrong_arch, "do not match the architecture"),
        "missing": (tmp / "nothing.pt", "no such file"),
    }


CKPT_FAULTS = ("truncated", "pickle-with-code", "newer-format", "no-backend", "other-architecture",
               "missing")  # fmt: skip


@pytest.mark.parametrize("case", CKPT_FAULTS)
def test_bad_checkpoint_via_rise_and_score(case, assets, tree, tmp_path, capsys):
    path, words = _ckpt_faults(assets, tmp_path)[case]
    line = _fails(capsys, _rise(path, assets["clip"], tmp_path / "r"), words)
    if case != "no-backend":
        assert str(path) in line
    _fails(capsys, _score(path, tree, tmp_path / "s"), words)
    assert not (tmp_path / "PWNED").exists()  # the pickle payload never ran
    assert not list((tmp_path / "r").rglob("*.h5")) if (tmp_path / "r").exists() else True


def test_checkpoint_for_other_features_than_the_data(assets, tmp_path, capsys):
    """A checkpoint trained on 22.05 kHz audio refuses 16 kHz clips (no silent resampling)."""
    feat = FeatureConfig(sample_rate=22050, duration_s=0.4, n_fft=256, hop_length=128)
    ckpt = _make_checkpoint(tmp_path / "m22k.pt", feat=feat)
    _fails(
        capsys, _rise(ckpt, assets["clip"], tmp_path / "o"), assets["clip"],
        "sample rate 16000 Hz, expected 22050 Hz",
    )  # fmt: skip
    # resuming a RISE result made with another checkpoint is refused
    out = tmp_path / "r"
    assert _main(_rise(assets["ckpt"], assets["clip"], out, "--checkpoint-every", "50")) == 0
    other = _make_checkpoint(tmp_path / "other.pt", feat=FeatureConfig(duration_s=0.4))
    _fails(capsys, _rise(other, assets["clip"], out, "--n-masks", "200"), "resume")


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--n-masks", "0"], "--n-masks"),
        (["--n-masks", "-5"], "--n-masks"),
        (["--p-keep", "0"], "--p-keep"),
        (["--p-keep", "1"], "--p-keep"),
        (["--p-keep", "1.5"], "--p-keep"),
        (["--until-agreement", "1.2"], "--until-agreement"),
        (["--batch-size", "0"], "--batch-size"),
        (["--block-size", "0"], "--block-size"),
        (["--time-cells", "100"], "time_cells 100 exceeds the 49 frames"),
        (["--freq-cells", "500"], "freq_cells 500 exceeds the 129 bins"),
        (["--time-cells", "0"], "--time-cells"),
    ],
)
def test_bad_rise_options(extra, words, assets, tmp_path, capsys):
    _fails(capsys, _rise(assets["ckpt"], assets["clip"], tmp_path / "out", *extra), words)


def test_bad_score_and_train_options(assets, tree, tmp_path, capsys):
    _fails(capsys, _score(assets["ckpt"], tree, tmp_path / "o", "--batch-size", "0"), "--batch")
    _fails(capsys, _score(assets["ckpt"], tree, tmp_path / "o", "--on-error", "x"), "--on-error")
    train = ["-q", "train", "--data", tree, "--device", "cpu", "--out", tmp_path / "m.pt"]
    _fails(capsys, [*train, "--batch-size", "0"], "--batch-size")
    _fails(capsys, [*train, "--epochs", "-1"], "--epochs")


def test_output_under_a_regular_file_is_refused_before_work(assets, tree, tmp_path, capsys):
    """Root ignores chmod, so 'uncreatable' is provoked with a path below a regular file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    bad = blocker / "sub"
    _fails(capsys, _rise(assets["ckpt"], assets["clip"], bad), bad, "cannot create output")
    _fails(capsys, _score(assets["ckpt"], tree, bad), bad, "cannot create output")
    argv = ["-q", "train", "--data", tree, "--device", "cpu", "--out", bad / "m.pt",
            "--epochs", "50", "--width", "0.125", "--loss", "compactness"]  # fmt: skip
    _fails(capsys, argv, bad, "cannot create output")  # before 50 epochs of training
    argv = ["-q", "fit-backend", "--checkpoint", assets["ckpt"], "--data", tree, "--device",
            "cpu", "--out", bad / "m.pt"]  # fmt: skip
    _fails(capsys, argv, bad, "cannot create output")


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_and_provenance_everywhere(assets, tree, tmp_path, capsys):
    maps = []
    for run in ("a", "b"):
        out = tmp_path / f"rise_{run}"
        assert _main(_rise(assets["ckpt"], assets["clip"], out, "--seed", "7")) == 0
        with h5py.File(_h5(out, assets["clip"]), "r") as h5:
            maps.append(h5["importance"][()].tobytes())
            prov = json.loads(h5.attrs["provenance"])
            assert h5.attrs["seed"] == 7
    assert maps[0] == maps[1]
    for key in ("torch_version", "numpy_version", "asdxai_version", "device"):
        assert key in prov
    other = tmp_path / "rise_c"
    assert _main(_rise(assets["ckpt"], assets["clip"], other, "--seed", "8")) == 0
    with h5py.File(_h5(other, assets["clip"]), "r") as h5:
        assert h5["importance"][()].tobytes() != maps[0]

    csvs = []
    for run in ("a", "b"):
        out = tmp_path / f"score_{run}"
        assert _main(_score(assets["ckpt"], tree, out, "--seed", "3")) == 0
        csvs.append({p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))})
        info = json.loads((out / "score.json").read_text())
        assert info["seed"] == 3 and info["provenance"]["device"] == "cpu"
        assert {"torch_version", "numpy_version", "asdxai_version"} <= set(info["provenance"])
    assert csvs[0] == csvs[1] and len(csvs[0]) >= 3
    ckpt = load_checkpoint(assets["ckpt"])
    assert {"torch_version", "asdxai_version"} <= set(ckpt.provenance)


# ----------------------------------------------------------------------------- streaming


def test_scoring_streams_clips_from_disk(assets, tree, tmp_path, monkeypatch, capsys):
    """The first forward pass happens after reading one batch, not the whole tree."""
    import asdxai.data.dataset as dataset
    import asdxai.nets as nets

    reads, first_forward_after = [], []
    real_read, real_inputs = dataset.read_clip, nets.encoder_inputs

    def counting_read(*a, **k):
        reads.append(1)
        return real_read(*a, **k)

    def spy_inputs(*a, **k):
        first_forward_after.append(len(reads))
        return real_inputs(*a, **k)

    monkeypatch.setattr(dataset, "read_clip", counting_read)
    from asdxai import inference  # where the scoring loop looks it up

    monkeypatch.setattr(inference, "encoder_inputs", spy_inputs)
    assert _main(_score(assets["ckpt"], tree, tmp_path / "o", "--batch-size", "2")) == 0
    assert len(reads) == 14  # 6 train + 8 test clips, each read once
    assert first_forward_after[0] == 2  # one batch read before the first forward
    assert first_forward_after == sorted(first_forward_after)
