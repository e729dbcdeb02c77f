"""A clip without a section is placed by what the model knows (asdxai.workflows.placement)."""

import dataclasses
import shutil

import numpy as np
import torch
from conftest import tiny_checkpoint

from asdxai.checkpoint import load_checkpoint, save_checkpoint
from asdxai.data.audio import write_wav
from asdxai.features import FeatureConfig
from asdxai.scoring import KMeansBackend
from asdxai.workflows.explain import Explainer, MapSettings
from asdxai.workflows.placement import LOW_CONFIDENCE, has_classifier, place_clip

FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)
SR = 16_000
#: Machine -> (tone frequency in Hz, noise level): sounds an untrained encoder tells apart.
TONES = {"fan": (300.0, 0.0001), "pump": (1500.0, 0.003), "valve": (4000.0, 0.1)}


def _tone(f0, noise, seed):
    t = np.arange(int(SR * FEAT.duration_s)) / SR
    hiss = noise * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * f0 * t) + hiss).astype(np.float32)


def _tree_and_checkpoint(tmp_path):
    """Three machines' clips in a DCASE tree, and a checkpoint whose backend holds each
    machine's section 00 (fitted on its normal training clips' embeddings) plus an evaluation
    section fan_section_03 fitted on the very embedding of the pump test clip."""
    root = tmp_path / "dev_data"
    tests = {}
    for k, (m, (f0, noise)) in enumerate(TONES.items()):
        for i in range(4):
            write_wav(root / m / "train" / f"section_00_source_train_normal_{i:04d}_a_1.wav",
                      _tone(f0, noise, 10 * k + i), SR)  # fmt: skip
        tests[m] = write_wav(root / m / "test" / "section_00_source_test_normal_0000_a_1.wav",
                             _tone(f0, noise, 10 * k + 9), SR)  # fmt: skip
    path = tiny_checkpoint(tmp_path / "base.pt", FEAT)
    explainer = Explainer(path, device="cpu")
    enc = explainer.scorer.encoder_for("fan_section_00")

    def emb(clip):
        with torch.no_grad():
            return enc(explainer.inputs(clip).spec[None]).numpy()

    fit = {}
    for m in TONES:
        train = np.concatenate([emb(c) for c in sorted((root / m / "train").glob("*.wav"))])
        fit[f"{m}_section_00"] = (train, train[:1])
    pump = emb(tests["pump"])
    jitter = 1e-3 * np.random.default_rng(0).normal(size=(4, pump.shape[1]))
    fit["fan_section_03"] = (pump + jitter, pump)
    backend = KMeansBackend(k=2, n_init=1).fit(fit)
    ckpt = dataclasses.replace(load_checkpoint(path), backend=backend.to_dict())
    return tests, save_checkpoint(ckpt, tmp_path / "three.pt")


def test_clips_copied_out_of_their_folders_are_explained_as_their_own_machine(tmp_path, caplog):
    _, ckpt = _tree_and_checkpoint(tmp_path)
    explainer = Explainer(ckpt, device="cpu")
    assert not has_classifier(explainer)
    settings = MapSettings(n_masks=40, until_agreement=None, estimator="plain")
    for m in TONES:
        clip = next((tmp_path / "dev_data" / m / "train").glob("*_0000_*.wav"))
        loose = tmp_path / f"copy_{m}" / "x.wav"  # no machine folder, no section in the name
        loose.parent.mkdir()
        shutil.copy(clip, loose)
        done = explainer.explain(loose, settings=settings, out_stem=tmp_path / "out" / m,
                                 plot=False)
        assert done.section == f"{m}_section_00"
        placement = done.result.meta["placement"]
        assert placement["section"] == done.section and placement["method"] == "nearest"
        assert 0 < placement["confidence"] <= 1 and placement["candidates"] == 3
    assert "x.wav: no section in the name; explaining it in" in caplog.text
    assert "probability" in caplog.text


def test_evaluation_sections_only_when_asked_and_the_folder_restricts(tmp_path):
    tests, ckpt = _tree_and_checkpoint(tmp_path)
    explainer = Explainer(ckpt, device="cpu")
    loose = tmp_path / "x.wav"
    shutil.copy(tests["pump"], loose)
    assert place_clip(explainer, loose).section == "pump_section_00"
    asked = place_clip(explainer, loose, include_eval=True)
    assert asked.section == "fan_section_03" and asked.candidates == 4
    # a folder named after a machine type restricts the choice to its sections
    in_fan = tmp_path / "fan" / "x.wav"
    in_fan.parent.mkdir()
    shutil.copy(tests["pump"], in_fan)
    placed = place_clip(explainer, in_fan)
    assert placed.section == "fan_section_00" and placed.machine == "fan"
    assert placed.candidates == 1 and placed.confidence == 1.0


def test_a_low_confidence_choice_says_how_to_name_the_section(tmp_path):
    from asdxai.workflows.placement import Placement

    sure = Placement("fan_section_00", 0.9, "classifier", 3)
    guess = Placement("fan_section_00", LOW_CONFIDENCE / 2, "nearest", 3)
    known = ["fan_section_00", "pump_section_00"]
    assert "name the clip's section" not in sure.message("x.wav", "why", known)
    text = guess.message("x.wav", "why", known)
    assert "name the clip's section" in text and "pump_section_00" in text


def test_a_checkpoint_with_a_classifier_places_by_its_own_prediction(tmp_path):
    from asdxai.workflows.defaults import bundled_checkpoint
    from asdxai.workflows.placement import class_probabilities

    explainer = Explainer(bundled_checkpoint("sc-adacos-attribute"), device="cpu")
    assert has_classifier(explainer)
    feat = explainer.ckpt.features
    t = np.arange(feat.n_samples) / feat.sample_rate
    clip = write_wav(tmp_path / "x.wav", (0.3 * np.sin(2 * np.pi * 700 * t)).astype(np.float32),
                     feat.sample_rate)  # fmt: skip
    probs = class_probabilities(explainer, explainer.inputs(clip))
    assert len(probs) == len(explainer.ckpt.class_names["all"])
    assert abs(sum(probs.values()) - 1) < 1e-6
    placed = place_clip(explainer, clip)
    assert placed.method == "classifier" and placed.section in explainer.sections
    # the section's probability is the sum over its attribute classes
    mass = sum(p for name, p in probs.items() if name.startswith(placed.section + "_"))
    assert abs(placed.confidence - mass) < 1e-9
    assert placed.confidence == max(
        sum(p for name, p in probs.items() if name.startswith(s + "_")) for s in explainer.sections
    )
