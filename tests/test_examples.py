"""Every script in examples/ runs end to end (in-process, quick settings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_explain_own_scorer_finds_the_patch(tmp_path, capsys):
    assert _load("explain_own_scorer").main(["--quick", "--out", str(tmp_path)]) == 0
    assert "most important cell" in capsys.readouterr().out
    assert (tmp_path / "explain_own_scorer.png").stat().st_size > 0


def test_project_own_embeddings(tmp_path, capsys):
    assert _load("project_own_embeddings").main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nearest-normal distance" in out and "(192, 2)" in out
    assert (tmp_path / "project_own_embeddings.png").stat().st_size > 0


def test_train_and_score(tmp_path, capsys):
    argv = ["--quick", "--out", str(tmp_path), "--device", "cpu"]
    assert _load("train_and_score").main(argv) == 0
    assert "harmonic mean" in capsys.readouterr().out
    from asdxai.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt.backend is not None and ckpt.net_config["arch"] == "spectrogram"
    assert sorted((tmp_path / "scores").glob("anomaly_score_*_test.csv"))


def test_explain_own_detector_from_the_command_line(tmp_path, capsys, monkeypatch):
    assert _load("explain_own_detector").main(["--quick", "--out", str(tmp_path)]) == 0
    assert "most important cell" in capsys.readouterr().out
    assert (tmp_path / "whistle.png").stat().st_size > 0
    from asdxai.cli import main
    from asdxai.explain.result import load_result

    monkeypatch.syspath_prepend(str(EXAMPLES))
    out = tmp_path / "cli"
    assert main(["rise", "--detector", "explain_own_detector:make_detector", "--clip",
                 str(tmp_path / "whistle.wav"), "--out", str(out), "--n-masks", "200",
                 "--study", "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    res = load_result(out / "whistle.h5")
    assert res.meta["detector"] == "band-energy" and res.meta["domain"] == "signal"
    assert (out / "whistle.png").is_file()
