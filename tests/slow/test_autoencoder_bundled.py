"""The bundled autoencoder: its fan model re-trained with the command's settings equals the
shipped one, and the shipped ONNX file scores like it.

Slow (one machine type trained on the synthetic ``small`` tree, a minute or two on a CPU):
``python -m pytest -m slow tests/slow/test_autoencoder_bundled.py``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch


@pytest.mark.slow
def test_retrained_fan_model_equals_the_shipped_one():
    from asdxai.bundled.train_autoencoder import EPOCHS
    from asdxai.data.records import scan
    from asdxai.detectors.autoencoder import load_autoencoder, train_autoencoder
    from asdxai.workflows.defaults import BUNDLED_DIR, default_data_root

    data = default_data_root()
    train = [
        r
        for r in scan(data, split="dev-train") + scan(data, split="eval-train")
        if r.machine == "fan"
    ]
    fresh = train_autoencoder(train, epochs=EPOCHS, seed=0, device="cpu", progress=False)
    shipped = load_autoencoder(BUNDLED_DIR / "autoencoder.pt")
    a, b = fresh.models["fan"].state_dict(), shipped.models["fan"].state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
@pytest.mark.skipif(not importlib.util.find_spec("onnxruntime"), reason="needs onnxruntime")
def test_shipped_onnx_file_scores_like_the_shipped_checkpoint():
    import onnxruntime as ort

    from asdxai.bundled.train_autoencoder import score_split
    from asdxai.data.audio import clip_duration, read_clip
    from asdxai.data.records import scan
    from asdxai.detectors.autoencoder import load_autoencoder
    from asdxai.features import FeatureConfig
    from asdxai.workflows.defaults import BUNDLED_DIR, default_data_root

    test = [r for r in scan(default_data_root(), split="dev-test") if r.machine == "fan"][::10]
    shipped = load_autoencoder(BUNDLED_DIR / "autoencoder.pt")
    path = BUNDLED_DIR / "autoencoder-fan.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["fingerprint"] == shipped.fingerprint
    cfg = FeatureConfig(duration_s=clip_duration(test[0].path))
    waves = np.stack([read_clip(r.path, cfg) for r in test])
    got = session.run(["scores"], {"waves": waves})[0]
    np.testing.assert_allclose(got, score_split(shipped, test), rtol=1e-5, atol=1e-5)
