"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests use tiny tensors: one intra-op thread is as fast and avoids OpenMP threads
    busy-waiting for each other when the machine is shared (up to 17x slower otherwise)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_checkpoint(path, feat, arch="spectrogram", backend=True, section="fan_section_00"):
    """Save an untrained 16-D encoder with a k-means backend for ``section`` (a section key, or
    a tuple of them) to ``path``."""
    import numpy as np

    from asdxai.checkpoint import Checkpoint, save_checkpoint
    from asdxai.nets import NetConfig
    from asdxai.scoring import KMeansBackend

    net = NetConfig(arch=arch, width=0.25, embed_dim=16)
    rng = np.random.default_rng(0)
    sections = (section,) if isinstance(section, str) else tuple(section)
    fitted = KMeansBackend(k=2, n_init=1).fit(
        {s: (rng.normal(size=(6, 16)), rng.normal(size=(2, 16))) for s in sections}
    )
    ckpt = Checkpoint.untrained(feat, net, backend=fitted.to_dict() if backend else None)
    return save_checkpoint(ckpt, path)


def tiny_tree(root, n_samples, n_source=6, n_target=2):
    """Two machines x one dev section of 16 kHz clips: a tone per machine plus noise.

    ``n_source`` + ``n_target`` normal training clips per section; 3 normal + 3 anomalous test
    clips per domain, the anomalies carrying an extra 5 kHz tone.
    """
    import numpy as np

    from asdxai.data.audio import write_wav

    rng = np.random.default_rng(0)
    t = np.arange(n_samples) / 16000

    def clip(f0, anomalous):
        x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(n_samples)
        if anomalous:
            x += 0.3 * np.sin(2 * np.pi * 5000 * t)
        return x.astype(np.float32)

    for machine, sec, f0 in (("fan", "00", 300.0), ("pump", "01", 900.0)):
        for i in range(n_source + n_target):
            dom = "source" if i < n_source else "target"
            name = f"section_{sec}_{dom}_train_normal_{i:04d}_a_1.wav"
            write_wav(root / "dev_data" / machine / "train" / name, clip(f0 + 7 * i, False), 16000)
        j = 0
        for dom in ("source", "target"):
            for lab in ("normal", "anomaly"):
                for _ in range(3):
                    name = f"section_{sec}_{dom}_test_{lab}_{j:04d}_a_1.wav"
                    x = clip(f0 + 5 * j, lab == "anomaly")
                    write_wav(root / "dev_data" / machine / "test" / name, x, 16000)
                    j += 1
