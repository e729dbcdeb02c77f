"""Explain your own PyTorch detector from the command line: wav in, anomaly score out.

The detector below is defined outside asdxai: the clip's energy in 32 frequency bands compared
with that of normal clips (a z-score per band); the anomaly score sums the bands' excess
(positive z) over the normal level.
Anything with ``name``, ``fingerprint``, ``sample_rate``, ``score(waves (B, L), section) ->
(B,)`` and ``describe()`` is a detector (docs/INTERFACES.md); the factory
``make_detector()`` builds one. Explain a clip with it, masks on the clip's STFT:

    PYTHONPATH=examples asdxai rise --detector explain_own_detector:make_detector --clip x.wav

This script writes such a clip (hum + noise with a 3 kHz whistle at 0.8-1.2 s), explains it
through the same pipeline (:class:`asdxai.workflows.Explainer`) and checks that the map points
at the whistle.

    python examples/explain_own_detector.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

RATE = 16_000  # Hz
SECONDS = 2.0
N_FFT, HOP, N_BANDS = 512, 256, 32


def machine_sound(seed: int, whistle: bool = False) -> np.ndarray:
    """A 2 s clip [shape=(32000,)]: 120 Hz hum and harmonics plus noise; optionally a 3 kHz
    whistle at 0.8-1.2 s (the anomaly)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SECONDS * RATE)) / RATE
    x = sum(0.2 / k * np.sin(2 * np.pi * 120 * k * t + rng.uniform(0, 6.3)) for k in (1, 2, 3))
    x = x + 0.03 * rng.standard_normal(t.size)
    if whistle:
        x = x + 0.2 * np.sin(2 * np.pi * 3000 * t) * ((t >= 0.8) & (t < 1.2))
    return x.astype(np.float32)


class BandEnergy(nn.Module):
    """Log band energies of a clip, z-scored against normal clips; score = sum of relu(z)
    (only energy above the normal level counts: removing sound never looks anomalous)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.register_buffer("mean", torch.zeros(N_BANDS))
        self.register_buffer("std", torch.ones(N_BANDS))

    def bands(self, waves: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, bands)
        spec = torch.stft(waves, N_FFT, HOP, window=self.window, center=False,
                          return_complex=True).abs() ** 2  # (B, 257, frames)  # fmt: skip
        edges = torch.linspace(0, spec.shape[1], N_BANDS + 1).long()
        energy = [spec[:, a:b].sum(dim=1) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        return torch.log(torch.stack(energy, dim=-1).mean(dim=1) + 1e-8)

    def fit(self, normal: torch.Tensor) -> BandEnergy:
        b = self.bands(normal)  # (clips, bands)
        self.mean.copy_(b.mean(dim=0))
        self.std.copy_(b.std(dim=0) + 0.01)
        return self

    def forward(self, waves: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B,)
        z = (self.bands(waves) - self.mean) / self.std
        return z.clamp_min(0).sum(dim=1)


class BandEnergyDetector:
    """The module behind the detector protocol."""

    name = "band-energy"
    sample_rate = RATE

    def __init__(self, module: BandEnergy, device: str | torch.device = "cpu") -> None:
        from asdxai.detectors import weights_fingerprint

        self.module = module.to(device).eval()
        self.device = torch.device(device)
        self.fingerprint = weights_fingerprint(module)  # changes whenever the reference does

    def describe(self) -> dict:
        return {"n_fft": N_FFT, "hop": HOP, "bands": N_BANDS}

    @torch.no_grad()
    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        return self.module(waves.to(self.device, torch.float32))  # section ignored


def make_detector(device: str | torch.device = "cpu") -> BandEnergyDetector:
    """The factory ``--detector explain_own_detector:make_detector`` calls: fit the normal
    reference on eight normal clips (seeded) and return the detector."""
    normal = torch.from_numpy(np.stack([machine_sound(seed) for seed in range(8)]))
    return BandEnergyDetector(BandEnergy().fit(normal), device)


def main(argv: list[str] | None = None) -> int:
    from asdxai.data.audio import write_wav
    from asdxai.explain import RISEExecution
    from asdxai.workflows import Explainer, MapSettings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("explain_own_detector"), help="output folder")
    p.add_argument("--quick", action="store_true", help="fewer masks")
    args = p.parse_args(argv)

    clip = write_wav(args.out / "whistle.wav", machine_sound(100, whistle=True), RATE)
    detector = make_detector()
    normal = float(detector.score(torch.from_numpy(machine_sound(101))[None])[0])
    settings = MapSettings(n_masks=1000 if args.quick else 20000, until_agreement=None)
    item = Explainer(detector, device="cpu").explain(
        clip, settings=settings, execution=RISEExecution(batch_size=100, progress=False),
        out_stem=args.out / "whistle", overwrite=True,
    )  # fmt: skip
    imp = item.result.importance  # (T, F) on the STFT grid n_fft 1024 / hop 512
    ti, fi = np.unravel_index(np.argmax(imp), imp.shape)
    t, f = (ti * 512 + 512) / RATE, fi * RATE / 1024
    print(f"score {item.score:.2f} (a normal clip: {normal:.2f}); most important cell: "
          f"t = {t:.2f} s, f = {f:.0f} Hz (the whistle: 0.8-1.2 s, 3000 Hz)")  # fmt: skip
    print(f"wrote {item.h5} and {item.png}")
    assert 0.7 <= t <= 1.3 and 2500 <= f <= 3500, "the map missed the whistle"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
