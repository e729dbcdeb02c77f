"""Streaming inference: embed_records / score_records against direct encoder calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from asdxai.data.audio import read_clip, write_wav
from asdxai.data.records import ClipRecord
from asdxai.features import FeatureConfig
from asdxai.inference import embed_records, score_records
from asdxai.nets import NetConfig, build_encoder, encoder_inputs
from asdxai.scoring import AnomalyScorer, KMeansBackend

FEAT = FeatureConfig(sample_rate=16000, duration_s=0.25, n_fft=256, hop_length=128)
NET = NetConfig(arch="dual", width=0.25, embed_dim=16)


@dataclass
class FakeCheckpoint:
    """What inference needs from asdxai.checkpoint.Checkpoint (duck-typed)."""

    per_section: bool = False
    sections: tuple[str, ...] = ()
    feature_config: dict = field(default_factory=FEAT.to_dict)
    net_config: dict = field(default_factory=NET.to_dict)
    encoders: dict = field(default_factory=dict)
    backend: dict | None = None

    def __post_init__(self):
        keys = self.sections if self.per_section else ("all",)
        for i, key in enumerate(keys):
            torch.manual_seed(i)
            self.encoders[key] = build_encoder(NET, FEAT).state_dict()

    def model_key_for(self, section_key: str) -> str:
        return section_key if self.per_section else "all"

    def build_encoder(self, model_key: str = "all"):
        enc = build_encoder(NET, FEAT)
        enc.load_state_dict(self.encoders[model_key])
        return enc.eval()


def _records(tmp_path: Path) -> list[ClipRecord]:
    rng = np.random.default_rng(0)
    recs = []
    for machine, section in (("fan", "00"), ("pump", "01")):
        for i in range(5):
            dom = "source" if i < 3 else "target"
            name = f"section_{section}_{dom}_train_normal_{i:04d}_a_1.wav"
            path = tmp_path / machine / "train" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, 0.1 * rng.standard_normal(FEAT.n_samples).astype(np.float32), 16000)
            recs.append(
                ClipRecord(
                    path, "unknown", "dev", "train", machine, section, dom, "normal", i, "a_1"
                )
            )
    return recs


def _direct(ckpt, recs):
    out = []
    for r in recs:
        wave = torch.from_numpy(read_clip(r.path, FEAT))[None]
        enc = ckpt.build_encoder(model_key=ckpt.model_key_for(r.section_key))
        with torch.no_grad():
            out.append(enc(**encoder_inputs(wave, FEAT, arch=NET.arch)).numpy())
    return np.concatenate(out)


@pytest.mark.parametrize("per_section", [False, True])
def test_embed_records_matches_direct_and_is_batch_independent(tmp_path, per_section):
    recs = _records(tmp_path)
    ckpt = FakeCheckpoint(per_section, tuple(sorted({r.section_key for r in recs})))
    # shuffled order: rows must follow the input records
    order = [7, 0, 3, 9, 1, 5, 2, 8, 4, 6]
    recs = [recs[i] for i in order]
    e3 = embed_records(ckpt, recs, device="cpu", batch_size=3, progress=False)
    e64 = embed_records(ckpt, recs, device="cpu", batch_size=64, progress=False)
    assert e3.shape == (10, 16) and e3.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e3, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(e3, e64, atol=1e-5)
    np.testing.assert_allclose(e3, _direct(ckpt, recs), atol=1e-5)
    if per_section:  # the two sections use different encoders
        shared = FakeCheckpoint(False)
        assert not np.allclose(
            e3, embed_records(shared, recs, device="cpu", progress=False), atol=1e-3
        )


def test_score_records_equals_backend_on_embeddings(tmp_path):
    recs = _records(tmp_path)
    ckpt = FakeCheckpoint()
    emb = embed_records(ckpt, recs, device="cpu", progress=False)
    data = {}
    for key in ("fan_section_00", "pump_section_01"):
        rows = [i for i, r in enumerate(recs) if r.section_key == key]
        src = [i for i in rows if recs[i].domain == "source"]
        tgt = [i for i in rows if recs[i].domain == "target"]
        data[key] = (emb[src], emb[tgt])
    backend = KMeansBackend(k=2).fit(data)
    scorer = AnomalyScorer({"all": ckpt.build_encoder()}, backend)
    scores = score_records(scorer, ckpt, recs, batch_size=4, progress=False)
    expected = np.concatenate(
        [backend.score(emb[i : i + 1], r.section_key) for i, r in enumerate(recs)]
    )
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    # target training clips are references themselves
    assert np.all(scores[[3, 4, 8, 9]] < 1e-5)
