"""k-means backend and the black-box AnomalyScorer, with a tiny hand-made encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_tree
from torch import nn

from asdxai.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from asdxai.cli import main
from asdxai.errors import CheckpointError, ConfigError, DataError
from asdxai.features import FeatureConfig
from asdxai.nets import NetConfig
from asdxai.scoring import AnomalyScorer, KMeansBackend

D = 8


class TinyEncoder(nn.Module):
    """Mean over time of the spectrogram, a fixed linear map, unit norm; optional spectrum."""

    def __init__(self, n_bins: int = 6, n_spec: int = 0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = nn.Linear(n_bins, D, bias=False)
        self.proj.weight.data = torch.randn(D, n_bins, generator=g)
        self.needs_spectrum = n_spec > 0
        if n_spec:
            self.sproj = nn.Linear(n_spec, D, bias=False)
            self.sproj.weight.data = torch.randn(D, n_spec, generator=g)

    def forward(self, spec, spectrum=None):
        e = self.proj(spec.mean(dim=1))
        if self.needs_spectrum:
            e = e + self.sproj(spectrum)
        return e / e.norm(dim=1, keepdim=True)


def _emb(rng, n, centre=None):
    x = rng.normal(size=(n, D)).astype(np.float32)
    if centre is not None:
        x += centre
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _fitted(seed=0, k=4):
    rng = np.random.default_rng(seed)
    data = {
        "fan_section_00": (_emb(rng, 40, 3 * np.eye(D)[0]), _emb(rng, 5)),
        "fan_section_01": (_emb(rng, 30, 3 * np.eye(D)[1]), _emb(rng, 3)),
    }
    return KMeansBackend(k=k, seed=seed).fit(data), data


def _numpy_score(emb, backend, key):
    refs = np.concatenate([backend.means_[key], backend.targets_[key]])
    refs = refs / np.linalg.norm(refs, axis=1, keepdims=True)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos_dist = 1.0 - e @ refs.T  # (N, R)
    return cos_dist.min(axis=1)


def test_fit_shapes_determinism_and_score():
    b, data = _fitted()
    assert b.means_["fan_section_00"].shape == (4, D)
    assert b.targets_["fan_section_01"].shape == (3, D)
    np.testing.assert_allclose(np.linalg.norm(b.targets_["fan_section_00"], axis=1), 1, atol=1e-6)
    b2, _ = _fitted()
    np.testing.assert_array_equal(b.means_["fan_section_00"], b2.means_["fan_section_00"])
    e = _emb(np.random.default_rng(5), 7)
    s = b.score(e, "fan_section_00")
    assert s.shape == (7,) and s.dtype == np.float32
    np.testing.assert_allclose(s, _numpy_score(e, b, "fan_section_00"), atol=1e-6)
    # a training target embedding is a reference: distance 0
    assert b.score(data["fan_section_01"][1][:1], "fan_section_01")[0] == pytest.approx(0, abs=1e-6)


def test_k_equals_n_rule_warns_and_empty_source_fails():
    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match="using k = 3"):
        b = KMeansBackend(k=16).fit({"x_section_00": (_emb(rng, 3), _emb(rng, 2))})
    assert b.k_["x_section_00"] == 3 and b.means_["x_section_00"].shape == (3, D)
    with pytest.raises(DataError, match="no source-domain"):
        KMeansBackend().fit({"x_section_00": (np.zeros((0, D)), _emb(rng, 2))})


def test_no_targets_allowed():
    rng = np.random.default_rng(0)
    b = KMeansBackend(k=2).fit({"x_section_00": (_emb(rng, 10), np.zeros((0, D)))})
    assert b.targets_["x_section_00"].shape == (0, D)
    assert b.references("x_section_00").shape == (2, D)


def test_to_dict_from_dict_round_trip(tmp_path):
    b, _ = _fitted()
    state = b.to_dict()
    assert set(state) == {"k", "variant", "sections"} and state["k"] == 4
    assert state["variant"] == "paper"
    assert isinstance(state["sections"]["fan_section_00"]["means"], torch.Tensor)
    torch.save(state, tmp_path / "b.pt")
    b2 = KMeansBackend.from_dict(torch.load(tmp_path / "b.pt", weights_only=True))
    e = _emb(np.random.default_rng(1), 5)
    for key in b.sections:
        np.testing.assert_array_equal(b.score(e, key), b2.score(e, key))
    with pytest.raises(CheckpointError):
        KMeansBackend.from_dict({"k": 3})


def test_missing_section_lists_available():
    b, _ = _fitted()
    with pytest.raises(DataError, match="fan_section_00, fan_section_01"):
        b.score(np.ones((1, D)), "pump_section_00")
    scorer = AnomalyScorer(TinyEncoder(), b)
    with pytest.raises(DataError, match="available sections"):
        scorer(torch.rand(2, 5, 6), "pump_section_00")


def test_scorer_equals_numpy_reference_and_batched_equals_single():
    b, _ = _fitted()
    enc = TinyEncoder().eval()
    scorer = AnomalyScorer(enc, b).eval()
    spec = torch.rand(9, 5, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batch = scorer(spec, "fan_section_00")
        single = torch.cat([scorer(spec[i : i + 1], "fan_section_00") for i in range(9)])
        emb = enc(spec).numpy()
    assert batch.shape == (9,)
    torch.testing.assert_close(batch, single, atol=1e-6, rtol=0)
    np.testing.assert_allclose(batch.numpy(), _numpy_score(emb, b, "fan_section_00"), atol=1e-5)
    np.testing.assert_allclose(batch.numpy(), b.score(emb, "fan_section_00"), atol=1e-5)
    assert not any(p.requires_grad for p in scorer.buffers())


def test_bind_with_spectrum_and_per_section_encoders():
    b, _ = _fitted()
    encs = {"fan_section_00": TinyEncoder(n_spec=4, seed=1), "fan_section_01": TinyEncoder(seed=2)}
    scorer = AnomalyScorer(encs, b.to_dict()).eval()
    spec = torch.rand(3, 5, 6)
    spectrum = torch.rand(4)
    with pytest.raises(ConfigError, match="spectrum"):
        scorer(spec, "fan_section_00")
    f = scorer.bind("fan_section_00", spectrum)
    with torch.no_grad():
        direct = scorer(spec, "fan_section_00", spectrum.expand(3, -1))
        torch.testing.assert_close(f(spec), direct)
        emb = encs["fan_section_01"](spec).numpy()
        np.testing.assert_allclose(
            scorer.bind("fan_section_01")(spec).numpy(), b.score(emb, "fan_section_01"), atol=1e-5
        )
    assert scorer.model_key_for("fan_section_01") == "fan_section_01"


def test_from_checkpoint_without_backend_says_what_to_do():
    class Ckpt:
        backend = None
        encoders = {"all": {}}

    with pytest.raises(CheckpointError, match="fit-backend"):
        AnomalyScorer.from_checkpoint(Ckpt(), device="cpu")


# --------------------------------------------------------------------------- CLI end to end


def test_score_cli_end_to_end(tmp_path, capsys):
    feat = FeatureConfig(sample_rate=16000, duration_s=0.25, n_fft=256, hop_length=128)
    net = NetConfig(arch="dual", width=0.25, embed_dim=16)
    tiny_tree(tmp_path / "data", feat.n_samples)
    ckpt = Checkpoint.untrained(feat, net, seed=0)
    model = save_checkpoint(ckpt, tmp_path / "model.pt")
    data = ["--data", str(tmp_path / "data")]
    out = tmp_path / "out"
    common = [*data, "--no-progress", "--device", "cpu"]

    # no backend yet: a clear error naming the fix
    assert main(["score", "--checkpoint", str(model), "--out", str(out), *common]) == 2
    assert "fit-backend" in capsys.readouterr().err

    # --fit-backend fits in memory (the file keeps no backend)
    otf = tmp_path / "on_the_fly"
    args = ["score", "--checkpoint", str(model), "--out", str(otf), "--fit-backend", "--k", "4"]
    assert main([*args, "--protocol", "study", *common]) == 0
    assert (otf / "results_study.csv").is_file() and load_checkpoint(model).backend is None

    assert main(["fit-backend", "--checkpoint", str(model), "--k", "4", *common]) == 0
    backend = load_checkpoint(model).backend
    assert sorted(backend["sections"]) == ["fan_section_00", "pump_section_01"]
    assert tuple(backend["sections"]["fan_section_00"]["means"].shape) == (4, 16)
    assert tuple(backend["sections"]["fan_section_00"]["targets"].shape) == (2, 16)

    assert main(["score", "--checkpoint", str(model), "--out", str(out), *common]) == 0
    printed = capsys.readouterr().out
    assert "official score" in printed and "harmonic mean" in printed
    from asdxai.metrics import read_dcase_file

    names, scores = read_dcase_file(out / "anomaly_score_fan_section_00_test.csv")
    assert len(names) == 12 and names[0].startswith("section_00_")
    dnames, dec = read_dcase_file(out / "decision_result_fan_section_00_test.csv")
    import json

    info = json.loads((out / "score.json").read_text())
    thr = info["thresholds"]["fan_section_00"]
    assert dnames == names
    np.testing.assert_array_equal(dec, (scores > thr).astype(float))
    for stem in ("results_study", "results_dcase"):
        for ext in (".csv", ".md", ".tex"):
            assert (out / (stem + ext)).is_file()
    assert set(info["summary"]["dcase"]) >= {"official_score", "hmean_auc_source"}
    # the stored backend and the on-the-fly one (same k, seed) give the same scores
    for name in (
        "anomaly_score_fan_section_00_test.csv",
        "decision_result_pump_section_01_test.csv",
    ):
        assert (otf / name).read_text() == (out / name).read_text()

    # two "trials": per-checkpoint folders and a mean ± std row (std 0 for identical models)
    model2 = save_checkpoint(load_checkpoint(model), tmp_path / "trial2" / "model.pt")
    out2 = tmp_path / "out2"
    args = ["score", "--checkpoint", str(model), str(model2), "--out", str(out2), "--trials"]
    assert main([*args, "--protocol", "study", *common]) == 0
    assert (out2 / "trial2_model" / "anomaly_score_pump_section_01_test.csv").is_file()
    summary = (out2 / "summary_study.md").read_text()
    assert "± 0.0000" in summary


def test_score_cli_on_synthetic_tree_with_eval_ground_truth(tmp_path, capsys):
    """Generator -> fit-backend (dev + eval train) -> score eval-test labelled by ground truth."""
    from asdxai.data import synth

    preset = synth.PresetConfig(
        "test-tiny",
        machines=("fan",),
        dev_sections=(0,),
        eval_sections=(3,),
        duration_s=1.0,  # the generator's background events need clips of at least ~0.5 s
        n_train_source=6,
        n_train_target=2,
        n_test=3,
    )
    root = synth.generate(tmp_path / "data", preset=preset, seed=0, workers=1, progress=False)
    feat = FeatureConfig(sample_rate=16000, duration_s=1.0, n_fft=256, hop_length=128)
    net = NetConfig(arch="spectrogram", width=0.25, embed_dim=16)
    ckpt = Checkpoint.untrained(feat, net, seed=0)
    model = save_checkpoint(ckpt, tmp_path / "model.pt")
    common = ["--data", str(root), "--no-progress", "--device", "cpu"]
    assert main(["fit-backend", "--checkpoint", str(model), "--k", "3", *common]) == 0
    sections = sorted(load_checkpoint(model).backend["sections"])
    assert sections == ["fan_section_00", "fan_section_03"]
    out = tmp_path / "eval"
    args = ["score", "--checkpoint", str(model), "--split", "eval-test", "--out", str(out)]
    assert main([*args, "--protocol", "dcase", *common]) == 0
    assert "official score" in capsys.readouterr().out
    from asdxai.metrics import read_dcase_file

    names, _ = read_dcase_file(out / "anomaly_score_fan_section_03_test.csv")
    assert len(names) == 12 and all(n.startswith("section_03_") for n in names)
    assert (out / "decision_result_fan_section_03_test.csv").is_file()
    assert (out / "results_dcase.csv").is_file()


def test_score_cli_refuses_to_mix_runs_in_one_folder(tmp_path, capsys):
    from conftest import tiny_checkpoint, tiny_tree

    from asdxai.features import FeatureConfig

    feat = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)
    tiny_tree(tmp_path / "tree", feat.n_samples)
    a = tiny_checkpoint(tmp_path / "a.pt", feat, section="fan_section_00")
    base = ["score", "--data", str(tmp_path / "tree"), "--machines", "fan", "--device", "cpu",
            "--no-progress", "--protocol", "study", "--out", str(tmp_path / "s")]  # fmt: skip
    assert main([*base, "--checkpoint", str(a)]) == 0
    assert main([*base, "--checkpoint", str(a)]) == 0  # the same run again: re-scored in place
    other = tiny_checkpoint(tmp_path / "c.pt", feat, arch="dual", section="fan_section_00")
    capsys.readouterr()
    assert main([*base, "--checkpoint", str(other)]) == 2
    assert "another run" in capsys.readouterr().err
    assert main([*base, "--checkpoint", str(other), "--overwrite"]) == 0
