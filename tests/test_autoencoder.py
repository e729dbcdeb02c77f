"""The DCASE-baseline-style autoencoder detector: features, known answers, files, ONNX."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from conftest import tiny_tree

from asdxai.checkpoint import write_weights_only
from asdxai.data.audio import read_clip
from asdxai.data.records import scan
from asdxai.detectors.autoencoder import (
    FAMILY,
    AutoencoderConfig,
    MachineAutoencoder,
    load_autoencoder,
    mel_filterbank,
    train_autoencoder,
)
from asdxai.errors import CheckpointError, ConfigError
from asdxai.features import FeatureConfig

N_SAMPLES = 4000  # 0.25 s at 16 kHz
TINY = AutoencoderConfig(n_fft=256, hop_length=128, n_mels=16, context=3, hidden=16, layers=1,
                         bottleneck=4)  # fmt: skip
TRAIN = {"config": TINY, "epochs": 8, "batch_size": 32, "lr": 3e-3, "device": "cpu",
         "progress": False}  # fmt: skip


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """fan (300 Hz) and pump (900 Hz) clips; the anomalous test clips add a 5 kHz tone."""
    root = tmp_path_factory.mktemp("tree")
    tiny_tree(root, N_SAMPLES)
    return root


@pytest.fixture(scope="module")
def detector(tree):
    return train_autoencoder(scan(tree, split="dev-train"), seed=0, **TRAIN)


def _waves(records):
    cfg = FeatureConfig(duration_s=N_SAMPLES / 16000)
    return torch.from_numpy(np.stack([read_clip(r.path, cfg) for r in records]))


def test_shapes_of_features_and_scores(detector):
    model = MachineAutoencoder(TINY)
    waves = torch.randn(3, N_SAMPLES) * 0.1
    log_mel = model.log_mel(waves)
    n_frames = 1 + (N_SAMPLES - TINY.n_fft) // TINY.hop_length
    assert log_mel.shape == (3, n_frames, TINY.n_mels)
    vectors = model.context_vectors(log_mel)
    assert vectors.shape == (3, n_frames - TINY.context + 1, TINY.input_dim)
    # vector t is frames t, t+1, t+2 side by side
    assert torch.equal(vectors[:, 4], log_mel[:, 4:7].reshape(3, -1))
    scores = detector.score(waves, "fan_section_00")
    assert scores.shape == (3,) and scores.dtype == torch.float32
    assert torch.isfinite(scores).all()
    assert detector.score_log_mel(detector.log_mel(waves), "fan").equal(scores)


def test_mel_filterbank_triangles_have_unit_area():
    """Slaney normalisation: each triangle integrates to 1 over Hz, so a flat power spectrum
    gives every band n_fft / sample_rate (bins per Hz)."""
    fb = mel_filterbank(16_000, 4096, 32)
    assert fb.shape == (32, 2049) and (fb >= 0).all()
    np.testing.assert_allclose(fb.sum(dim=1).numpy(), 4096 / 16_000, rtol=2e-3)
    peaks = fb.argmax(dim=1)
    assert (peaks[1:] > peaks[:-1]).all()  # centres rise with the band index


def test_a_tone_never_heard_in_training_scores_higher(detector, tree):
    """Trained on tone-free clips for a few epochs, every clip with the added 5 kHz tone
    scores above every normal clip of its machine."""
    test = scan(tree, split="dev-test")
    for machine in ("fan", "pump"):
        recs = [r for r in test if r.machine == machine]
        scores = detector.score(_waves(recs), recs[0].section_key).numpy()
        label = np.array([r.label == "anomaly" for r in recs])
        assert scores[label].min() > scores[~label].max(), (machine, scores)


def test_training_is_deterministic_per_seed_and_machine(detector, tree):
    train = scan(tree, split="dev-train")
    fan_only = train_autoencoder([r for r in train if r.machine == "fan"], seed=0, **TRAIN)
    # machine m's model depends on (seed, m) alone, not on which other machines are trained
    a, b = detector.models["fan"].state_dict(), fan_only.models["fan"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train_autoencoder([r for r in train if r.machine == "fan"], seed=1, **TRAIN)
    assert other.fingerprint != fan_only.fingerprint
    waves = _waves(scan(tree, split="dev-test")[:4])
    assert detector.score(waves, "fan").equal(detector.score(waves, "fan"))


def test_section_key_picks_the_machine_model(detector):
    waves = torch.randn(2, N_SAMPLES) * 0.1
    assert detector.score(waves, "pump_section_01").equal(detector.score(waves, "pump"))
    assert not detector.score(waves, "pump").equal(detector.score(waves, "fan"))
    with pytest.raises(ConfigError, match="no model for machine type 'valve'") as err:
        detector.score(waves, "valve_section_00")
    assert err.value.param == "section"
    with pytest.raises(ConfigError, match="name the clip's section"):
        detector.score(waves)
    with pytest.raises(ConfigError, match=r"shape \(B, L\)"):
        detector.score(waves[0], "fan")
    with pytest.raises(ConfigError, match="shorter than"):
        detector.score(waves[:, : TINY.min_samples - 1], "fan")


def test_save_load_roundtrip(detector, tmp_path):
    path = detector.save(tmp_path / "ae.pt")
    data = torch.load(path, weights_only=True)
    assert data["family"] == FAMILY and set(data["models"]) == {"fan", "pump"}
    loaded = load_autoencoder(path)
    assert loaded.name == "ae.pt" and loaded.sample_rate == 16_000
    assert loaded.fingerprint == detector.fingerprint
    assert loaded.describe()["config"] == detector.describe()["config"] == TINY.to_dict()
    assert loaded.history == detector.history
    waves = torch.randn(3, N_SAMPLES) * 0.1
    assert loaded.score(waves, "fan_section_00").equal(detector.score(waves, "fan_section_00"))


def test_loading_refuses_other_and_damaged_files(detector, tmp_path):
    payload = detector.to_payload()
    write_weights_only({**payload, "family": None}, tmp_path / "enc.pt")
    with pytest.raises(CheckpointError, match=r"enc\.pt: not an autoencoder file"):
        load_autoencoder(tmp_path / "enc.pt")
    payload["config"] = {**payload["config"], "n_mels": 12}
    write_weights_only(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad\.pt: weights of machine 'fan' do not fit"):
        load_autoencoder(tmp_path / "bad.pt")
    payload["config"] = {**payload["config"], "hop_length": 0}
    write_weights_only(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="unusable autoencoder config.*hop_length"):
        load_autoencoder(tmp_path / "bad.pt")
    payload["format_version"] = 2
    write_weights_only(payload, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match=r"new\.pt: autoencoder format_version 2"):
        load_autoencoder(tmp_path / "new.pt")


@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnxscript")),
    reason="needs the onnx extra (onnxruntime, onnxscript)",
)
def test_onnx_export_scores_like_torch(detector, tmp_path):
    import onnxruntime as ort

    path = detector.export_onnx(tmp_path / "ae-pump.onnx", machine="pump_section_01")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["sample_rate"] == "16000" and meta["name"] == "ae-pump.onnx"
    assert meta["machine"] == "pump" and meta["fingerprint"] == detector.fingerprint
    for shape in ((3, N_SAMPLES), (1, 2 * N_SAMPLES)):  # batch and length are dynamic
        waves = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 0.1
        got = session.run(["scores"], {"waves": waves.numpy()})[0]
        np.testing.assert_allclose(got, detector.score(waves, "pump").numpy(), rtol=1e-5, atol=1e-5)
    # silence (what fully masked signal-domain RISE inputs are) keeps the -100 dB floor: the
    # exporter once dropped ``mel + 1e-10`` and scored silence NaN
    silence = torch.zeros(2, N_SAMPLES)
    got = session.run(["scores"], {"waves": silence.numpy()})[0]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, detector.score(silence, "pump").numpy(), rtol=1e-5, atol=1e-5)
