"""``asdxai bench train``: training throughput (clips/s) of both encoders on the current device.

One training step = features from a waveform batch on the device (spectrogram + spectrum),
mixup, encoder forward, SC-AdaCos loss (342 classes x 16 sub-clusters, the study's largest task),
backward and an Adam step. Inputs are random noise; weights do not change the speed.
"""

from __future__ import annotations

import time

import torch

from .._runtime import resolve_device
from ..features import FeatureConfig
from ..losses import build_loss, mixup
from ..nets import NetConfig, build_encoder, encoder_inputs
from ..train import _autocast


def bench_train_step(
    *,
    arch: str = "dual",
    width: float = 1.0,
    batch_size: int = 64,
    duration_s: float = 10.0,
    steps: int = 3,
    warmup: int = 1,
    device: str = "auto",
    precision: str = "fp32",
    n_classes: int = 342,
) -> float:
    """Clips per second of full training steps (mean over ``steps`` after ``warmup``)."""
    dev = resolve_device(device)
    feat = FeatureConfig(duration_s=duration_s)
    net = NetConfig(arch=arch, width=width)
    torch.manual_seed(0)
    enc = build_encoder(net, feat).to(dev).train()
    loss_fn = build_loss("sc-adacos", n_classes, int(net.embed_dim), sub_clusters=16).to(dev)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    wave = torch.randn(batch_size, feat.n_samples, generator=gen).to(dev)
    labels = torch.nn.functional.one_hot(
        torch.randint(0, n_classes, (batch_size,), generator=gen), n_classes
    ).float()

    def step() -> None:
        w, y = mixup(wave, labels.to(dev), gen)
        inputs = encoder_inputs(w, feat, arch=arch)
        with _autocast(dev, precision):
            emb = enc(**inputs)
        loss = loss_fn(emb, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return steps * batch_size / (time.perf_counter() - t0)
