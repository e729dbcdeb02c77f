"""Load (issue 9, slow): RISE peak memory does not grow with the number of masks.

Runs ``python -m asdxai rise`` with 10,000 and 100,000 masks on the CPU (tiny encoder, 0.4 s
clip) and compares the peak resident set size of the two processes (``ru_maxrss`` of the
child). Masks are drawn block by block and only running sums are kept, so the ratio stays
near 1. Run with ``pytest -m slow tests/slow``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asdxai.checkpoint import Checkpoint, save_checkpoint
from asdxai.data.audio import write_wav
from asdxai.features import FeatureConfig
from asdxai.nets import NetConfig
from asdxai.scoring import KMeansBackend

pytestmark = pytest.mark.slow

FEAT = FeatureConfig(duration_s=0.4, n_fft=256, hop_length=128)
NAME = "section_00_source_test_anomaly_0000_x.wav"

_CHILD = """
import resource, sys
from asdxai.cli import main
code = main(sys.argv[1:])
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
sys.exit(code)
"""


def _setup(tmp: Path) -> tuple[Path, Path]:
    net = NetConfig(arch="spectrogram", width=0.25, embed_dim=16)
    rng = np.random.default_rng(0)
    backend = KMeansBackend(k=2, n_init=1).fit(
        {"fan_section_00": (rng.normal(size=(6, 16)), rng.normal(size=(2, 16)))}
    )
    ckpt = Checkpoint.untrained(FEAT, net, backend=backend.to_dict())
    t = np.arange(FEAT.n_samples) / FEAT.sample_rate
    wave = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    clip = write_wav(tmp / "fan" / "test" / NAME, wave, FEAT.sample_rate)
    return save_checkpoint(ckpt, tmp / "model.pt"), clip


def _peak_rss_kb(tmp: Path, ckpt: Path, clip: Path, n_masks: int) -> int:
    argv = ["-q", "rise", "--checkpoint", str(ckpt), "--clip", str(clip),
            "--out", str(tmp / f"out{n_masks}"), "--n-masks", str(n_masks), "--device", "cpu",
            "--no-progress", "--no-plot"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MAXRSS_KB")][-1]
    return int(line.split()[1])


@pytest.mark.skipif(not hasattr(resource, "getrusage"), reason="needs resource.getrusage")
def test_rise_peak_rss_is_flat_in_the_number_of_masks(tmp_path):
    ckpt, clip = _setup(tmp_path)
    small = _peak_rss_kb(tmp_path, ckpt, clip, 10_000)
    large = _peak_rss_kb(tmp_path, ckpt, clip, 100_000)
    print(f"peak RSS: 10k masks {small / 1024:.1f} MiB, 100k masks {large / 1024:.1f} MiB")
    assert large / small < 1.2
