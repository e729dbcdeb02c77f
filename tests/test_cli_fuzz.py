"""CLI fuzz harness (issue 15): a corpus of bad inputs, each through every command that takes it.

Every case must end with exit code 2, exactly ONE line on stderr that names the file or the
option, no traceback, and nothing written to the output folder. One case per class of the issue
and per row of docs/ERRORS.md (audio, data, checkpoint, option, result, non-finite), plus
recipes, seeds, memory bounds, output targets, a full disk and Ctrl-C. Tiny fixtures (0.4 s
clips, a 16-D untrained encoder); the memory-bomb cases that build large files are ``slow``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import tiny_checkpoint, tiny_tree

from asdxai.cli import main
from asdxai.data.synth import PresetConfig
from asdxai.errors import ConfigError
from asdxai.features import FeatureConfig
from asdxai.workflows.explain import output_stem

FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)  # 49 frames x 129 bins
SR = FEAT.sample_rate
SECTION = "fan_section_00"
TRAIN0 = "dev_data/fan/train/section_00_source_train_normal_0000_a_1.wav"
TEST0 = "dev_data/fan/test/section_00_source_test_normal_0000_a_1.wav"


# ----------------------------------------------------------------------------- the runner


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder`` (hidden ``.part`` files too) -> (size, mtime)."""
    if not folder.exists():
        return {}
    if folder.is_file():
        return {str(folder): (folder.stat().st_size, folder.stat().st_mtime_ns)}
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() or p.is_symlink()
    }


def refused(capsys, argv, needles, out: Path) -> str:
    """Run the CLI: exit 2, one stderr line with every needle, no traceback, ``out`` untouched."""
    before = _files(out)
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    err = captured.err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert code == 2, f"exit {code}, stderr: {err}"
    assert len(lines) == 1, f"expected one error line, got: {err!r}"
    assert lines[0].startswith("asdxai"), lines[0]
    for needle in [needles] if isinstance(needles, str) else needles:
        assert str(needle) in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert _files(out) == before, f"{out} changed: {set(_files(out)) ^ set(before)}"
    return lines[0]


# ----------------------------------------------------------------------------- fixtures


def _tone(seconds=FEAT.duration_s, rate=SR, channels=1, scale=0.3):
    rng = np.random.default_rng(0)
    t = np.arange(int(round(rate * seconds))) / rate
    x = scale * np.sin(2 * np.pi * 700 * t) + 0.02 * rng.standard_normal(t.size)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    return x.astype(np.float32)


def _checkpoint(path: Path, **kw) -> Path:
    return tiny_checkpoint(path, FEAT, section=SECTION, **kw)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    tree = base / "tree"
    tiny_tree(tree, FEAT.n_samples)
    ckpt = _checkpoint(base / "model.pt")
    clip = tree / TEST0
    rise_out = base / "rise"
    assert main([str(a) for a in ["-q", *_rise_args(ckpt, clip, rise_out)]]) == 0
    tsne_out = base / "tsne"
    assert main([str(a) for a in ["-q", *_tsne_args(ckpt, tree, tsne_out)]]) == 0
    return {
        "base": base, "tree": tree, "ckpt": ckpt, "clip": clip,
        "map": output_stem(rise_out, clip).with_suffix(".h5"),
        "tsne": tsne_out / "model.h5",
    }  # fmt: skip


def _rise_args(ckpt, clip, out, *extra):
    return ["rise", "--checkpoint", ckpt, "--clip", clip, "--out", out, "--n-masks", "100",
            "--block-size", "50", "--batch-size", "50", "--study", "--device", "cpu",
            "--no-progress", "--no-plot", *extra]  # fmt: skip


def _tsne_args(ckpt, data, out, *extra):
    return ["tsne", "--checkpoint", ckpt, "--data", data, "--machines", "fan", "--out", out,
            "--perplexity", "2", "--n-iter", "10", "--early-exaggeration-iter", "10",
            "--device", "cpu", "--no-progress", "--no-cache", *extra]  # fmt: skip


def _score_args(ckpt, data, out, *extra):
    return [
        "score",
        "--checkpoint",
        ckpt,
        "--data",
        data,
        "--machines",
        "fan",
        "--out",
        out,
        "--device",
        "cpu",
        "--no-progress",
        "--protocol",
        "study",
        "--k",
        "2",
        *extra,
    ]


def _train_args(data, out, *extra):
    return [
        "train",
        "--data",
        data,
        "--out",
        out,
        "--device",
        "cpu",
        "--no-progress",
        "--epochs",
        "1",
        "--width",
        "0.125",
        "--arch",
        "spectrogram",
        "--loss",
        "compactness",
        "--classes",
        "none",
        "--batch-size",
        "4",
        "--no-backend",
        *extra,
    ]


def _fit_args(ckpt, data, out, *extra):
    return ["fit-backend", "--checkpoint", ckpt, "--data", data, "--machines", "fan", "--out",
            out, "--device", "cpu", "--no-progress", "--k", "2", "--n-init", "1", "--force",
            *extra]  # fmt: skip


def _listen_args(map_path, out, *extra):
    return ["listen", "--map", map_path, "--out", out, "--device", "cpu", "--random", "1", *extra]


@pytest.fixture
def tree(assets, tmp_path):
    """A fresh copy of the good tree, to damage."""
    return Path(shutil.copytree(assets["tree"], tmp_path / "tree"))


# ----------------------------------------------------------------------------- audio


def _wav(tmp: Path, wave=None, rate=SR, subtype="PCM_16") -> bytes:
    path = tmp / "_scratch.wav"
    sf.write(path, _tone() if wave is None else wave, rate, subtype=subtype, format="WAV")
    data = path.read_bytes()
    path.unlink()
    return data


def _nan_float(tmp):
    x = _tone()
    x[100] = np.nan
    return _wav(tmp, x, subtype="FLOAT")


def _header_only(tmp):
    full = _wav(tmp)
    return full[:4] + struct.pack("<I", 36) + full[8:40] + struct.pack("<I", 0)


# name -> (bytes factory, words the error line must hold)
BAD_WAVS = {
    "empty": (lambda t: b"", "empty file"),
    "header-only": (_header_only, "no audio frames"),
    "truncated": (lambda t: _wav(t)[: 44 + 2001], "truncated wav file"),
    "not-audio": (lambda t: b"this is not audio\n" * 50, "not a readable audio file"),
    "stereo": (lambda t: _wav(t, _tone(channels=2)), "2 channels"),
    "many-channels": (lambda t: _wav(t, _tone(channels=65)), "65 channels"),
    "48kHz": (lambda t: _wav(t, _tone(rate=48000), 48000), "sample rate 48000 Hz"),
    "nan-float": (_nan_float, "non-finite samples"),
    "huge-float": (lambda t: _wav(t, _tone(scale=1e36), subtype="FLOAT"), "too large"),
    "silent": (lambda t: _wav(t, np.zeros(FEAT.n_samples, np.float32)), "silent clip"),
    "too-short": (lambda t: _wav(t, _tone(seconds=0.15)), "shorter than half"),
}


@pytest.mark.parametrize("case", sorted(BAD_WAVS))
def test_bad_wav_through_every_command(case, assets, tree, tmp_path, capsys):
    make, words = BAD_WAVS[case]
    data = make(tmp_path)
    for rel in (TRAIN0, TEST0):
        (tree / rel).write_bytes(data)
    out = tmp_path / "out"
    named = ("section_00_source_t",)
    refused(capsys, _rise_args(assets["ckpt"], tree / TEST0, out), [words, tree / TEST0], out)
    refused(capsys, _score_args(assets["ckpt"], tree, out), [words, *named], out)
    refused(capsys, _tsne_args(assets["ckpt"], tree, out), [words, tree / TEST0], out)
    refused(capsys, _fit_args(assets["ckpt"], tree, out / "m.pt"), [words, tree / TRAIN0], out)
    refused(capsys, _train_args(tree, out / "m.pt"), [words, tree / TRAIN0], out)


def test_short_first_training_clip_is_named(tree, tmp_path, capsys):
    (tree / TRAIN0).write_bytes(_wav(tmp_path, _tone(seconds=0.15)))
    out = tmp_path / "out"
    refused(capsys, _train_args(tree, out / "m.pt"), [tree / TRAIN0], out)


def test_on_error_skip_still_skips_only_unreadable_clips(assets, tree, tmp_path, capsys):
    (tree / TEST0).write_bytes(b"")
    out = tmp_path / "out"
    argv = ["-q", *_score_args(assets["ckpt"], tree, out, "--on-error", "skip")]
    assert main([str(a) for a in argv]) == 0
    info = json.loads((out / "score.json").read_text())
    assert info["skipped_clips"] == [str(tree / TEST0)]


# ----------------------------------------------------------------------------- data


def _no_dev(tree):
    shutil.rmtree(tree / "dev_data")


def _no_test(tree):
    shutil.rmtree(tree / "dev_data" / "fan" / "test")
    shutil.rmtree(tree / "dev_data" / "pump" / "test")


def _no_train(tree):
    shutil.rmtree(tree / "dev_data" / "fan" / "train")
    shutil.rmtree(tree / "dev_data" / "pump" / "train")


def _bad_name(tree):
    for rel in (TRAIN0, TEST0):
        (tree / rel).rename((tree / rel).with_name("recording_0001.wav"))


def _duplicate(tree):
    for rel in (TRAIN0, TEST0):
        src = tree / rel
        shutil.copy(src, src.with_name(src.name.replace("normal", "NORMAL")))


def _no_source(tree):
    for p in (tree / "dev_data" / "fan" / "train").glob("*_source_*"):
        p.unlink()


# name -> (damage, words, commands)
BAD_TREES = {
    "no-dev-data": (_no_dev, "dev_data", ("score", "tsne", "train", "fit-backend", "rise")),
    "no-test-folder": (_no_test, "test", ("score", "tsne", "rise")),
    "no-train-folder": (_no_train, "train", ("train", "fit-backend")),
    "bad-name": (
        _bad_name,
        "recording_0001.wav",
        ("score", "tsne", "train", "fit-backend", "rise"),
    ),
    "duplicate": (_duplicate, "NORMAL", ("score", "tsne", "train", "fit-backend", "rise")),
    "no-source-training": (_no_source, "fan_section_00", ("fit-backend",)),
}


@pytest.mark.parametrize("case", sorted(BAD_TREES))
def test_bad_tree_through_every_command(case, assets, tree, tmp_path, capsys):
    damage, words, commands = BAD_TREES[case]
    damage(tree)
    out = tmp_path / "out"
    argv = {
        "score": _score_args(assets["ckpt"], tree, out),
        "tsne": _tsne_args(assets["ckpt"], tree, out),
        "train": _train_args(tree, out / "m.pt"),
        "fit-backend": _fit_args(assets["ckpt"], tree, out / "m.pt"),
        "rise": ["rise", "--checkpoint", assets["ckpt"], "--data", tree, "--out", out,
                 "--n-masks", "100", "--study", "--device", "cpu", "--no-progress"],
    }  # fmt: skip
    for command in commands:
        refused(capsys, argv[command], words, out)


# ----------------------------------------------------------------------------- checkpoints


def _ckpt_dict(assets):
    return torch.load(assets["ckpt"], weights_only=True)


def _save(path, d):
    torch.save(d, path)
    return path


class _Touch:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _bad_ckpts(assets, tmp: Path) -> dict[str, tuple[Path, str]]:
    good = assets["ckpt"].read_bytes()
    d = _ckpt_dict(assets)
    cases = {}

    def put(name, data, words):
        path = tmp / f"{name}.pt"
        path.write_bytes(data) if isinstance(data, bytes) else _save(path, data)
        cases[name] = (path, words)

    put("truncated", good[: len(good) // 2], "truncated or corrupt")
    put("random-bytes", bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8)),
        "not a PyTorch checkpoint")  # fmt: skip
    h5 = tmp / "hdf5.pt"
    with h5py.File(h5, "w") as f:
        f["x"] = np.zeros(3)
    cases["hdf5"] = (h5, "not a PyTorch checkpoint")
    torch.save({"format_version": 1, "encoders": _Touch(tmp / "PWNED")}, tmp / "code.pt")
    cases["pickle-with-code"] = (tmp / "code.pt", "refused to load")
    put("newer", {**d, "format_version": 99}, "newer")
    enc = {k: dict(v) for k, v in d["encoders"].items()}
    name = next(k for k, v in enc["all"].items() if v.is_floating_point())
    enc["all"][name] = enc["all"][name].clone().fill_(float("nan"))
    put("nan-weights", {**d, "encoders": enc}, "non-finite")
    put("hop-1", {**d, "feature_config": {**d["feature_config"], "hop_length": 1}}, "hop")
    put("other-arch", {**d, "net_config": {**d["net_config"], "arch": "dual"}},
        "do not match the architecture")  # fmt: skip
    cases["missing"] = (tmp / "nothing.pt", "nothing.pt")
    put("version-text", {**d, "format_version": "99"}, "format_version is a str")
    put("provenance-list", {**d, "provenance": ["a"]}, "provenance is a list")
    for kind, dtype in (("complex", torch.complex64), ("int", torch.int32)):
        enc = {k: dict(v) for k, v in d["encoders"].items()}
        enc["all"][name] = enc["all"][name].to(dtype)
        put(f"{kind}-weights", {**d, "encoders": enc}, "refused rather than cast")
    means = d["backend"]["sections"][SECTION]["means"]
    for kind, value, words in (("zero", means * 0, "lengths 0"), ("empty", means[:0], "shape (0,"),
                               ("scaled", means * 3e30, "lengths")):  # fmt: skip
        sec = {**d["backend"]["sections"][SECTION], "means": value}
        put(f"backend-{kind}", {**d, "backend": {**d["backend"], "sections": {SECTION: sec}}},
            ["damaged backend", words])  # fmt: skip
    return cases


@pytest.mark.parametrize(
    "case", ["truncated", "random-bytes", "hdf5", "pickle-with-code", "newer", "nan-weights",
             "hop-1", "other-arch", "missing", "version-text", "provenance-list",
             "complex-weights", "int-weights",
             "backend-zero", "backend-empty", "backend-scaled"],
)  # fmt: skip
def test_bad_checkpoint_through_every_command(case, assets, tmp_path, capsys):
    path, words = _bad_ckpts(assets, tmp_path)[case]
    words = [words, path] if isinstance(words, str) else [*words, path]
    out = tmp_path / "out"
    tree = assets["tree"]
    refused(capsys, _rise_args(path, assets["clip"], out), words, out)
    refused(capsys, _score_args(path, tree, out), words, out)
    refused(capsys, _tsne_args(path, tree, out), words, out)
    refused(capsys, _fit_args(path, tree, out / "m.pt"), words, out)
    refused(capsys, _listen_args(assets["map"], out, "--checkpoint", path), words, out)
    assert not (tmp_path / "PWNED").exists()


def test_checkpoint_without_backend(assets, tmp_path, capsys):
    path = _checkpoint(tmp_path / "nobackend.pt", backend=False)
    out = tmp_path / "out"
    refused(capsys, _rise_args(path, assets["clip"], out), "fit-backend", out)
    refused(capsys, _score_args(path, assets["tree"], out), [path, "fit-backend"], out)


@pytest.mark.slow
def test_checkpoint_archive_bomb(assets, tmp_path, capsys):
    """A small archive whose member inflates past 2 GiB is refused before anything is read."""
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("bomb/data.pkl", "w", force_zip64=True) as fh:
            block = bytes(2**24)
            for _ in range(2**31 // 2**24 + 1):
                fh.write(block)
    out = tmp_path / "out"
    refused(capsys, _score_args(path, assets["tree"], out), [path, "unpacks to"], out)
    refused(capsys, _rise_args(path, assets["clip"], out), [path, "unpacks to"], out)


# ----------------------------------------------------------------------------- non-finite


def _huge_backend(assets, tmp):
    d = _ckpt_dict(assets)
    sec = d["backend"]["sections"][SECTION]
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(64, 16)).astype(np.float32)
    means = torch.from_numpy(signs) * 3.4e38  # raw means: e . m overflows float32
    backend = {**d["backend"], "variant": "reference",
               "sections": {SECTION: {"means": means, "targets": sec["targets"]}}}  # fmt: skip
    return _save(tmp / "huge_backend.pt", {**d, "backend": backend})


def _huge_weights(assets, tmp):
    d = _ckpt_dict(assets)
    enc = {k: {n: (t * 1e38 if t.is_floating_point() and "weight" in n else t)
               for n, t in v.items()} for k, v in d["encoders"].items()}  # fmt: skip
    return _save(tmp / "huge_weights.pt", {**d, "encoders": enc})


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_non_finite_scores_name_the_checkpoint(on_error, assets, tmp_path, capsys):
    """Scores that overflow are an error naming the checkpoint, never 'skipped unreadable'."""
    out = tmp_path / "out"
    for path, words in ((_huge_backend(assets, tmp_path), "damaged backend"),
                        (_huge_weights(assets, tmp_path), "non-finite")):  # fmt: skip
        refused(capsys, _score_args(path, assets["tree"], out, "--on-error", on_error),
                [path, words], out)  # fmt: skip
    path = _huge_weights(assets, tmp_path)
    refused(capsys, _tsne_args(path, assets["tree"], out), [path, "non-finite"], out)
    refused(capsys, _fit_args(path, assets["tree"], out / "m.pt"), [path, "non-finite"], out)


def test_training_divergence(assets, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, _train_args(assets["tree"], out / "m.pt", "--lr", "1e308"),
            "training diverged", out)  # fmt: skip


# ----------------------------------------------------------------------------- options


def _seed_commands(assets, out):
    ck, tree, clip = assets["ckpt"], assets["tree"], assets["clip"]
    return {
        "synth": ["synth", out / "tree"],
        "train": _train_args(tree, out / "m.pt"),
        "fit-backend": _fit_args(ck, tree, out / "m.pt"),
        "score": _score_args(ck, tree, out),
        "rise": _rise_args(ck, clip, out),
        "listen": _listen_args(assets["map"], out),
        "tsne": _tsne_args(ck, tree, out),
        "demo": ["demo", "--out", out],
        "bench-train": ["bench", "train"],
        "bench-tsne": ["bench", "tsne"],
    }


@pytest.mark.parametrize("seed", ["-1", str(2**32), str(2**63), str(2**64 + 5), "1.5"])
def test_bad_seed_refused_at_parse_time_everywhere(seed, assets, tmp_path, capsys):
    out = tmp_path / "out"
    for argv in _seed_commands(assets, out).values():
        refused(capsys, [*argv, "--seed", seed], "--seed", out)


def test_train_seed_plus_trials_stays_in_range(assets, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _train_args(assets["tree"], out / "m.pt", "--seed", str(2**32 - 1), "--trials", "2")
    refused(capsys, argv, "--seed", out)


def test_bad_options(assets, tmp_path, capsys):
    ck, tree, clip = assets["ckpt"], assets["tree"], assets["clip"]
    out = tmp_path / "out"
    for extra, words in (
        (["--n-masks", "0"], "--n-masks"), (["--p-keep", "1.5"], "--p-keep"),
        (["--until-agreement", "1.2"], "--until-agreement"), (["--batch-size", "0"], "--batch"),
        (["--block-size", "0"], "--block-size"), (["--time-cells", "100"], "time_cells 100"),
        (["--fill", "nan"], "--fill"), (["--listen", "100"], "--listen"),
    ):  # fmt: skip
        refused(capsys, _rise_args(ck, clip, out, *extra), words, out)
    for extra, words in (
        (["--digits", "-1"], "--digits"),
        (["--digits", "13"], "--digits"),
        (["--batch-size", "0"], "--batch-size"),
        (["--k", "0"], "--k"),
        (["--threshold-percentile", "101"], "--threshold-percentile"),
    ):
        refused(capsys, _score_args(ck, tree, out, *extra), words, out)
    for extra, words in (
        (["--lr", "inf"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--epochs", "0"], "--epochs"),
        (["--weight-decay", "-1"], "--weight"),
    ):
        refused(capsys, _train_args(tree, out / "m.pt", *extra), words, out)
    for extra, words in ((["--n-jobs", "0"], "n_jobs"), (["--perplexity", "0"], "--perplexity")):
        refused(capsys, _tsne_args(ck, tree, out, *extra), words, out)
    for extra, words in (
        (["--smooth", "-1"], "--smooth"),
        (["--smooth", "nan"], "--smooth"),
        (["--top-percent", "100"], "--top-percent"),
        (["--random", "-1"], "--random"),
    ):
        refused(capsys, _listen_args(assets["map"], out, *extra), words, out)


def test_impossible_sizes_refused_before_allocation(assets, tmp_path, capsys):
    """Sizes bounded by the memory they imply: one line, in well under a second of work."""
    ck, clip = assets["ckpt"], assets["clip"]
    out = tmp_path / "out"
    refused(capsys, _rise_args(ck, clip, out, "--block-size", "1000000000"),
            ["--block-size", "GiB"], out)  # fmt: skip
    refused(
        capsys,
        _rise_args(
            ck,
            clip,
            out,
            "--n-masks",
            str(10**12),
            "--block-size",
            "1000",
            "--batch-size",
            str(10**12),
        ),
        ["--batch-size", "GiB"],
        out,
    )
    refused(capsys, _listen_args(assets["map"], out, "--smooth", "1e9"), ["--smooth", "wider"],
            out)  # fmt: skip


def test_counts_bounded_by_the_memory_they_imply(assets, tmp_path, capsys):
    """Worker, region, mask and architecture counts: refused before anything is allocated."""
    ck, tree, clip = assets["ckpt"], assets["tree"], assets["clip"]
    out = tmp_path / "out"
    refused(capsys, _score_args(ck, tree, out, "--num-workers", "100000"),
            ["--num-workers", "CPU cores"], out)  # fmt: skip
    refused(capsys, _listen_args(assets["map"], out, "--random", "1000000"),
            ["--random", "1000"], out)  # fmt: skip
    refused(capsys, _rise_args(ck, clip, out, "--n-masks", "9" * 23), ["--n-masks"], out)
    refused(capsys, _rise_args(ck, clip, out, "--device", "meta"), ["--device", "meta"], out)
    refused(capsys, _train_args(tree, out / "m.pt", "--width", "1e6"), ["width must lie in"], out)
    d = _ckpt_dict(assets)
    for key, value in (("spectrum_dense_layers", 10**7), ("width", 1e6), ("embed_dim", 10**9),
                       ("stage_channels", [-1, 0, 5, 5])):  # fmt: skip
        path = _save(tmp_path / f"{key}.pt", {**d, "net_config": {**d["net_config"], key: value}})
        refused(capsys, _rise_args(path, clip, out), [path, key], out)


# ----------------------------------------------------------------------------- output targets


def _out_commands(assets, tree, out_dir, out_file):
    ck, clip = assets["ckpt"], assets["clip"]
    return {
        "synth": ["synth", out_dir],
        "train": _train_args(tree, out_file),
        "fit-backend": _fit_args(ck, tree, out_file),
        "score": _score_args(ck, tree, out_dir),
        "rise": _rise_args(ck, clip, out_dir),
        "listen": _listen_args(assets["map"], out_dir),
        "tsne": _tsne_args(ck, tree, out_dir),
    }


def test_uncreatable_output_refused_before_work(assets, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    bad = blocker / "sub"
    for argv in _out_commands(assets, assets["tree"], bad, bad / "m.pt").values():
        refused(capsys, argv, [bad], blocker)


def test_output_file_taken_by_a_directory_or_fifo(assets, tmp_path, capsys):
    """Each command's output file name is taken by a directory: refused before any work."""
    ck, tree, clip = assets["ckpt"], assets["tree"], assets["clip"]
    out = tmp_path / "out"
    taken = {
        "train": (_train_args(tree, out / "m.pt"), out / "m.pt"),
        "fit-backend": (_fit_args(ck, tree, out / "m.pt"), out / "m.pt"),
        "score": (_score_args(ck, tree, out), out / "score.json"),
        "rise": (_rise_args(ck, clip, out), output_stem(out, clip).with_suffix(".h5")),
        "listen": (_listen_args(assets["map"], out), out / f"{assets['map'].stem}_rest.wav"),
        "tsne": (_tsne_args(ck, tree, out), out / "model_report.csv"),
    }
    for argv, target in taken.values():
        target.mkdir(parents=True)
        refused(capsys, argv, [target, "a directory"], out)
        target.rmdir()
    fifo = out / "fifo.pt"
    os.mkfifo(fifo)
    refused(capsys, _train_args(tree, fifo), [fifo, "a fifo"], out)


# ----------------------------------------------------------------------------- result files


def test_dot_dot_in_a_clip_path_stays_under_out(assets, tmp_path):
    """``--clip machine/test/../test/x.wav``: the machine folder is resolved, not ``..``."""
    clip = assets["tree"] / "dev_data/fan/test/../test" / Path(TEST0).name
    out = tmp_path / "o" / "r"
    assert main([str(a) for a in ["-q", *_rise_args(assets["ckpt"], clip, out)]]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["r"]
    assert (out / "fan" / Path(TEST0).with_suffix(".h5").name).is_file()


def test_dangling_symlink_under_an_output_name_is_refused(assets, tmp_path, capsys):
    """Nothing is created where a dangling link points (no parent folders, no file)."""
    out = tmp_path / "rise"
    link = output_stem(out, assets["clip"]).with_suffix(".h5")
    link.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere" / "deep" / "x.h5"
    link.symlink_to(elsewhere)
    code = main([str(a) for a in _rise_args(assets["ckpt"], assets["clip"], out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(link) in err and "does not exist" in err, err
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in link.parent.iterdir()) == [link.name]


def _copy_h5(src: Path, dst: Path, edit) -> Path:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as h5:
        edit(h5)
    return dst


def _set_attr(name, value):
    def edit(h5):
        h5.attrs[name] = value

    return edit


def _replace(name, data):
    def edit(h5):
        del h5[name]
        h5[name] = data

    return edit


def _delete(name):
    def edit(h5):
        del h5[name]

    return edit


def _huge_dataset(h5):
    del h5["importance"]
    h5.create_dataset("importance", shape=(100_000, 100_000), dtype="f8", chunks=(64, 64),
                      compression="gzip")  # fmt: skip


BAD_MAPS = {
    "not-hdf5": (None, "unreadable RISE result"),
    "no-version": (lambda h5: h5.attrs.__delitem__("format_version"), "not an asdxai RISE"),
    "no-importance": (_delete("importance"), "'importance' missing"),
    "no-sums": (_delete("state/sum_even"), "missing"),
    "importance-text": (_replace("importance", "not numbers"), "not a numeric array"),
    "importance-1d": (_replace("importance", np.zeros(49)), "expected (T, F)"),
    "importance-shape": (_replace("importance", np.zeros((10, 10))), "shape"),
    "importance-nan": (_replace("importance", np.full((49, 129), np.nan)), "NaN"),
    "importance-huge": (_huge_dataset, "more than"),
    "center-nan": (_set_attr("center", np.nan), "center = nan"),
    "sums-inf": (lambda h5: h5["state/sum_odd"].__setitem__((0, 0), np.inf), "'state/sum_odd'"),
    "n-masks-text": (_set_attr("n_masks", "many"), "'n_masks'"),
    "seed-negative": (_set_attr("seed", -3), "seed"),
    "meta-list": (_set_attr("meta", "[1, 2]"), "'meta' is not a JSON object"),
    "meta-garbage": (_set_attr("meta", "{not json"), "'meta' is not a JSON object"),
    "clip-number": (_set_attr("meta", json.dumps({"clip": 5})), "'clip' is not a string"),
    "mask-config-list": (_set_attr("mask_config", "[]"), "mask_config"),
    "mask-config-bad": (_set_attr("mask_config", json.dumps({"time_cells": "x"})), "mask"),
}


def _bad_map(assets, tmp: Path, case: str) -> Path:
    edit, _ = BAD_MAPS[case]
    if edit is None:
        path = tmp / "bad.h5"
        path.write_bytes(b"\x89HDF\r\n" + b"x" * 100)
        return path
    return _copy_h5(assets["map"], tmp / "bad.h5", edit)


@pytest.mark.parametrize("case", sorted(BAD_MAPS))
def test_damaged_rise_result_via_listen_and_resume(case, assets, tmp_path, capsys):
    _, words = BAD_MAPS[case]
    bad = _bad_map(assets, tmp_path, case)
    out = tmp_path / "out"
    refused(capsys, _listen_args(bad, out), [bad, words], out)
    # the same file where `asdxai rise` would continue a result
    rise_out = tmp_path / "rise"
    target = output_stem(rise_out, assets["clip"]).with_suffix(".h5")
    target.parent.mkdir(parents=True)
    shutil.copy(bad, target)
    refused(capsys, _rise_args(assets["ckpt"], assets["clip"], rise_out), [target, words],
            rise_out)  # fmt: skip


def test_wrong_kind_of_result(assets, tmp_path, capsys):
    out = tmp_path / "out"
    refused(capsys, _listen_args(assets["tsne"], out), [assets["tsne"], "not an asdxai RISE"],
            out)  # fmt: skip
    refused(capsys, _tsne_args(assets["ckpt"], assets["tree"], out, "--transform", assets["map"]),
            [assets["map"], "not an asdxai t-SNE result"], out)  # fmt: skip
    # resuming with other settings
    rise_out = tmp_path / "rise"
    target = output_stem(rise_out, assets["clip"]).with_suffix(".h5")
    target.parent.mkdir(parents=True)
    shutil.copy(assets["map"], target)
    refused(capsys, _rise_args(assets["ckpt"], assets["clip"], rise_out, "--seed", "9",
                               "--n-masks", "200"), [target, "seed"], rise_out)  # fmt: skip


BAD_TSNE = {
    "projection-1d": (_replace("projection", np.zeros(12)), "projection"),
    "embeddings-text": (_replace("embeddings", "abc"), "t-SNE result"),
    "no-embeddings": (_delete("embeddings"), "t-SNE result"),
    "config-list": (_set_attr("config", "[1]"), "t-SNE result"),
    "checkpoint-list": (_set_attr("checkpoint", "[1]"), "t-SNE result"),
    "embeddings-nan": (lambda h5: h5["embeddings"].__setitem__((0, 0), np.nan), "NaN"),
    "config-seed-text": (None, "t-SNE result"),
}


@pytest.mark.parametrize("case", sorted(BAD_TSNE))
def test_damaged_tsne_result_via_transform(case, assets, tmp_path, capsys):
    edit, words = BAD_TSNE[case]
    if edit is None:
        with h5py.File(assets["tsne"], "r") as h5:
            cfg = json.loads(h5.attrs["config"])
        edit = _set_attr("config", json.dumps({**cfg, "seed": "abc", "perplexity": "x"}))
    bad = _copy_h5(assets["tsne"], tmp_path / "bad_tsne.h5", edit)
    out = tmp_path / "out"
    refused(capsys, _tsne_args(assets["ckpt"], assets["tree"], out, "--transform", bad),
            [bad, words], out)  # fmt: skip


# ------------------------------------------------------------------------ .h5 pointing elsewhere


def _fifo(tmp: Path) -> Path:
    fifo = tmp / "fifo"
    os.mkfifo(fifo)
    return fifo


def _tamper(h5, name: str, case: str, tmp: Path) -> None:
    """Replace dataset ``name`` by an object of kind ``case`` (see ``POINTERS``)."""
    old = h5[name]
    shape, dtype = old.shape, old.dtype
    del h5[name]
    if case == "external-fifo":  # its bytes "stored" in a fifo: reading would block forever
        h5.create_dataset(name, shape=shape, dtype=dtype, external=[(str(_fifo(tmp)), 0, 1 << 30)])
    elif case == "external-passwd":
        h5.create_dataset(name, shape=(64,), dtype="u1", external=[("/etc/passwd", 0, 64)])
    elif case == "external-link":
        h5[name] = h5py.ExternalLink(str(tmp / "elsewhere.h5"), "/x")
    elif case == "soft-link-loop":
        h5[name] = h5py.SoftLink("/" + name)
    elif case == "virtual":
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(str(tmp / "elsewhere.h5"), "x", shape=shape)
        h5.create_virtual_dataset(name, layout)
    elif case == "compound":
        h5.create_dataset(name, shape=shape, dtype=[("a", "f4"), ("b", "i4")])
    elif case == "text":
        h5.create_dataset(name, data=np.full(shape, "x", dtype=object), dtype=h5py.string_dtype())
    elif case == "group":
        h5.create_group(name).create_dataset("x", data=np.zeros(3))
    elif case == "huge":  # a few KB on disk, tens of GB declared
        h5.create_dataset(name, shape=(50_000, 100_000), dtype="f8", chunks=(64, 64),
                          compression="gzip")  # fmt: skip
    else:
        raise AssertionError(case)


POINTERS = {
    "external-fifo": "another file",
    "external-passwd": "another file",
    "external-link": "external link",
    "soft-link-loop": "soft link",
    "virtual": "virtual dataset",
    "compound": "not a numeric array",
    "text": "not a numeric array",
    "group": "is a group",
    "huge": "shape",
}


@pytest.mark.parametrize("case", sorted(POINTERS))
def test_rise_result_pointing_elsewhere(case, assets, tmp_path, capsys):
    """listen and a resumed rise refuse, never read through, never block."""
    bad = _copy_h5(assets["map"], tmp_path / "bad.h5",
                   lambda h5: _tamper(h5, "importance", case, tmp_path))  # fmt: skip
    out = tmp_path / "out"
    refused(capsys, _listen_args(bad, out), [bad, "'importance'", POINTERS[case]], out)
    rise_out = tmp_path / "rise"
    target = output_stem(rise_out, assets["clip"]).with_suffix(".h5")
    target.parent.mkdir(parents=True)
    shutil.copy(bad, target)
    refused(capsys, _rise_args(assets["ckpt"], assets["clip"], rise_out),
            [target, POINTERS[case]], rise_out)  # fmt: skip


@pytest.mark.parametrize("case", sorted(POINTERS))
def test_tsne_reference_pointing_elsewhere(case, assets, tmp_path, capsys):
    bad = _copy_h5(assets["tsne"], tmp_path / "bad_tsne.h5",
                   lambda h5: _tamper(h5, "embeddings", case, tmp_path))  # fmt: skip
    out = tmp_path / "out"
    refused(capsys, _tsne_args(assets["ckpt"], assets["tree"], out, "--transform", bad),
            [bad, POINTERS[case]], out)  # fmt: skip


def test_tsne_reference_meta_of_another_length(assets, tmp_path, capsys):
    """3 labels for every point of the reference: refused before the labels are used."""
    bad = _copy_h5(
        assets["tsne"],
        tmp_path / "bad_tsne.h5",
        _replace("meta/label", np.array(["normal"] * 3, dtype=object).astype("S")),
    )
    out = tmp_path / "out"
    refused(capsys, _tsne_args(assets["ckpt"], assets["tree"], out, "--transform", bad),
            [bad, "'meta/label' has shape (3,)"], out)  # fmt: skip


@pytest.mark.parametrize("case", sorted(POINTERS))
def test_ground_truth_pointing_elsewhere(case, assets, tree, tmp_path, capsys):
    """anomaly_masks.h5 of a tree: its entry for the explained clip is checked before reading."""
    masks = tree / "anomaly_masks.h5"
    with h5py.File(masks, "w") as h5:
        h5.attrs["shape"] = (FEAT.n_frames, FEAT.n_bins)
        h5.create_dataset(TEST0, data=np.zeros((FEAT.n_frames, FEAT.n_bins), bool))
        _tamper(h5, TEST0, case, tmp_path)
    out = tmp_path / "rise"
    refused(capsys, _rise_args(assets["ckpt"], tree / TEST0, out), [masks, POINTERS[case]], out)


@pytest.mark.parametrize("case", ["external-fifo", "soft-link-loop", "huge", "text"])
def test_damaged_embedding_cache_is_a_miss_and_never_read(case, assets, tmp_path, caplog):
    """A tampered cache entry is ignored (a warning), re-computed and rewritten intact."""
    out = tmp_path / "out"
    args = [a for a in _tsne_args(assets["ckpt"], assets["tree"], out) if a != "--no-cache"]
    assert main([str(a) for a in ["-q", *args]]) == 0
    cache = out / "embedding_cache.h5"
    with h5py.File(cache, "r+") as h5:
        (key,) = list(h5)
        _tamper(h5, f"{key}/embeddings", case, tmp_path)
    assert main([str(a) for a in args]) == 0
    assert "ignoring the cache" in caplog.text
    with h5py.File(cache) as h5:
        emb = h5[key]["embeddings"]
        assert emb.external is None and emb.dtype == np.float32 and emb.shape[0] > 1


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_result_file_that_is_not_a_regular_file(kind, assets, tmp_path, capsys):
    """A fifo (would block the open) or a directory is named as such, not "not found"."""
    path = tmp_path / "x.h5"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    out = tmp_path / "out"
    refused(capsys, _listen_args(path, out), [path, f"is a {kind}"], out)
    refused(capsys, _tsne_args(assets["ckpt"], assets["tree"], out, "--transform", path),
            [path, f"is a {kind}"], out)  # fmt: skip


def test_map_that_is_not_finite_is_never_saved(assets, tmp_path, capsys):
    """A keep probability whose expected mask underflows gives a NaN map: one line, no file."""
    out = tmp_path / "rise"
    refused(capsys, _rise_args(assets["ckpt"], assets["clip"], out, "--p-keep", "1e-300"),
            ["NaN or inf", "nothing saved"], out)  # fmt: skip


# ----------------------------------------------------------------------------- recipes

BAD_RECIPES = {
    "top-level-list": ([{"loss": "adacos"}], "JSON object"),
    "not-json": ("{loss: adacos", "cannot read recipe"),
    "epochs-text": ({"epochs": "10"}, "epochs must be an integer"),
    "lr-text": ({"lr": "0.001"}, "lr must be a finite number"),
    "trials-list": ({"trials": [5]}, "trials must be an integer"),
    "loss-list": ({"loss": ["adacos"]}, "loss must be a string"),
    "stage-channels-dict": ({"stage_channels": {"a": 1}}, "stage_channels must be"),
    "splits-text": ({"splits": "dev-train"}, "splits must be"),
    "mixup-text": ({"mixup": "yes"}, "mixup must be true or false"),
    "seed-huge": ({"seed": 2**63}, "seed must lie in"),
    "unknown-key": ({"learning_rate": 0.1}, "unknown keys"),
    "stage-channels-negative": ({"stage_channels": [-1, 0, 5, 5]}, "stage_channels must be"),
    "dense-layers-huge": ({"spectrum_dense_layers": 10**8}, "spectrum_dense_layers must be"),
    "embed-dim-huge": ({"embed_dim": 10**9}, "embed_dim must be"),
    "width-huge": ({"width": 1e6}, "width must lie in"),
    "nested-deeply": ("[" * 200_000 + "]" * 200_000, "cannot read recipe"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_bad_recipe(case, assets, tmp_path, capsys):
    content, words = BAD_RECIPES[case]
    path = tmp_path / "recipe.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out"
    refused(capsys, ["train", "--recipe", path, "--data", assets["tree"], "--out", out / "m.pt",
                     "--device", "cpu"], [path, words], out)  # fmt: skip


# ----------------------------------------------------------------------------- disk and signals


def test_full_disk_is_one_line_and_leaves_nothing(assets, tmp_path, capsys, monkeypatch):
    """ENOSPC in the middle of a write: one line naming the output, no file, no .part left."""
    real = Path.write_text

    def full(self, text, *a, **k):
        real(self, text[: len(text) // 2], *a, **k)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "out"
    refused(capsys, _score_args(assets["ckpt"], assets["tree"], out),
            [out, "No space left on device"], out)  # fmt: skip
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_full_disk_while_saving_a_checkpoint(assets, tmp_path, capsys, monkeypatch):
    import asdxai.checkpoint as checkpoint

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"PK\x03\x04 half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    out = tmp_path / "out"
    refused(capsys, _fit_args(assets["ckpt"], assets["tree"], out / "m.pt"),
            [out / "m.pt", "disk full"], out)  # fmt: skip
    assert not [p for p in out.rglob("*") if p.is_file()]


@pytest.mark.parametrize("command", ["rise", "tsne"])
def test_file_size_limit_is_one_line_and_leaves_nothing(command, assets, tmp_path, capsys):
    """A real short write (``ulimit -f``: EFBIG) inside HDF5: one line, exit 2, no .part."""
    import resource

    out = tmp_path / "out"
    argv = (_rise_args(assets["ckpt"], assets["clip"], out) if command == "rise"
            else _tsne_args(assets["ckpt"], assets["tree"], out))  # fmt: skip
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, hard))  # the .h5 is larger
    try:
        code = main([str(a) for a in argv])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = capsys.readouterr().err
    assert "Traceback" not in err and code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ".h5: cannot write output: File too large" in lines[0], err
    assert not [p for p in out.rglob("*.h5*")]


@pytest.mark.parametrize("where", ["build_parser", "_configure_logging", "run"])
def test_ctrl_c_during_start_up(where, assets, tmp_path, capsys, monkeypatch):
    import asdxai.cli as cli
    import asdxai.cli.score as score

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli if where != "run" else score, where, interrupt)
    if where == "run":
        monkeypatch.setattr(score, "run", interrupt)
    code = main([str(a) for a in _score_args(assets["ckpt"], assets["tree"], tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 130, err
    assert err.strip().count("\n") == 0 and "interrupted" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- odd names


def test_clip_names_that_are_not_utf8(assets, tmp_path, capsys):
    """A clip name with bytes that are not UTF-8: rise, listen and tsne finish, no traceback."""
    tree = tmp_path / "tree"
    shutil.copytree(assets["tree"], tree)
    src = tree / TEST0
    odd = Path(os.fsdecode(os.fsencode(src.parent) + b"/" + os.fsencode(src.stem) + b"\xff.wav"))
    src.rename(odd)
    out = tmp_path / "rise"
    args = _rise_args(assets["ckpt"], odd, out, "--listen", "1")
    assert main([str(a) for a in ["-q", *args]]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    (h5,) = list(out.rglob("*.h5"))
    assert main([str(a) for a in ["-q", *_listen_args(h5, tmp_path / "listen")]]) == 0
    args = [a for a in _tsne_args(assets["ckpt"], tree, tmp_path / "tsne") if a != "--no-cache"]
    assert main([str(a) for a in ["-q", *args]]) == 0
    assert "Traceback" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- interrupted synth

SYNTH_TINY = PresetConfig("tiny", machines=("fan",), dev_sections=(0,), eval_sections=(3,),
                          duration_s=1.0, n_train_source=4, n_train_target=2, n_test=2)  # fmt: skip


def test_synth_rerun_after_an_interruption_completes(tmp_path, monkeypatch):
    """Killed after some clips (no synth.json yet): the same command continues the tree."""
    import asdxai.data.synth as synth

    real = synth._work

    def interrupted(batch):
        real(batch)
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "_work", interrupted)
    out = tmp_path / "tree"
    with pytest.raises(KeyboardInterrupt):
        synth.generate(out, preset=SYNTH_TINY, seed=0, workers=1, progress=False)
    assert list(out.rglob("*.wav")) and not (out / "synth.json").exists()
    monkeypatch.setattr(synth, "_work", real)
    with pytest.raises(ConfigError, match="not synthetic"):  # other settings: still refused
        synth.generate(out, preset=SYNTH_TINY, seed=1, workers=1, progress=False)
    synth.generate(out, preset=SYNTH_TINY, seed=0, workers=1, progress=False)
    assert (out / "synth.json").is_file() and not list(out.glob(".synth-*"))


def test_stale_partial_trees_of_dead_processes_are_removed(tmp_path, monkeypatch, capsys):
    import subprocess
    import sys

    from asdxai.workflows.defaults import ensure_synthetic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    root = tmp_path / "synthetic"
    stale, live = (root.with_name(f"synthetic.partial-{p}") for p in (dead, os.getppid()))
    for folder in (stale, live):
        (folder / "dev_data").mkdir(parents=True)

    def fake(out, **kw):
        Path(out).mkdir(parents=True)
        (Path(out) / "synth.json").write_text("{}")
        return Path(out)

    from asdxai.workflows import defaults  # the name ensure_synthetic calls

    monkeypatch.setattr(defaults, "generate", fake)
    ensure_synthetic(root)
    assert (root / "synth.json").is_file() and not stale.exists() and live.is_dir()
    assert f"removing {stale}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option,value,needle",
    [("--ig-steps", "1000000", "ig_steps"), ("--shap-samples", "100000", "shap_samples"),
     ("--occlusion-window", "100000x8", "occlusion_window")],
)  # fmt: skip
def test_method_counts_beyond_their_memory_are_refused_before_any_work(
    option, value, needle, assets, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["compare-explainers", "--checkpoint", assets["ckpt"], "--clip", assets["clip"],
            "--out", out, "--methods", "saliency", "--device", "cpu", option, value]  # fmt: skip
    refused(capsys, argv, [needle, option], out)


def test_nonsense_counts_of_models_and_backends_are_refused():
    from asdxai.losses import build_loss
    from asdxai.scoring import KMeansBackend

    with pytest.raises(ConfigError, match=r"^k must be an integer in \[1, 4096\], got 100000$"):
        KMeansBackend(k=100_000).fit({"fan_section_00": (np.ones((40, 4)), np.ones((2, 4)))})
    with pytest.raises(ConfigError, match=r"^sub_clusters must be an integer in \[1, 1024\]"):
        build_loss("sc-adacos", 10, 256, sub_clusters=100_000, mixup=True)
    with pytest.raises(ConfigError, match="centre values"):
        build_loss("sc-adacos", 100_000, 1024, sub_clusters=1024, mixup=True)


def test_train_out_naming_a_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "newdir"
    refused(capsys, ["train", "--out", f"{out}/", "--epochs", "1"], ["is a folder", "--out"], out)
    assert not out.exists()


def test_a_method_named_twice_is_one_row(assets, tmp_path):
    from asdxai.workflows.compare import compare_explainers

    comparison = compare_explainers(
        [assets["ckpt"]], [assets["clip"]], methods=["random", "random"], device="cpu",
        progress=False,
    )  # fmt: skip
    assert [r["method"] for r in comparison.rows] == ["random", "energy"]


def test_synth_beyond_the_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    """``ulimit -f``: refused before a clip is written (it used to end in h5py tracebacks and
    a segfault while writing the ground truth)."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    out = tmp_path / "tree"
    run = subprocess.run(
        [sys.executable, "-m", "asdxai", "synth", "--preset", "mini", "--no-progress", str(out)],
        preexec_fn=limit, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert "File too large" in lines[0] and "Traceback" not in run.stderr
    assert not out.exists()
