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
    return generate(
        tmp_path_factory.mktemp("data"), preset=preset, seed=0, workers=1, progress=False
    )


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


def _focus_argv(tree: Path, out: Path) -> list[str]:
    """One trial of 1-epoch models, 600-mask maps: the focus scripts at smoke size."""
    return ["--data", str(tree), "--out", str(out), "--trials", "1", "--epochs", "1",
            "--width", "0.125", "--device", "cpu", "--no-progress", "--n-masks", "600",
            "--agreement", "0.5"]  # fmt: skip


def test_focus_claim_smoke(tiny_tree, tmp_path):
    import torch

    torch.set_num_threads(1)
    out = tmp_path / "out"
    argv = _focus_argv(tiny_tree, out)
    assert _script("focus_claim").main(argv) == 0
    rows = (out / "focus_claim.csv").read_text().splitlines()
    # 2 machines x 2 domains x (1 anomalous + 1 normal) clips x 2 models
    assert len(rows) == 1 + 2 * 2 * 2 * 2
    text = (out / "focus_claim.md").read_text()
    assert "machine_focus" in text and "paired Wilcoxon" in text
    assert "energy map" in text and "machine_partial_r" in text  # the baseline column
    # the normal-content fill, on the same work folder (cached models)
    fill_argv = [*argv[: argv.index("--n-masks")], "--n-masks", "300", "--machines", "fan"]
    assert _script("fill_reference").main(fill_argv) == 0
    fill = (out / "fill_reference.md").read_text()
    assert "normal-nearest" in fill and "ins − del (normal-mean)" in fill


def test_focus_factors_reuses_claim_maps_and_masks_as_asked(tiny_tree, tmp_path):
    import numpy as np
    import torch

    from asdxai.explain.result import load_result

    torch.set_num_threads(1)
    out = tmp_path / "out"
    argv = _focus_argv(tiny_tree, out)
    assert _script("focus_claim").main(argv) == 0
    rise = out / "_work" / "rise"
    claim_maps = sorted(rise.glob("*/seed0-n600-a0.5/*/*.h5"))
    stamps = [p.stat().st_mtime_ns for p in claim_maps]
    assert _script("focus_factors").main(argv) == 0
    # the separable / silence maps of the anomalous clips are focus_claim's, not recomputed
    assert [p.stat().st_mtime_ns for p in claim_maps] == stamps
    with open(out / "focus_factors.csv") as fh:
        import csv

        rows = list(csv.DictReader(fh))
    # 2 machines x 2 domains x 1 anomalous clip x 3 modes x 2 fills x 2 models
    assert len(rows) == 2 * 2 * 3 * 2 * 2
    for row in rows:
        assert (float(row["fill_value"]) > 0) == (row["fill"] == "mean")
    time_maps = sorted(rise.glob("*/seed0-n600-a0.5-time-silence/*/*.h5"))
    freq_maps = sorted(rise.glob("*/seed0-n600-a0.5-freq-mean/*/*.h5"))
    assert len(time_maps) == len(freq_maps) == 2 * 2 * 2
    for path in time_maps:  # whole frames masked: the map varies along time only
        res = load_result(path)
        assert res.mask_config.mode == "time" and res.mask_config.fill == 0.0
        assert np.allclose(res.importance, res.importance[:, :1])
    for path in freq_maps:
        res = load_result(path)
        assert res.mask_config.mode == "freq" and res.mask_config.fill > 0
        assert np.allclose(res.importance, res.importance[:1, :])
    assert "machine_focus" in (out / "focus_factors.md").read_text()


def test_table_rows_are_every_synthetic_recipe():
    from asdxai.recipes import list_recipes

    rows = _script("_common").synthetic_recipes()
    assert len(rows) == 10 and all(r.startswith("synthetic-small-") for r in rows)
    assert set(rows) == {r for r in list_recipes() if r.startswith("synthetic-small-")}


def test_fig4_explains_the_top_clips_once_into_the_shared_map_folders(tiny_tree, tmp_path):
    """Fig. 4 goes through the one Fig. 4 workflow: two models per clip, every clip anomalous,
    the maps in the study's map folders (shared with focus_claim), reused on a second run."""
    import csv

    import torch

    torch.set_num_threads(1)
    out = tmp_path / "out"
    argv = ["--data", str(tiny_tree), "--out", str(out), "--trials", "1", "--epochs", "1",
            "--width", "0.125", "--device", "cpu", "--no-progress", "--n-masks", "256",
            "--agreement", "0.5"]  # fmt: skip
    assert _script("fig4_rise").main(argv) == 0
    rows = list(csv.DictReader((out / "fig4_rise.csv").open()))
    assert {r["label"] for r in rows} == {"anomaly"}
    assert len({r["machine"] for r in rows}) == len(rows) // 2 >= 1
    assert len({r["model"] for r in rows}) == 2
    maps = sorted((out / "_work" / "rise").rglob("*.h5"))
    assert len(maps) == len(rows)
    assert all(p.parent.parent.name == "seed0-n256-a0.5" for p in maps)
    stamp = [p.stat().st_mtime_ns for p in maps]
    assert _script("fig4_rise").main(argv) == 0
    assert [p.stat().st_mtime_ns for p in maps] == stamp


def test_focus_families_smoke_three_detectors_in_the_signal_domain(tiny_tree, tmp_path):
    """Three detector files (a one-step autoencoder, two untrained spectrogram encoders): one
    signal-domain map per (detector, anomalous clip), the energy-map row, maps read on a re-run."""
    import csv

    import torch
    from conftest import tiny_checkpoint

    from asdxai.data.records import scan
    from asdxai.detectors.autoencoder import AutoencoderConfig, train_autoencoder
    from asdxai.features import FeatureConfig

    torch.set_num_threads(1)
    config = AutoencoderConfig(n_fft=256, hop_length=128, n_mels=16, context=3, hidden=16,
                               layers=1, bottleneck=4)  # fmt: skip
    ae = train_autoencoder(scan(tiny_tree, split="dev-train"), config=config, epochs=1,
                           batch_size=1 << 16, device="cpu", progress=False)  # fmt: skip
    ae_path = ae.save(tmp_path / "ae.pt")
    feat = FeatureConfig(duration_s=1.0)
    sections = ("fan_section_00", "valve_section_00")
    sc = tiny_checkpoint(tmp_path / "sc.pt", feat, section=sections)
    oc = tiny_checkpoint(tmp_path / "oc.pt", feat, section=sections)
    out = tmp_path / "out"
    argv = ["--data", str(tiny_tree), "--out", str(out), "--device", "cpu", "--no-progress",
            "--n-masks", "300", "--agreement", "0.5", "--autoencoder", str(ae_path),
            "--sc-adacos", str(sc), "--one-class", str(oc)]  # fmt: skip
    ff = _script("focus_families")
    assert ff.main(argv) == 0
    with open(out / "focus_families.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # 2 machines x 2 domains x 1 anomalous clip x 3 detectors
    assert len(rows) == 2 * 2 * 3 and {r["label"] for r in rows} == {"anomaly"}
    titles = [t for _, t in ff.FAMILIES]
    assert sorted({r["model"] for r in rows}) == sorted(titles)
    assert {r["detector"] for r in rows} == {"ae.pt", "sc.pt", "oc.pt"}
    for r in rows:  # the derived measure is |partial r|, of the map and of the energy map
        assert float(r["machine_abs_partial_r"]) == abs(float(r["machine_partial_r"]))
    table = (out / "focus_families.md").read_text().split("### ")[1].splitlines()
    assert [line.split(" | ")[0] for line in table if line.startswith("| ")][1:] == [
        f"| {t}" for t in [*titles, "energy map"]
    ]
    maps = sorted((out / "_work" / "rise").rglob("*.h5"))
    assert len(maps) == len(rows) and all(p.parent.parent.name.startswith("signal-") for p in maps)
    from asdxai.explain.result import load_result

    assert {load_result(p).meta["domain"] for p in maps} == {"signal"}
    stamp = [p.stat().st_mtime_ns for p in maps]
    assert ff.main(argv) == 0  # a re-run reads the maps
    assert [p.stat().st_mtime_ns for p in maps] == stamp
