"""Variants that make asdxai match the study's reference code (issue 17), each pinned by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asdxai.errors import CheckpointError, ConfigError
from asdxai.scoring import BACKEND_VARIANTS, AnomalyScorer, KMeansBackend

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
