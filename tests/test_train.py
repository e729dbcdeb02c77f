import math

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader, TensorDataset

from asdxai import ConfigError, DataError, FeatureConfig
from asdxai.data.records import ClipRecord
from asdxai.errors import NonFiniteError
from asdxai.nets import NetConfig
from asdxai.train import HISTORY_KEYS, TrainConfig, fit_encoder, train_model

# Tiny, fast features: 0.5 s clips, 61 frames x 129 bins, 4,000-bin spectrum.
FEAT = FeatureConfig(duration_s=0.5, n_fft=256, hop_length=128)
NET = NetConfig(width=0.125)


def _tones(n_classes=4, per_class=16, seed=0):
    """One tone frequency per class plus noise: an easy auxiliary task."""
    rng = np.random.default_rng(seed)
    t = np.arange(FEAT.n_samples) / FEAT.sample_rate
    waves, labels = [], []
    for c in range(n_classes):
        f = 300.0 * (c + 1) * 1.7
        for _ in range(per_class):
            phase = rng.uniform(0, 2 * np.pi)
            w = 0.5 * np.sin(2 * np.pi * f * (1 + rng.normal(0, 0.01)) * t + phase)
            waves.append(w + 0.05 * rng.standard_normal(t.size))
            labels.append(c)
    return torch.tensor(np.array(waves), dtype=torch.float32), np.array(labels)


def _loader(waves, batch_size=16, seed=0):
    ds = TensorDataset(waves, torch.arange(len(waves)))
    return DataLoader(
        ds, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )


def _fit(cfg, waves, labels, n_classes, net=NET, **kw):
    return fit_encoder(
        _loader(waves, cfg.batch_size, cfg.seed),
        labels,
        n_classes=n_classes,
        feat_cfg=FEAT,
        net_cfg=net,
        train_cfg=cfg,
        device="cpu",
        progress=False,
        **kw,
    )


def test_sc_adacos_ic_compactness_decreases_inter_class_stays_at_two():
    # 6 classes x 16 sub-clusters in 512-D: the other classes' centres are many and near-orthogonal.
    waves, labels = _tones(n_classes=6, per_class=8)
    cfg = TrainConfig(loss="sc-adacos", epochs=5, batch_size=16, sub_clusters=16, lr=5e-3)
    seen = []
    enc, hist = _fit(
        cfg,
        waves,
        labels,
        6,
        net=NetConfig(width=0.125, embed_dim=512),
        callback=lambda key, epoch, stats: seen.append((key, epoch)),
    )
    assert set(hist) == set(HISTORY_KEYS) and all(len(v) == 5 for v in hist.values())
    ic, inter = hist["ic_compactness"], hist["inter_compactness"]
    assert ic[-1] < ic[0] - 0.02, ic
    assert np.mean(ic[-2:]) < np.mean(ic[:2]), ic
    assert all(abs(v - 2.0) < 0.1 for v in inter), inter
    assert hist["angular"][-1] < hist["angular"][0]
    assert all(math.isfinite(s) and s > 0 for s in hist["scale"])
    assert seen == [("train", e) for e in range(1, 6)]
    assert not enc.training


@pytest.mark.parametrize("loss", ["compactness", "compactness-cce", "adacos"])
def test_other_losses_train_and_record_history(loss):
    waves, labels = _tones(n_classes=3, per_class=8)
    cfg = TrainConfig(loss=loss, epochs=2, batch_size=8, mixup=loss != "adacos")
    _, hist = _fit(cfg, waves, labels, 3)
    assert all(len(v) == 2 for v in hist.values())
    assert all(math.isfinite(v) for v in hist["angular"] + hist["ic_compactness"])
    assert math.isnan(hist["scale"][0]) == loss.startswith("compactness")


def test_same_seed_same_weights_other_seed_differs():
    waves, labels = _tones(n_classes=2, per_class=8)
    cfg = TrainConfig(loss="sc-adacos", epochs=2, batch_size=8, sub_clusters=2, seed=3)
    a, ha = _fit(cfg, waves, labels, 2)
    b, hb = _fit(cfg, waves, labels, 2)
    c, _ = _fit(TrainConfig(**{**cfg.to_dict(), "seed": 4}), waves, labels, 2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ha == hb
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_spectrogram_only_encoder_and_bf16_training():
    waves, labels = _tones(n_classes=2, per_class=8)
    cfg = TrainConfig(loss="adacos", epochs=1, batch_size=8, precision="bf16")
    enc, hist = _fit(cfg, waves, labels, 2, net=NetConfig(arch="spectrogram", width=0.125))
    assert not enc.needs_spectrum and math.isfinite(hist["angular"][0])


def test_divergence_on_the_last_step_returns_no_weights():
    """lr 1e308: the single step's loss is finite, the weights it leaves are not."""
    waves, labels = _tones(n_classes=2, per_class=4)
    cfg = TrainConfig(loss="adacos", epochs=1, batch_size=8, mixup=False, lr=1e308)
    with pytest.raises(NonFiniteError, match=r"^train: training diverged: weight \S+ is not fin"):
        _fit(cfg, waves, labels, 2)


def test_divergence_mid_run_stops_at_the_first_non_finite_loss():
    waves, labels = _tones(n_classes=2, per_class=8)
    cfg = TrainConfig(loss="adacos", epochs=3, batch_size=8, mixup=False, lr=1e308)
    with pytest.raises(NonFiniteError, match=r"the loss is nan at step 2 of epoch 1; nothing is s"):
        _fit(cfg, waves, labels, 2)


def test_train_config_validation():
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="must be"):
            TrainConfig(lr=bad)
    with pytest.raises(ConfigError, match="finite"):
        TrainConfig(weight_decay=float("inf"))
    with pytest.raises(ConfigError):
        TrainConfig(loss="arcface")
    with pytest.raises(ConfigError):
        TrainConfig(task="colour")
    with pytest.raises(ConfigError):
        TrainConfig(precision="fp8")
    with pytest.raises(ConfigError):
        TrainConfig(batch_size=1)
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


# ----------------------------------------------------------------------------- records


def _tree(tmp_path):
    """A tiny dev-train set: 2 machines x 2 sections x 2 attributes x 3 clips (0.5 s wavs)."""
    rng = np.random.default_rng(0)
    t = np.arange(FEAT.n_samples) / FEAT.sample_rate
    records = []
    for mi, machine in enumerate(("fan", "valve")):
        folder = tmp_path / "dev_data" / machine / "train"
        folder.mkdir(parents=True)
        for section in ("00", "01"):
            for ai, attr in enumerate(("a_1", "a_2")):
                for k in range(3):
                    index = ai * 3 + k
                    name = f"section_{section}_source_train_normal_{index:04d}_{attr}.wav"
                    f = 400 * (mi + 1) + 150 * int(section) + 60 * ai
                    wave = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)
                    sf.write(folder / name, wave.astype(np.float32), FEAT.sample_rate)
                    records.append(
                        ClipRecord(
                            path=folder / name,
                            dataset="DCASE2022",
                            split="dev",
                            subset="train",
                            machine=machine,
                            section=section,
                            domain="source",
                            label="normal",
                            index=index,
                            attributes=attr,
                        )
                    )
    return records


@pytest.mark.parametrize(
    "task,loss,n_classes",
    [
        ("none", "compactness", 1),
        ("machine", "compactness-cce", 2),
        ("section", "adacos", 4),
        ("attribute", "sc-adacos", 8),
    ],
)
def test_every_task_on_records(tmp_path, task, loss, n_classes):
    records = _tree(tmp_path)
    cfg = TrainConfig(loss=loss, task=task, epochs=1, batch_size=8, sub_clusters=2)
    ckpt = train_model(
        records, feat_cfg=None, net_cfg=NET, train_cfg=cfg, device="cpu", progress=False
    )
    assert ckpt.feature_config["duration_s"] == pytest.approx(0.5)
    assert list(ckpt.encoders) == ["all"] and len(ckpt.class_names["all"]) == n_classes
    assert ckpt.task == task and not ckpt.per_section
    assert ckpt.model_key_for("fan_section_00") == "all"
    assert len(ckpt.history["all"]["angular"]) == 1


def test_per_section_trains_one_single_class_model_per_section(tmp_path):
    records = _tree(tmp_path)
    test_rec = ClipRecord(**{**records[0].__dict__, "subset": "test"})
    cfg = TrainConfig(loss="compactness", task="section", per_section=True, epochs=1, batch_size=4)
    ckpt = train_model(
        records + [test_rec],
        feat_cfg=FeatureConfig(duration_s=0.5, n_fft=256, hop_length=128),
        net_cfg=NET,
        train_cfg=cfg,
        device="cpu",
        progress=False,
    )
    keys = ["fan_section_00", "fan_section_01", "valve_section_00", "valve_section_01"]
    assert sorted(ckpt.encoders) == keys
    assert ckpt.per_section and all(ckpt.class_names[k] == [k] for k in keys)
    assert ckpt.model_key_for("valve_section_01") == "valve_section_01"
    enc = ckpt.build_encoder(model_key="fan_section_01")
    assert not enc.training
    # the single-class histories have no inter-class term
    assert math.isnan(ckpt.history["fan_section_00"]["inter_compactness"][0])


def test_angular_loss_with_one_class_is_a_clear_error(tmp_path):
    records = _tree(tmp_path)[:6]
    with pytest.raises(ConfigError, match="at least 2 classes"):
        train_model(
            records,
            feat_cfg=FEAT,
            net_cfg=NET,
            train_cfg=TrainConfig(loss="adacos", task="none", epochs=1),
            device="cpu",
            progress=False,
        )
    with pytest.raises(DataError):
        train_model(
            records[:1],
            feat_cfg=FEAT,
            net_cfg=NET,
            train_cfg=TrainConfig(epochs=1),
            device="cpu",
            progress=False,
        )


# ----------------------------------------------------------------------------- CLI, recipes


def test_cli_trains_trials_and_prints_epochs(tmp_path, capsys, monkeypatch):
    from asdxai.checkpoint import load_checkpoint
    from asdxai.cli import main

    _tree(tmp_path)
    monkeypatch.delenv("ASDXAI_DATA", raising=False)
    out = tmp_path / "m.pt"
    argv = ["train", "--data", str(tmp_path), "--out", str(out), "--recipe",
            "synthetic-small-adacos-attribute", "--splits", "dev-train", "--width", "0.125",
            "--epochs", "1", "--batch-size", "8", "--trials", "2", "--seed", "5",
            "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "epoch 1/1" in text and "m_trial1.pt" in text
    ckpts = [load_checkpoint(tmp_path / f"m_trial{i}.pt") for i in range(2)]
    assert [c.seed for c in ckpts] == [5, 6]
    assert ckpts[0].train_config["loss"] == "adacos" and ckpts[0].net_config["width"] == 0.125
    assert len(ckpts[0].class_names["all"]) == 8


def test_cli_diverging_run_exits_2_and_saves_nothing(tmp_path, capsys, monkeypatch):
    """One batch, one step: the divergence shows only in the weights the last step leaves."""
    from asdxai.cli import main

    _tree(tmp_path)
    monkeypatch.delenv("ASDXAI_DATA", raising=False)
    out = tmp_path / "m.pt"
    argv = ["-q", "train", "--data", str(tmp_path), "--out", str(out), "--recipe",
            "synthetic-small-adacos-attribute", "--splits", "dev-train", "--width", "0.125",
            "--epochs", "1", "--batch-size", "64", "--lr", "1e308",
            "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "training diverged" in err[0], err
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob(".*.part"))


def test_cli_data_env_pointing_nowhere_is_named(tmp_path, capsys, monkeypatch):
    from asdxai.cli import main

    # without --data the default is $ASDXAI_DATA, else the cached synthetic tree
    monkeypatch.setenv("ASDXAI_DATA", str(tmp_path / "nowhere"))
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "m.pt")]) == 2
    assert "ASDXAI_DATA" in capsys.readouterr().err


def test_recipes_cover_table_ii():
    from asdxai.recipes import Recipe, list_recipes

    names = list_recipes()
    assert sum(n.startswith("dcase2022-") for n in names) == 8
    assert sum(n.startswith("dcase2023-") for n in names) == 7
    for name in names:
        r = Recipe.load(name)
        assert r.train_config().task == r.settings["task"]
        assert r.net_config().arch == r.settings["arch"]
    with pytest.raises(ConfigError, match="unknown recipe"):
        Recipe.load("no-such-recipe")


def test_recipe_overrides_and_configs(tmp_path):
    from asdxai.recipes import Recipe

    r = Recipe.load("synthetic-small-compactness-none-spectrogram")
    o = r.with_overrides(epochs=3, classes="machine", width=None)
    assert (o.train_config(seed=4).epochs, o.train_config().task) == (3, "machine")
    assert o.train_config(seed=4).seed == 4 and o.net_config().width == r.net_config().width
    assert o.splits == ("dev-train", "eval-train") and r.train_config().epochs == 10
    bad = tmp_path / "bad.json"
    bad.write_text('{"loss": "compactness", "epochs": "ten"}')
    with pytest.raises(ConfigError):
        Recipe.load(bad)
    bad.write_text('{"lossy": 1}')
    with pytest.raises(ConfigError, match="unknown keys: lossy"):
        Recipe.load(bad)


def test_cli_backend_variant_and_no_backend(tmp_path, monkeypatch):
    from asdxai.checkpoint import load_checkpoint
    from asdxai.cli import main

    _tree(tmp_path)
    monkeypatch.delenv("ASDXAI_DATA", raising=False)
    base = ["train", "--data", str(tmp_path), "--splits", "dev-train", "--width", "0.125",
            "--epochs", "1", "--batch-size", "8", "--arch", "spectrogram", "--loss",
            "compactness", "--classes", "none", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "a.pt"), "--backend", "reference"]) == 0
    assert load_checkpoint(tmp_path / "a.pt").backend["variant"] == "reference"
    assert main([*base, "--out", str(tmp_path / "b.pt"), "--no-backend"]) == 0
    assert load_checkpoint(tmp_path / "b.pt").backend is None
