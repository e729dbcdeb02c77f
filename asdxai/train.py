"""Training loop: encoders on an auxiliary task, per-epoch loss monitoring, checkpoint.

:func:`train_model` trains one encoder on all training records (``per_section=False``, model key
``"all"``) or one encoder per section with a single class each (``per_section=True``, model key
= the section key) and returns a :class:`~asdxai.checkpoint.Checkpoint`. :func:`fit_encoder` is
the loop for one encoder on any re-iterable of ``(wave (B, L), idx (B,))`` batches (used by tests
with in-memory tensors).

Per epoch the history records, on the training batches as they are trained on (after mixup,
in training mode, so no extra pass over the data is needed):

* ``angular`` -- mean training loss (the data term, without weight decay);
* ``ic_compactness`` -- mean over classes of the mean squared distance of a class's embeddings to
  its (closest sub-cluster) centre;
* ``inter_compactness`` -- mean over classes of the mean squared distance to the centres of the
  other classes (about 2 for fixed random unit centres; NaN with one class);
* ``scale`` -- the adaptive scale at the end of the epoch (NaN for the compactness losses).

With mixup, a mixed clip counts towards each of its two classes with its mixing weight (see
:func:`asdxai.losses.compactness_sums`).

Reproducibility: the encoder's initial weights, the fixed centres, mixup and the shuffling all
come from generators seeded by ``TrainConfig.seed`` (per-section model ``i`` uses ``seed + i``),
so on the CPU the same seed gives identical weights.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from tqdm.auto import tqdm

from ._io import config_from_dict, config_to_dict
from ._runtime import provenance, resolve_device
from .checkpoint import Checkpoint
from .constants import PRECISIONS, TASKS
from .data.audio import clip_duration
from .data.dataset import clip_loader
from .data.records import class_labels
from .errors import AudioError, ConfigError, DataError, NonFiniteError
from .features import FeatureConfig
from .losses import (
    LOSSES,
    THETA_MEDS,
    build_loss,
    compactness_sums,
    mixup,
    reduce_compactness,
    weight_penalty,
)
from .nets import Encoder, NetConfig, build_encoder, encoder_inputs

logger = logging.getLogger(__name__)

HISTORY_KEYS = ("angular", "ic_compactness", "inter_compactness", "scale")

EpochCallback = Callable[[str, int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (stored in every checkpoint). Defaults are the study's reference system."""

    loss: str = "sc-adacos"  # compactness | compactness-cce | adacos | sc-adacos
    task: str = "attribute"  # auxiliary classes: none | machine | section | attribute
    per_section: bool = False  # one model per section (one class each) instead of one model
    epochs: int = 10  # passes over the training data
    batch_size: int = 64  # clips per step
    lr: float = 1e-3  # Adam learning rate
    # Additive weight-decay term weight_decay * sum ||w||^2 (study: used, value not given;
    # 1e-5 is our assumption; 0 disables). Applied with every loss.
    weight_decay: float = 1e-5
    mixup: bool = True  # mixup with a uniform coefficient per sample (soft labels)
    sub_clusters: int = 16  # M, sub-clusters per class for sc-adacos
    seed: int = 0  # seeds weights, centres, mixup and shuffling
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast for the encoder forward)
    num_workers: int = 0  # wav-decoding worker processes
    splits: tuple[str, ...] = field(default=("dev-train",))  # splits the records came from
    # "closest" (the paper's mixed-up angle) or "reference" (the author's code), see losses.py
    theta_med: str = "closest"
    # append the domain to attribute classes, as the author's code does (docs/FIDELITY.md)
    attribute_domain: bool = False

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.theta_med not in THETA_MEDS:
            raise ConfigError(
                f"unknown theta_med {self.theta_med!r}; choose one of {', '.join(THETA_MEDS)}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        for name in ("epochs", "batch_size", "sub_clusters"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be at least 2 (batch norm needs 2 clips)")
        if not self.lr > 0 or self.weight_decay < 0 or self.num_workers < 0:
            raise ConfigError("lr must be > 0, weight_decay and num_workers >= 0")
        if not (math.isfinite(self.lr) and math.isfinite(self.weight_decay)):
            raise ConfigError(
                f"lr and weight_decay must be finite, got lr={self.lr}, "
                f"weight_decay={self.weight_decay}"
            )
        object.__setattr__(self, "splits", tuple(self.splits))

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return config_from_dict(cls, d)


def infer_feature_config(records: Sequence, *, base: FeatureConfig | None = None) -> FeatureConfig:
    """``base`` with ``duration_s`` set to the most common clip duration of ``records``.

    Durations come from the wav headers (whole samples). The most common one, not the first
    record's, so that one short or long clip cannot set the length of every clip: the loader
    then zero-pads or trims the others and refuses, by name, a clip under half that length.
    Unreadable headers are left to the loader (and its ``on_error`` policy); if none is
    readable, the first one's error is raised.
    """

    base = base or FeatureConfig()
    if not records:
        raise DataError("no records to infer the clip duration from")
    counts: Counter[int] = Counter()
    first_error: AudioError | None = None
    for record in records:
        try:
            counts[int(round(clip_duration(record.path) * base.sample_rate))] += 1
        except AudioError as exc:
            first_error = first_error or exc
    if not counts:
        raise first_error
    samples = counts.most_common(1)[0][0]
    return FeatureConfig(
        sample_rate=base.sample_rate,
        duration_s=samples / base.sample_rate,
        n_fft=base.n_fft,
        hop_length=base.hop_length,
    )


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _build_seeded(net_cfg: NetConfig, feat_cfg: FeatureConfig, seed: int) -> Encoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_encoder(net_cfg, feat_cfg)


def _non_finite_weight(encoder: Encoder) -> str | None:
    """Name of the first parameter or buffer of ``encoder`` holding NaN or inf, else None."""
    for name, value in encoder.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


def fit_encoder(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    labels: np.ndarray | torch.Tensor,
    *,
    n_classes: int,
    feat_cfg: FeatureConfig,
    net_cfg: NetConfig,
    train_cfg: TrainConfig,
    device: str | torch.device = "auto",
    seed: int | None = None,
    progress: bool = True,
    desc: str = "train",
    callback: EpochCallback | None = None,
) -> tuple[Encoder, dict[str, list[float]]]:
    """Train one encoder.

    Parameters
    ----------
    batches : re-iterable (e.g. a DataLoader) of ``(wave (B, L), idx (B,))``; ``idx`` indexes
        ``labels``; iterated once per epoch
    labels : array [shape=(n,)], int class index of every clip
    n_classes : N
    feat_cfg, net_cfg, train_cfg : settings
    device : torch device or "auto"
    seed : overrides ``train_cfg.seed`` (per-section models)
    progress : tqdm bar per epoch with the running loss
    desc : label for the progress bar and log lines
    callback : called after every epoch as ``callback(desc, epoch, stats)``

    Returns
    -------
    (encoder in eval mode on the CPU, history dict of per-epoch lists, keys :data:`HISTORY_KEYS`)

    Raises
    ------
    NonFiniteError
        Training diverged: a step's loss, or a weight after the epoch's last step, is NaN or
        inf. Nothing is returned, so nothing can be saved.
    """
    dev = resolve_device(device)
    seed = train_cfg.seed if seed is None else int(seed)
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if labels_t.numel() and (labels_t.min() < 0 or labels_t.max() >= n_classes):
        raise ConfigError(f"labels must lie in [0, {n_classes})")
    onehot = F.one_hot(labels_t, n_classes).float()

    encoder = _build_seeded(net_cfg, feat_cfg, seed).to(dev)
    loss_fn = build_loss(
        train_cfg.loss,
        n_classes,
        int(net_cfg.embed_dim),
        sub_clusters=train_cfg.sub_clusters,
        seed=seed,
        weight_decay=train_cfg.weight_decay,
        mixup=train_cfg.mixup,
        theta_med=train_cfg.theta_med,
    ).to(dev)
    params = [p for p in list(encoder.parameters()) + list(loss_fn.parameters()) if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=train_cfg.lr)
    use_scaler = train_cfg.precision == "fp16" and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    mix_gen = torch.Generator().manual_seed(seed + 7919)
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    arch = net_cfg.arch

    for epoch in range(train_cfg.epochs):
        encoder.train()
        loss_fn.train()
        total, count, step = 0.0, 0, 0
        ic_sum = torch.zeros(n_classes, dtype=torch.float64)
        inter_sum = torch.zeros(n_classes, dtype=torch.float64)
        weight = torch.zeros(n_classes, dtype=torch.float64)
        bar = tqdm(
            batches,
            desc=f"{desc} epoch {epoch + 1}/{train_cfg.epochs}",
            disable=not progress,
            leave=False,
            unit="batch",
        )
        for wave, idx in bar:
            if wave.shape[0] < 2:  # batch norm cannot train on a single clip
                continue
            wave = wave.to(dev, non_blocking=True)
            y = onehot[idx].to(dev)
            if train_cfg.mixup:
                wave, y = mixup(wave, y, mix_gen)
            inputs = encoder_inputs(wave, feat_cfg, arch=arch)
            with _autocast(dev, train_cfg.precision):
                emb = encoder(**inputs)
            data = loss_fn(emb, y)
            loss = data
            if loss_fn.weight_decay > 0:
                loss = data + loss_fn.weight_decay * weight_penalty(params)
            step += 1
            if not math.isfinite(float(loss.detach())):
                bar.close()
                raise NonFiniteError(
                    f"{desc}: training diverged: the loss is {float(loss.detach())} at step "
                    f"{step} of epoch {epoch + 1}; nothing is saved (try a smaller lr than "
                    f"{train_cfg.lr:g})"
                )
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            b = wave.shape[0]
            total += float(data.detach()) * b
            count += b
            s_ic, s_inter, s_w = compactness_sums(emb.detach(), y, loss_fn.centres)
            ic_sum += s_ic
            inter_sum += s_inter
            weight += s_w
            bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()
        if count == 0:
            raise DataError(f"{desc}: no batch of at least 2 clips to train on")
        bad = _non_finite_weight(encoder)
        if bad is not None:
            raise NonFiniteError(
                f"{desc}: training diverged: weight {bad} is not finite after epoch {epoch + 1}; "
                f"nothing is saved (try a smaller lr than {train_cfg.lr:g})"
            )
        ic, inter = reduce_compactness(ic_sum, inter_sum, weight)
        scale = float(loss_fn.scale) if getattr(loss_fn, "adaptive_scale", False) else math.nan
        stats = {
            "angular": total / count,
            "ic_compactness": ic,
            "inter_compactness": inter,
            "scale": scale,
        }
        for key in HISTORY_KEYS:
            history[key].append(float(stats[key]))
        level = logging.DEBUG if callback is not None else logging.INFO
        logger.log(
            level, "%s epoch %d/%d: %s", desc, epoch + 1, train_cfg.epochs, format_stats(stats)
        )
        if callback is not None:
            callback(desc, epoch + 1, stats)
    return encoder.cpu().eval(), history


def format_stats(stats: dict[str, float]) -> str:
    """One line of per-epoch numbers, as printed by ``asdxai train``."""
    text = (
        f"loss {stats['angular']:.4f}, IC compactness {stats['ic_compactness']:.4f}, "
        f"inter-class compactness {stats['inter_compactness']:.4f}"
    )
    if math.isfinite(stats.get("scale", math.nan)):
        text += f", scale {stats['scale']:.3f}"
    return text


def train_model(
    records: Sequence,
    *,
    feat_cfg: FeatureConfig | None = None,
    net_cfg: NetConfig | None = None,
    train_cfg: TrainConfig | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    callback: EpochCallback | None = None,
    on_error: str = "raise",
) -> Checkpoint:
    """Train the encoder(s) on training records and return the checkpoint (no backend yet).

    Parameters
    ----------
    records : sequence of ClipRecord; only ``subset == "train"`` records are used (others are
        dropped with a warning)
    feat_cfg : FeatureConfig, or None to take ``duration_s`` from the clips' headers (the most
        common duration)
    net_cfg, train_cfg : settings (None = defaults)
    device : "auto" | "cpu" | "cuda" | ...
    progress : tqdm bars
    callback : ``callback(model_key, epoch, stats)`` after every epoch
    on_error : "raise" (default) stops at the first unreadable clip with its AudioError; "skip"
        leaves unreadable clips out (a warning each, and a count); their paths are stored in
        ``provenance["skipped_clips"]``

    Returns
    -------
    Checkpoint with ``encoders``, ``class_names`` and ``history`` per model key.
    """
    net_cfg = net_cfg or NetConfig()
    train_cfg = train_cfg or TrainConfig()
    train = [r for r in records if getattr(r, "subset", "train") == "train"]
    if len(train) < len(records):
        logger.warning("ignoring %d non-training records", len(records) - len(train))
    if len(train) < 2:
        raise DataError("need at least 2 training clips (use the dev-train / eval-train splits)")
    dev = resolve_device(device)
    if feat_cfg is None:
        feat_cfg = infer_feature_config(train)
    if train_cfg.per_section:
        groups: dict[str, list] = {}
        for r in train:
            groups.setdefault(r.section_key, []).append(r)
        jobs = [
            (key, recs, np.zeros(len(recs), dtype=np.int64), [key])
            for key, recs in sorted(groups.items())
        ]
    else:
        labels, names = class_labels(train, train_cfg.task, with_domain=train_cfg.attribute_domain)
        jobs = [("all", train, labels, names)]
    logger.info(
        "training %d model(s) on %d clips (%s, task %s, loss %s) on %s",
        len(jobs),
        len(train),
        feat_cfg,
        "per section" if train_cfg.per_section else train_cfg.task,
        train_cfg.loss,
        dev,
    )
    encoders: dict[str, dict] = {}
    history: dict[str, dict] = {}
    class_names: dict[str, list[str]] = {}
    skipped: list[str] = []
    for i, (key, recs, labels, names) in enumerate(jobs):
        seed = train_cfg.seed + i
        loader = clip_loader(
            recs,
            feat_cfg,
            batch_size=train_cfg.batch_size,
            shuffle=True,
            seed=seed,
            num_workers=train_cfg.num_workers,
            drop_last=len(recs) > train_cfg.batch_size,
            on_error=on_error,
        )
        encoder, hist = fit_encoder(
            loader, labels, n_classes=len(names), feat_cfg=feat_cfg, net_cfg=net_cfg,
            train_cfg=train_cfg, device=dev, seed=seed, progress=progress, desc=key,
            callback=callback,
        )  # fmt: skip
        encoders[key] = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
        history[key] = hist
        class_names[key] = list(names)
        skipped += loader.dataset.skipped_paths
    prov = provenance(dev)
    if skipped:
        logger.warning(
            "skipped %d of %d training clips as unreadable (first: %s)",
            len(skipped),
            len(train),
            skipped[0],
        )
        prov["skipped_clips"] = skipped
    return Checkpoint(
        feature_config=feat_cfg.to_dict(),
        net_config=net_cfg.to_dict(),
        train_config=train_cfg.to_dict(),
        task=train_cfg.task,
        per_section=train_cfg.per_section,
        class_names=class_names,
        encoders=encoders,
        seed=train_cfg.seed,
        history=history,
        backend=None,
        provenance=prov,
    )
