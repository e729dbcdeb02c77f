import os
import zipfile

import h5py
import numpy as np
import pytest
import torch

from asdxai import CheckpointError, FeatureConfig
from asdxai import checkpoint as checkpoint_module
from asdxai.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from asdxai.nets import NetConfig, build_encoder, encoder_inputs
from asdxai.train import TrainConfig

FEAT = FeatureConfig(duration_s=0.5, n_fft=256, hop_length=128)


def _ckpt(arch="dual", keys=("all",), per_section=False):
    net = NetConfig(arch=arch, width=0.125)
    encoders = {}
    for i, key in enumerate(keys):
        torch.manual_seed(i)
        encoders[key] = build_encoder(net, FEAT).state_dict()
    return Checkpoint(
        feature_config=FEAT.to_dict(),
        net_config=net.to_dict(),
        train_config=TrainConfig(per_section=per_section).to_dict(),
        task="attribute",
        per_section=per_section,
        class_names={k: ["a", "b"] for k in keys},
        encoders=encoders,
        seed=7,
        history={k: {"angular": [1.0, 0.5], "ic_compactness": [1.9, 1.5]} for k in keys},
        backend={
            "k": 2,
            "sections": {
                "fan_section_00": {
                    "means": torch.full((2, 256), 1 / 16),  # unit length
                    "targets": torch.full((3, 256), 1 / 16),
                }
            },
        },
        provenance={"device": "cpu", "torch": torch.__version__},
    )


def test_round_trip_rebuilds_identical_encoder(tmp_path):
    ckpt = _ckpt()
    path = save_checkpoint(ckpt, tmp_path / "model.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp files left
    torch.load(path, weights_only=True)  # loadable without code
    back = load_checkpoint(path, arch="dual")
    assert back.seed == 7 and back.task == "attribute" and back.class_names == ckpt.class_names
    assert back.features == FEAT and back.net == NetConfig(width=0.125)
    assert back.history == ckpt.history
    assert isinstance(back.backend["sections"]["fan_section_00"]["means"], torch.Tensor)
    assert back.asdxai_version and back.format_version == 1
    original = build_encoder(NetConfig(width=0.125), FEAT)
    original.load_state_dict(ckpt.encoders["all"])
    original.eval()
    rebuilt = back.build_encoder()
    assert not rebuilt.training
    inputs = encoder_inputs(torch.randn(2, FEAT.n_samples), FEAT, arch="dual")
    torch.testing.assert_close(rebuilt(**inputs), original(**inputs))


def test_model_keys_for_per_section_checkpoints(tmp_path):
    keys = ("fan_section_00", "fan_section_01")
    ckpt = _ckpt("spectrogram", keys, per_section=True)
    back = load_checkpoint(save_checkpoint(ckpt, tmp_path / "m.pt"))
    assert back.model_key_for("fan_section_01") == "fan_section_01"
    with pytest.raises(CheckpointError, match="valve_section_00"):
        back.model_key_for("valve_section_00")
    with pytest.raises(CheckpointError, match="no encoder 'all'"):
        back.build_encoder()
    assert _ckpt().model_key_for("anything") == "all"


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_and_garbage_files(tmp_path):
    path = save_checkpoint(_ckpt(), tmp_path / "model.pt")
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a PyTorch checkpoint"):
        load_checkpoint(junk)


def test_hdf5_random_bytes_and_legacy_pickles_are_not_pytorch_checkpoints(tmp_path):
    h5 = tmp_path / "result.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.zeros(3)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    legacy = tmp_path / "legacy.pt"
    torch.save({"format_version": 1}, legacy, _use_new_zipfile_serialization=False)
    for path, kind in ((h5, "an HDF5 file"), (noise, "not a zip archive"), (legacy, "a pickle")):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        msg = str(info.value)
        assert msg.startswith(f"{path}: not a PyTorch checkpoint ({kind}") and "code" not in msg


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match=r"refused to load: .*\(.*GLOBAL posix.system"):
        load_checkpoint(path)


def test_newer_format_missing_keys_and_wrong_architecture(tmp_path):
    d = torch.load(save_checkpoint(_ckpt(), tmp_path / "ok.pt"), weights_only=True)
    torch.save({**d, "format_version": 99}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "new.pt")
    torch.save({k: v for k, v in d.items() if k != "encoders"}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="missing keys: encoders"):
        load_checkpoint(tmp_path / "partial.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not an asdxai checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    path = save_checkpoint(_ckpt("dual"), tmp_path / "dual.pt")
    with pytest.raises(CheckpointError, match="needs 'spectrogram'"):
        load_checkpoint(path, arch="spectrogram")


def test_weights_of_another_architecture_give_one_clear_error(tmp_path):
    ckpt = _ckpt("dual")
    ckpt.net_config = NetConfig(arch="spectrogram", width=0.125).to_dict()
    path = save_checkpoint(ckpt, tmp_path / "m.pt")
    # refused at load time (names the file), and by build_encoder for an in-memory checkpoint
    with pytest.raises(CheckpointError, match=f"{path}: encoder weights .* do not match the arch"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="do not match the architecture"):
        ckpt.build_encoder()


def test_failed_save_leaves_previous_file(tmp_path):
    path = save_checkpoint(_ckpt(), tmp_path / "model.pt")
    before = path.read_bytes()
    bad = _ckpt()
    bad.provenance = {"x": object()}
    with pytest.raises(CheckpointError, match="cannot store"):
        save_checkpoint(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_archive_that_unpacks_too_large_is_refused_before_loading(tmp_path, monkeypatch):
    path = save_checkpoint(_ckpt(), tmp_path / "model.pt")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model/extra", bytes(8 * 2**20))  # 8 MiB of zeros, a few KiB deflated
    assert path.stat().st_size < 2**20
    monkeypatch.setattr(checkpoint_module, "MAX_CHECKPOINT_BYTES", 4 * 2**20)

    def _never(*args, **kwargs):
        raise AssertionError("torch.load called on an oversized archive")

    monkeypatch.setattr(torch, "load", _never)
    with pytest.raises(CheckpointError, match=f"{path}: checkpoint archive unpacks to 8"):
        load_checkpoint(path)


def test_non_finite_tensors_are_refused(tmp_path):
    d = torch.load(save_checkpoint(_ckpt(), tmp_path / "ok.pt"), weights_only=True)
    key = next(k for k, v in d["encoders"]["all"].items() if v.is_floating_point())
    weights = {**d["encoders"]["all"], key: torch.full_like(d["encoders"]["all"][key], np.nan)}
    torch.save({**d, "encoders": {"all": weights}}, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=f"nan.pt: non-finite values .* encoders/all/{key}"):
        load_checkpoint(tmp_path / "nan.pt")
    backend = d["backend"]
    backend["sections"]["fan_section_00"]["means"][0, 0] = float("inf")
    torch.save({**d, "backend": backend}, tmp_path / "inf.pt")
    with pytest.raises(CheckpointError, match="in backend/sections/fan_section_00/means"):
        load_checkpoint(tmp_path / "inf.pt")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"hop_length": 1}, "unusable feature_config (hop_length must lie"),
        ({"sample_rate": 10**9}, "unusable feature_config (sample_rate must lie"),
        ({"duration_s": 1e7}, "unusable feature_config (a clip of"),
        ({"n_fft": "1024"}, "unusable feature_config (n_fft must be an integer"),
    ],
)
def test_feature_settings_outside_sane_ranges_are_refused(tmp_path, change, words):
    d = torch.load(save_checkpoint(_ckpt(), tmp_path / "ok.pt"), weights_only=True)
    torch.save({**d, "feature_config": {**d["feature_config"], **change}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "bad.pt")
    assert str(info.value).startswith(f"{tmp_path / 'bad.pt'}: {words}")


def test_config_entries_of_the_wrong_type_are_refused(tmp_path):
    d = torch.load(save_checkpoint(_ckpt(), tmp_path / "ok.pt"), weights_only=True)
    torch.save({**d, "encoders": [1, 2]}, tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="list.pt: not an asdxai checkpoint .encoders is a"):
        load_checkpoint(tmp_path / "list.pt")
