"""A bundled checkpoint explained in both mask domains on one clip of the synthetic tree.

Slow (two maps of 2,000 masks on a 3 s clip, about a minute on a CPU):
``python -m pytest -m slow tests/slow/test_domains.py -s`` prints the Pearson correlation of
the input-domain and the signal-domain maps and both rates in masks/s.

For the spectrogram-only model the two domains mask nearly the same thing (smooth masks on the
complex STFT, resynthesised, give nearly the masked magnitude), so the maps agree closely; the
dual-branch model is explained as it is used only in the signal domain (its whole-clip spectrum
recomputed from the masked signal), so its two maps differ.
"""

from __future__ import annotations

import time

import numpy as np
import pytest


def _maps(name: str, n_masks: int = 2000) -> dict[str, tuple[np.ndarray, float]]:
    from asdxai.explain import RISEExecution, RISEMaskConfig
    from asdxai.workflows.compare import default_clips
    from asdxai.workflows.defaults import bundled_checkpoint, default_data_root
    from asdxai.workflows.explain import Explainer, MapSettings

    clip = default_clips(default_data_root(splits=("dev-test",)), n=1)[0]
    ex = RISEExecution(device="cpu", batch_size=100, progress=False)
    out = {}
    for domain in ("input", "signal"):
        explainer = Explainer(bundled_checkpoint(name), device="cpu", domain=domain)
        t0 = time.perf_counter()
        item = explainer.explain(
            clip, settings=MapSettings(RISEMaskConfig(), n_masks, 0, "centered", None),
            execution=ex,
        )  # fmt: skip
        out[domain] = (item.result.importance, n_masks / (time.perf_counter() - t0))
        assert item.result.agreement > 0.8
    return out


@pytest.mark.slow
def test_spectrogram_checkpoint_maps_agree_across_domains():
    maps = _maps("sc-adacos-attribute-spectrogram")
    (a, rate_in), (b, rate_sig) = maps["input"], maps["signal"]
    r = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    print(f"\nPearson r(input, signal) = {r:.4f}; input {rate_in:.0f} masks/s, "
          f"signal {rate_sig:.0f} masks/s")  # fmt: skip
    assert a.shape == b.shape and r > 0.95  # measured 0.9999 (2,000 masks, ToyCar clip)


@pytest.mark.slow
def test_dual_checkpoint_as_used_differs_from_spectrum_held_fixed():
    maps = _maps("sc-adacos-attribute")
    r = float(np.corrcoef(maps["input"][0].ravel(), maps["signal"][0].ravel())[0, 1])
    print(f"\ndual-branch: Pearson r(held fixed, as used) = {r:.4f}")
    assert 0.0 < r < 0.95  # measured 0.67 (2,000 masks, ToyCar clip)
