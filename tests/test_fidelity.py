"""Variants that make asdxai match the study's reference code (issue 17), each pinned by hand."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from asdxai.data.records import ClipRecord, class_labels, parse_name
from asdxai.errors import CheckpointError, ConfigError, DataError
from asdxai.losses import SubClusterAdaCosLoss, build_loss
from asdxai.scoring import BACKEND_VARIANTS, AnomalyScorer, KMeansBackend

NAMES = Path(__file__).parent / "data" / "dcase-names"

# One section in 2-D, k = 1, so every k-means mean is the plain average of what it clusters.
SOURCE = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
TARGET = np.array([[-1.0, 0.0]], dtype=np.float32)
PROBES = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
R = 0.5**0.5
# variant -> (the mean it must find, scores of the probes), worked out by hand:
HAND = {
    # mean of the source clips (0.5, 0.5), re-normalised to (r, r)
    "paper": ((R, R), (1 - R, 1 - R)),
    # mean of source and target clips (0, 1/3), kept raw: 1 - max(e . m, e . t)
    "reference": ((0.0, 1 / 3), (1.0, 2 / 3)),
    "source-raw-means": ((0.5, 0.5), (0.5, 0.5)),
    "all-unit-means": ((0.0, 1.0), (1.0, 0.0)),
}


def _fit(variant: str) -> KMeansBackend:
    return KMeansBackend(k=1, variant=variant).fit({"fan_section_00": (SOURCE, TARGET)})


@pytest.mark.parametrize("variant", list(BACKEND_VARIANTS))
def test_backend_variants_against_a_hand_computed_case(variant):
    mean, scores = HAND[variant]
    backend = _fit(variant)
    refs = backend.references("fan_section_00")
    np.testing.assert_allclose(refs, [mean, (-1.0, 0.0)], atol=1e-6)
    np.testing.assert_allclose(backend.score(PROBES, "fan_section_00"), scores, atol=1e-6)
    # the black box scores the same way
    scorer = AnomalyScorer(torch.nn.Identity(), backend)
    got = scorer.score_embeddings(torch.from_numpy(PROBES), "fan_section_00")
    np.testing.assert_allclose(got.numpy(), scores, atol=1e-6)


@pytest.mark.parametrize("variant", list(BACKEND_VARIANTS))
def test_checkpoint_entry_remembers_the_variant(variant):
    state = _fit(variant).to_dict()
    assert state["variant"] == variant
    back = KMeansBackend.from_dict(state)
    assert back.variant == variant
    np.testing.assert_allclose(back.score(PROBES, "fan_section_00"), HAND[variant][1], atol=1e-6)


def test_variant_survives_a_checkpoint_file(tmp_path):
    from conftest import tiny_checkpoint

    from asdxai.checkpoint import load_checkpoint, save_checkpoint
    from asdxai.features import FeatureConfig

    path = tiny_checkpoint(tmp_path / "m.pt", FeatureConfig(duration_s=1.0))
    ckpt = dataclasses.replace(load_checkpoint(path), backend=_fit("reference").to_dict())
    save_checkpoint(ckpt, tmp_path / "r.pt")
    back = load_checkpoint(tmp_path / "r.pt")
    assert KMeansBackend.from_dict(back.backend).variant == "reference"


def test_entry_without_variant_is_paper_and_unknown_variants_fail():
    state = _fit("paper").to_dict()
    del state["variant"]  # a checkpoint written before the option existed
    assert KMeansBackend.from_dict(state).variant == "paper"
    with pytest.raises(CheckpointError, match="unknown variant"):
        KMeansBackend.from_dict({**state, "variant": "median"})
    with pytest.raises(ConfigError, match="paper, reference"):
        KMeansBackend(variant="median")


def test_reference_variant_clusters_targets_too_for_the_k_rule():
    """With 2 source + 1 target clips and k = 3, only the 'all' variants have enough clips."""
    with pytest.warns(UserWarning, match="only 2 clips"):
        paper = KMeansBackend(k=3).fit({"s": (SOURCE, TARGET)})
    assert paper.k_["s"] == 2
    reference = KMeansBackend(k=3, variant="reference").fit({"s": (SOURCE, TARGET)})
    assert reference.k_["s"] == 3


# ----------------------------------------------------------------------------- class labelling
def _record(name: str, machine: str = "fan", subset: str = "train") -> ClipRecord:
    f = parse_name(name)
    return ClipRecord(
        path=Path(name), dataset="2022", split="dev", subset=subset, machine=machine,
        section=f["section"], domain=f["domain"], label=f["label"], index=f["index"],
        attributes=f["attributes"],
    )  # fmt: skip


def test_attribute_classes_with_domain_by_hand():
    recs = [
        _record("section_00_source_train_normal_0000_m-n_W.wav"),
        _record("section_00_target_train_normal_0001_m-n_W.wav"),  # same string, other domain
        _record("section_00_target_train_normal_0002_m-n_X.wav"),
    ]
    labels, names = class_labels(recs, "attribute")
    assert names == ["fan_section_00_m-n_W", "fan_section_00_m-n_X"]
    assert labels.tolist() == [0, 0, 1]
    labels, names = class_labels(recs, "attribute", with_domain=True)
    assert names == [
        "fan_section_00_m-n_W_source",
        "fan_section_00_m-n_W_target",
        "fan_section_00_m-n_X_target",
    ]
    assert labels.tolist() == [0, 1, 2]
    with pytest.raises(ConfigError, match="attribute task only"):
        class_labels(recs, "section", with_domain=True)
    unknown = [dataclasses.replace(recs[0], domain=None)]
    with pytest.raises(DataError, match="no domain"):
        class_labels(unknown, "attribute", with_domain=True)


def _organiser_records(year: int) -> list[ClipRecord]:
    path = NAMES / f"eval_data_list_{year}.csv"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    recs, machine = [], None
    for line in path.read_text().splitlines():
        parts = line.strip().split(",")
        if len(parts) == 1 or not parts[1]:
            machine = parts[0]
        else:
            recs.append(_record(parts[1], machine, "test"))
    return recs


@pytest.mark.parametrize("year,n_classes", [(2022, 182), (2023, 49)])
def test_domain_suffix_changes_no_class_on_the_organisers_names(year, n_classes):
    """On the real evaluation test names no attribute string occurs in both domains of a
    section, so the reference's domain suffix gives the same classes (counts pinned here)."""
    recs = _organiser_records(year)
    assert len(class_labels(recs, "attribute")[1]) == n_classes
    assert len(class_labels(recs, "attribute", with_domain=True)[1]) == n_classes


# ----------------------------------------------------------------------------- theta_med
def _unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


@pytest.mark.parametrize(
    "mode,hard_deg,mixed_deg",
    [
        # class 0 centres at 0 and 90 degrees, class 1 at 180 and 270; the clip sits at 10
        # degrees: 10 / 80 degrees from class 0's centres, 170 / 100 from class 1's.
        ("closest", 10.0, 0.75 * 10 + 0.25 * 100),
        ("reference", 10 + 80, 2 * (0.75 * (10 + 80) + 0.25 * (170 + 100))),
    ],
)
def test_theta_med_by_hand(mode, hard_deg, mixed_deg):
    loss = SubClusterAdaCosLoss(2, 2, sub_clusters=2, theta_med=mode)
    loss.centres.copy_(torch.tensor([[_unit(0), _unit(90)], [_unit(180), _unit(270)]]))
    emb = torch.tensor([_unit(10)])
    cos = loss.cosines(emb)
    hard, mixed = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.75, 0.25]])
    assert math.degrees(loss.mixed_angle_median(cos, hard)) == pytest.approx(hard_deg, abs=1e-4)
    assert math.degrees(loss.mixed_angle_median(cos, mixed)) == pytest.approx(mixed_deg, abs=1e-4)
    # the scale update uses min(pi/4, theta_med): 32.5 degrees vs the clamp at 45 degrees
    z = loss.scale.item() * cos.flatten().double()
    expected = (z.max() + torch.log(torch.exp(z - z.max()).sum())).item()
    expected /= math.cos(math.radians(min(45.0, mixed_deg)))
    assert loss.new_scale(cos, mixed).item() == pytest.approx(expected, rel=1e-6)


def test_theta_med_option_reaches_both_adaptive_losses():
    assert build_loss("adacos", 3, 8, theta_med="reference").theta_med == "reference"
    assert build_loss("sc-adacos", 3, 8).theta_med == "closest"
    with pytest.raises(ConfigError, match="theta_med"):
        build_loss("sc-adacos", 3, 8, theta_med="mean")
