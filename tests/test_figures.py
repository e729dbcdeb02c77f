"""The figure scripts run end to end (tiny tree, one epoch) and reuse their cached models."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

FIGURES = Path(__file__).resolve().parent.parent / "figures"


def _script(name: str):
    if str(FIGURES) not in sys.path:
        sys.path.insert(0, str(FIGURES))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory):
    from asdxai.data.synth import PresetConfig, generate

    preset = PresetConfig(
        "figures-tiny", machines=("fan", "valve"), dev_sections=(0,), eval_sections=(3,),
        duration_s=1.0, n_train_source=8, n_train_target=2, n_test=3,
    )  # fmt: skip
    return generate(tmp_path_factory.mktemp("data"), preset, seed=0, workers=1, progress=False)


def test_fig3_smoke_and_cache(tiny_tree, tmp_path):
    import torch

    torch.set_num_threads(1)
    out = tmp_path / "out"
    argv = ["--data", str(tiny_tree), "--out", str(out), "--trials", "2", "--epochs", "2",
            "--width", "0.125", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert _script("fig3_losses_no_mixup").main(argv) == 0
    for ext in ("png", "pdf", "csv", "json"):
        assert (out / f"fig3_losses_no_mixup.{ext}").stat().st_size > 0
    lines = (out / "fig3_losses_no_mixup.csv").read_text().splitlines()
    assert lines[0] == "epoch,curve,mean,std,n_trials" and len(lines) == 1 + 3 * 2
    ckpts = sorted((out / "_work" / "models").glob("synthetic-small-adacos-attribute-*/seed*.pt"))
    assert [p.name for p in ckpts] == ["seed0.pt", "seed1.pt"]
    from asdxai.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ckpts[0])
    assert ckpt.train_config["mixup"] is False and ckpt.train_config["epochs"] == 2
    assert ckpt.net_config["width"] == 0.125
    stamp = [p.stat().st_mtime_ns for p in ckpts]
    assert _script("fig3_losses_no_mixup").main(argv) == 0  # second run: cached models
    assert [p.stat().st_mtime_ns for p in ckpts] == stamp


@pytest.mark.slow
def test_make_all_quick(tmp_path):
    out = tmp_path / "out"
    assert _script("make_all").main(["--quick", "--out", str(out), "--device", "cpu"]) == 0
    for stem in ("fig2_losses_mixup", "fig3_losses_no_mixup", "fig4_rise", "fig5_tsne"):
        assert (out / f"{stem}.png").is_file() and (out / f"{stem}.pdf").is_file()
    for stem in ("table2_performance_study", "table2_performance_dcase", "table3_tsne_distance"):
        assert all((out / f"{stem}.{ext}").is_file() for ext in ("csv", "md", "tex"))


def test_focus_claim_smoke(tiny_tree, tmp_path):
    import torch

    torch.set_num_threads(1)
    out = tmp_path / "out"
    argv = ["--data", str(tiny_tree), "--out", str(out), "--trials", "1", "--epochs", "1",
            "--width", "0.125", "--device", "cpu", "--no-progress", "--n-masks", "600",
            "--agreement", "0.5"]  # fmt: skip
    assert _script("focus_claim").main(argv) == 0
    rows = (out / "focus_claim.csv").read_text().splitlines()
    # 2 machines x 2 domains x (1 anomalous + 1 normal) clips x 2 models
    assert len(rows) == 1 + 2 * 2 * 2 * 2
    text = (out / "focus_claim.md").read_text()
    assert "machine_focus" in text and "paired Wilcoxon" in text
