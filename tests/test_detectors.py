"""The detector protocol: the checking wrapper, the three adapters, signal-domain masks."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_checkpoint, tiny_tree
from torch import nn

from asdxai.cli import main
from asdxai.data.audio import write_wav
from asdxai.detectors import CheckedDetector, load_detector, weights_fingerprint
from asdxai.errors import DetectorError
from asdxai.explain import RISEExecution, RISEMaskConfig
from asdxai.explain.focus import map_focus
from asdxai.explain.result import load_result
from asdxai.explain.signal import signal_grid, stft_masking
from asdxai.features import FeatureConfig
from asdxai.workflows.explain import Explainer, MapSettings

RATE = 16_000
SECTION = "fan_section_00"


class ConvEnergy(nn.Module):
    """A small waveform detector: log energy of a fixed random filter bank (ONNX-exportable)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 64, stride=32, bias=False)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(seed)
            self.conv.weight.copy_(torch.randn(4, 1, 64, generator=gen))

    def forward(self, waves: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B,)
        return torch.log1p((self.conv(waves[:, None]) ** 2).mean(dim=(1, 2)))


class TorchDetector:
    """A torch module as a detector."""

    def __init__(self, module: nn.Module, name: str = "conv-energy") -> None:
        self.module, self.name, self.sample_rate = module.eval(), name, RATE
        self.fingerprint = weights_fingerprint(module)

    def describe(self) -> dict:
        return {}

    @torch.no_grad()
    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        return self.module(waves.float())


class BandWindow:
    """Analytic black box: energy of 2-4 kHz in 0.5-0.8 s (own STFT, 512 / 128)."""

    name, fingerprint, sample_rate = "band-window", "0" * 64, RATE

    def describe(self) -> dict:
        return {}

    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        spec = torch.stft(waves, 512, 128, window=torch.hann_window(512), center=False,
                          return_complex=True).abs() ** 2  # (B, 257, T)  # fmt: skip
        t = 256 / RATE + torch.arange(spec.shape[-1]) * 128 / RATE
        f = torch.arange(257) * RATE / 512
        band = ((f >= 2000) & (f < 4000))[:, None] & ((t >= 0.5) & (t < 0.8))[None]
        return (spec * band).sum(dim=(1, 2))


def _noise_clip(path, seconds=1.0, seed=0):
    wave = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    return write_wav(path, wave.astype(np.float32), RATE)


def _settings(n_masks=400, **mask):
    mask = {"time_cells": 10, "freq_cells": 16, "block_size": 200, **mask}
    return MapSettings(RISEMaskConfig(**mask), n_masks, 0, "centered", None)


EX = RISEExecution(device="cpu", batch_size=100, progress=False)


def test_checked_detector_refuses_broken_promises():
    waves = torch.zeros(3, 2048)
    good = TorchDetector(ConvEnergy())
    assert CheckedDetector(good).score(waves).shape == (3,)

    class Bad(TorchDetector):
        def __init__(self, fn):
            super().__init__(ConvEnergy(), name="bad-one")
            self.fn = fn

        def score(self, waves, section=None):
            return self.fn(waves)

    calls = iter(range(100))
    cases = {
        "shape": lambda w: torch.zeros(len(w), 2),
        "non-finite": lambda w: torch.full((len(w),), float("nan")),
        "different scores": lambda w: torch.full((len(w),), float(next(calls))),
        "not a tensor": lambda w: [0.0] * len(w),
    }
    for words, fn in cases.items():
        with pytest.raises(DetectorError, match=f"detector bad-one: .*{words}"):
            CheckedDetector(Bad(fn)).score(waves)
    with pytest.raises(DetectorError, match="not a detector"):
        CheckedDetector(object())


def test_broken_detector_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    module = tmp_path / "broken_det.py"
    module.write_text(textwrap.dedent('''
        import torch
        class Det:
            name, fingerprint, sample_rate = "nan-detector", "ab" * 32, 16000
            def describe(self):
                return {}
            def score(self, waves, section=None):
                return torch.full((len(waves),), float("nan"))
        def make():
            return Det()
    '''))  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    clip = _noise_clip(tmp_path / "x.wav")
    out = tmp_path / "out"
    code = main(["rise", "--detector", "broken_det:make", "--clip", str(clip), "--out", str(out),
                 "--n-masks", "100", "--device", "cpu", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nan-detector" in err[0] and "non-finite" in err[0]
    assert not list(out.rglob("*.h5")) and not list(out.rglob("*.png"))
    sys.modules.pop("broken_det", None)


def test_checkpoint_adapter_is_todays_scorer(tmp_path):
    from asdxai.nets import encoder_inputs

    feat = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)
    for arch in ("spectrogram", "dual"):
        path = tiny_checkpoint(tmp_path / f"{arch}.pt", feat, arch=arch)
        det = load_detector(path, device="cpu")
        assert det.name == f"{arch}.pt" and len(det.fingerprint) == 64 and det.sample_rate == RATE
        waves = 0.1 * torch.randn(3, feat.n_samples, generator=torch.Generator().manual_seed(0))
        inputs = encoder_inputs(waves, feat, arch=arch)
        want = det.scorer(inputs["spec"], SECTION, inputs["spectrum"])
        assert torch.allclose(det.score(waves, SECTION), want)
        tf = det.time_frequency(waves[0], SECTION)
        assert torch.equal(tf.x, inputs["spec"][0]) and tf.log_x.shape == tuple(tf.x.shape)
        assert torch.allclose(tf.score(tf.x[None]), want[:1], atol=1e-6)


def test_factory_detector_runs_from_the_command_line(tmp_path, monkeypatch, capsys):
    module = tmp_path / "my_det.py"
    module.write_text(textwrap.dedent('''
        import torch
        from test_detectors import ConvEnergy, TorchDetector
        def make(device="cpu"):
            return TorchDetector(ConvEnergy())
    '''))  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    clip = _noise_clip(tmp_path / "x.wav")
    out = tmp_path / "out"
    assert main(["rise", "--detector", "my_det:make", "--clip", str(clip), "--out", str(out),
                 "--n-masks", "200", "--study", "--time-cells", "10",
                 "--freq-cells", "16", "--block-size", "100", "--device", "cpu",
                 "--no-progress"]) == 0  # fmt: skip
    res = load_result(out / "x.h5")
    assert main(["rise", "--detector", "my_det:make", "--clip", str(clip), "--out", str(out),
                 "--n-masks", "200", "--study", "--time-cells", "10", "--freq-cells", "16",
                 "--block-size", "100", "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    assert "already complete, kept" in capsys.readouterr().out  # resumed by fingerprint
    assert res.meta["detector"] == "conv-energy" and res.meta["domain"] == "signal"
    assert res.meta["detector_spec"] == "my_det:make" and res.meta["section"] is None
    assert res.importance.shape == (30, 513) and (out / "x.png").is_file()
    assert main(["listen", "--map", str(out / "x.h5"), "--device", "cpu"]) == 0
    assert "flagged" in capsys.readouterr().out and (out / "x_flagged.wav").is_file()
    with pytest.raises(DetectorError, match="cannot import"):
        load_detector("no_such_module_here:make")
    sys.modules.pop("my_det", None)


def test_onnx_detector_matches_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    torch_det = TorchDetector(ConvEnergy(seed=3))
    path = tmp_path / "conv.onnx"
    torch.onnx.export(
        torch_det.module, (torch.zeros(2, RATE),), str(path), input_names=["wave"],
        output_names=["score"], dynamic_axes={"wave": {0: "batch"}, "score": {0: "batch"}},
        dynamo=False,
    )  # fmt: skip
    model = onnx.load(str(path))
    for key, value in (("name", "conv-energy.onnx"), ("sample_rate", "16000")):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    det = load_detector(path, device="cpu")
    assert det.name == "conv-energy.onnx" and det.sample_rate == RATE
    waves = 0.1 * torch.randn(5, RATE, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(det.score(waves), torch_det.score(waves), rtol=1e-5, atol=1e-5)
    clip = _noise_clip(tmp_path / "x.wav")
    maps = [
        Explainer(d, device="cpu").explain(clip, settings=_settings(), execution=EX)
        for d in (det, torch_det)
    ]
    assert maps[0].result.meta["domain"] == "signal"
    out = tmp_path / "cli"
    argv = ["rise", "--detector", str(path), "--clip", str(clip), "--out", str(out),
            "--n-masks", "100", "--study", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0  # the ONNX file, no other option about the model
    assert load_result(out / "x.h5").meta["detector"] == "conv-energy.onnx"
    with pytest.raises(DetectorError, match="conv-energy.onnx: onnxruntime cannot score"):
        det.score(torch.zeros(2, 3, 4))
    np.testing.assert_allclose(maps[0].result.importance, maps[1].result.importance, atol=1e-5)


def test_signal_masks_resynthesise_the_clip_and_localise_an_analytic_box(tmp_path):
    clip = _noise_clip(tmp_path / "x.wav", seed=2)
    explainer = Explainer(BandWindow(), device="cpu")
    wave = explainer.read(clip)
    grid = signal_grid(RATE, len(wave))
    resynth = stft_masking(wave, grid)(torch.ones(1, grid.n_frames, grid.n_bins))[0]
    inner = slice(grid.n_fft, len(wave) - 2 * grid.n_fft)  # away from the edge frames
    assert torch.allclose(resynth[inner], wave[inner], atol=1e-5)
    item = explainer.explain(clip, settings=_settings(n_masks=1000), execution=EX)
    imp = item.result.importance  # (T, F) on the 1024 / 512 grid
    t = (np.arange(imp.shape[0]) * 512 + 512) / RATE
    f = np.arange(imp.shape[1]) * RATE / 1024
    patch = ((t > 0.5) & (t < 0.8))[:, None] & ((f > 2000) & (f < 4000))[None]
    focus = map_focus(imp, anomaly_mask=patch)
    assert focus.pixel_auc > 0.95 and focus.pointing_game == 1.0, focus
    with pytest.raises(Exception, match="no time-frequency input"):
        Explainer(BandWindow(), device="cpu", domain="input")


class HighBand:
    """Energy above 4 kHz: finds the tiny tree's 5 kHz anomalies."""

    name, fingerprint, sample_rate = "high-band", "1" * 64, RATE

    def describe(self) -> dict:
        return {"band_hz": [4000, 8000]}

    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        spec = torch.fft.rfft(waves).abs() ** 2
        return torch.log(spec[:, spec.shape[1] // 2 :].mean(dim=1))


def make_high_band() -> HighBand:
    return HighBand()


def test_score_any_detector_writes_the_organisers_files(tmp_path, monkeypatch):
    import json

    tiny_tree(tmp_path / "tree", 4000)
    out = tmp_path / "score"
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    assert main(["score", "--detector", "test_detectors:make_high_band", "--data",
                 str(tmp_path / "tree"), "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    info = json.loads((out / "score.json").read_text())
    assert info["detector"] == "high-band" and set(info["thresholds"]) == {
        "fan_section_00", "pump_section_01"}  # fmt: skip
    assert len(info["detector_fingerprint"]) == 64 and "checkpoint_sha256" not in info
    # the same detector again: the folder holds its own results, not another run's
    assert main(["score", "--detector", "test_detectors:make_high_band", "--data",
                 str(tmp_path / "tree"), "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert info["summary"]["study"]["hmean_auc_all"] == pytest.approx(1.0)
    for name in ("anomaly_score_fan_section_00_test.csv", "results_dcase.csv",
                 "decision_result_pump_section_01_test.csv"):  # fmt: skip
        assert (out / name).is_file()


def test_compare_explainers_takes_any_detector(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    clip = _noise_clip(tmp_path / "x.wav")
    out = tmp_path / "cmp"
    assert main(["compare-explainers", "--detector", "test_detectors:make_high_band", "--clip",
                 str(clip), "--out", str(out), "--methods", "rise-separable", "rise-stft",
                 "occlusion", "random", "--budget", "200", "--cells", "10x16",
                 "--no-stability", "--device", "cpu"]) == 0  # fmt: skip
    rows = (out / "rows.csv").read_text()
    assert "high-band" in rows and "rise-stft" not in rows and "occlusion" in rows


def test_the_interfaces_ten_line_detector_is_explained_from_the_command_line(tmp_path, monkeypatch):
    """docs/INTERFACES.md's example, written to ``mymodule.py`` as the text says, runs."""
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "INTERFACES.md").read_text()
    block = re.search(r"A ten-line detector.*?```python\n(.*?)```", text, re.S).group(1)
    assert len([ln for ln in block.splitlines() if ln.strip()]) <= 12
    (tmp_path / "mymodule.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    clip = _noise_clip(tmp_path / "x.wav")
    out = tmp_path / "rise"
    assert main(["rise", "--detector", "mymodule:make", "--clip", str(clip), "--out", str(out),
                 "--n-masks", "200", "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    assert (out / "x.h5").is_file() and (out / "x.png").is_file()
