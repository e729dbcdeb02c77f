"""``asdxai tsne`` end to end on a hand-built tiny DCASE tree and tiny untrained checkpoints."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from conftest import tiny_tree

from asdxai.checkpoint import Checkpoint, save_checkpoint
from asdxai.cli import main
from asdxai.features import FeatureConfig
from asdxai.nets import NetConfig

FAST = ["--n-iter", "60", "--early-exaggeration-iter", "40", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tsne_cli")
    feat = FeatureConfig(sample_rate=16000, duration_s=0.25, n_fft=256, hop_length=128)
    net = NetConfig(arch="dual", width=0.25, embed_dim=16)
    tiny_tree(tmp / "data", feat.n_samples, n_source=4, n_target=0)
    models = []
    for seed in (0, 1):
        ckpt = Checkpoint.untrained(feat, net, seed=seed)
        models.append(save_checkpoint(ckpt, tmp / f"model{seed}.pt"))
    return main, tmp, models


def test_single_checkpoint_outputs_and_cache(setup, capsys, monkeypatch):
    from asdxai import inference
    from asdxai.embed import load_result

    main, tmp, (m0, _) = setup
    out = tmp / "single"
    argv = [
        "tsne",
        "--checkpoint",
        str(m0),
        "--labels",
        "IC none",
        "--data",
        str(tmp / "data"),
        "--out",
        str(out),
        "--color-by",
        "machine",
        *FAST,
    ]
    calls = []
    real = inference.embed_records

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    from asdxai.workflows import embedding  # the workflow's own name for it

    monkeypatch.setattr(embedding, "embed_records", counting)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "mean nearest-normal distance" in printed and "machine=fan" in printed
    for name in ("IC_none.h5", "IC_none.png", "IC_none_distances.csv", "IC_none_report.csv"):
        assert (out / name).is_file(), name
    res = load_result(out / "IC_none.h5")
    assert res.projection.shape == (24, 2) and res.embeddings.shape == (24, 16)
    assert res.is_anomaly.sum() == 12 and res.distances_2d.shape == (12,)
    assert res.checkpoint["path"] == str(m0) and len(res.checkpoint["sha256"]) == 64
    assert res.config.n_iter == 60 and res.provenance["split"] == "dev-test"
    assert set(res.meta["machine"]) == {"fan", "pump"}
    assert set(res.meta["section"]) == {"fan_section_00", "pump_section_01"}
    with open(out / "IC_none_distances.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 12
    assert len(calls) == 1

    assert main(argv) == 0  # second call: embeddings come from the cache
    assert len(calls) == 1
    np.testing.assert_array_equal(load_result(out / "IC_none.h5").projection, res.projection)

    # --transform: place the clips into the stored projection
    out2 = tmp / "transformed"
    assert (
        main(
            [
                *argv[: -len(FAST) - 4],
                "--out",
                str(out2),
                "--transform",
                str(out / "IC_none.h5"),
                *FAST,
            ]
        )
        == 0
    )
    moved = load_result(out2 / "IC_none.h5")
    assert moved.reference["path"] == str(out / "IC_none.h5")
    assert moved.projection.shape == (24, 2)


def test_trials_write_table3_and_panels(setup, capsys):
    main, tmp, (m0, m1) = setup
    ckpts = []
    for name, src in (("a1", m0), ("a2", m0), ("b1", m1), ("b2", m1)):
        ckpts.append(shutil.copy(src, tmp / f"{name}.pt"))
    out = tmp / "trials"
    assert (
        main(
            [
                "tsne",
                "--checkpoint",
                *map(str, ckpts),
                "--labels",
                "A",
                "B",
                "--trials",
                "--group-size",
                "2",
                "--data",
                str(tmp / "data"),
                "--out",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    assert "Table III" in capsys.readouterr().out
    assert (out / "tsne_panels.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("A_trial1.h5", "A_trial2.h5", "B_trial1.png", "B_trial2_distances.csv"):
        assert (out / name).is_file(), name
    with open(out / "table3.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["label"] for r in rows] == ["A", "B"]
    assert all(r["n_trials"] == "2" for r in rows)
    # the same checkpoint and t-SNE seed twice: identical trials, std 0
    assert float(rows[0]["dist_2d_std"]) == 0.0 and float(rows[0]["dist_2d_mean"]) > 0
    assert "± 0.000" in (out / "table3.md").read_text()


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--split", "dev-train"], "no anomalous"),
        (["--labels", "a", "b"], "--labels"),
        (["--trials", "--group-size", "2"], "multiple of --group-size"),
    ],
)
def test_bad_input_is_one_clear_error(setup, capsys, extra, match):
    main, tmp, (m0, _) = setup
    argv = [
        "tsne",
        "--checkpoint",
        str(m0),
        "--data",
        str(tmp / "data"),
        "--out",
        str(tmp / "bad"),
        *FAST,
        *extra,
    ]
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_missing_data_and_checkpoint(setup, capsys, monkeypatch):
    main, tmp, (m0, _) = setup
    monkeypatch.setenv("ASDXAI_DATA", str(tmp / "nowhere"))  # the default when --data is absent
    assert main(["tsne", "--checkpoint", str(m0), "--out", str(tmp / "bad"), *FAST]) == 2
    assert "ASDXAI_DATA" in capsys.readouterr().err
    assert (
        main(
            [
                "tsne",
                "--checkpoint",
                str(tmp / "nope.pt"),
                "--data",
                str(tmp / "data"),
                "--out",
                str(tmp / "bad"),
                *FAST,
            ]
        )
        == 2
    )
    assert "nope.pt" in capsys.readouterr().err
