"""Bias-free embedding encoders: the dual-branch reference system and the spectrogram-only model.

Both encoders follow the study's reference system (Wilkinghoff, "Sub-cluster AdaCos", DCASE 2023
version): no bias terms anywhere, no bounded activations (ReLU only), unit-normalised output.

**No bias.** Every ``Conv`` and ``Linear`` layer has ``bias=False``. By default every batch norm is
built with ``affine=False`` (no trainable scale, no trainable shift). We chose ``affine=False``
over "scale only" because each batch norm here is followed (directly, or through a ReLU, which is
positively homogeneous) by a bias-free linear layer that can absorb any positive per-channel scale,
so a trainable scale adds parameters but no expressiveness, and without any affine parameters there
is nothing that could drift into a bias. The running mean that batch norm subtracts is a data
statistic, not a trainable parameter. The encoders therefore have no parameter or buffer named
``*bias*`` at all. ``NetConfig(batch_norm="keras")`` instead gives every batch norm the reference
code's Keras defaults (trainable scale and shift, momentum 0.99, eps 1e-3); its shift is a
trainable offset, so that variant is *not* bias-free (see ``docs/FIDELITY.md``).

**Variants.** :class:`NetConfig` names where the reference code and asdxai's first encoder
differed: ``spectrum_padding`` (``"same"``, the reference, lets every spectrum bin reach the
output; ``"valid"`` drops the top bins), ``residual`` (``"preact"`` pre-activation units with an
un-normalised shortcut; ``"reference"``, the reference code's wiring) and ``batch_norm``.
Checkpoints written before these options existed load with the settings they were trained with
(:meth:`NetConfig.from_dict`).

**Inputs.** The model input is the *linear* magnitude spectrogram ``(B, T, F)`` (see
``docs/INTERFACES.md``); temporal mean normalisation is the first operation of the spectrogram
branch, so a RISE mask that zeroes a region silences it. The dual encoder also takes the magnitude
spectrum of the whole clip ``(B, S)``, ``S = n_samples // 2``. :func:`encoder_inputs` computes both
from a waveform batch on the waveform's device.

**Shorter clips.** All lengths derive from :class:`~asdxai.features.FeatureConfig`. The spectrogram
branch ends with a max over time, so its flatten size depends only on the number of frequency
bins. The spectrum branch's three strided 1-D convolutions need at least 35,008 bins (about 4.4 s)
with the study's kernels; for shorter clips each kernel (and stride) is clamped to the length that
reaches it, so e.g. 2 s clips (16,000 bins) still give a flatten size >= 1 frame. With
``spectrum_padding="same"`` nothing is clamped: every convolution gives ``ceil(length / stride)``
outputs (1250 / 40 / 10 for 80,000 bins, as the reference).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ._io import config_from_dict, config_to_dict
from .constants import ARCHS, BATCH_NORMS, RESIDUALS, SPECTRUM_PADDINGS
from .errors import ConfigError
from .features import FeatureConfig, spectrogram, spectrum, temporal_mean_normalise

#: Settings of checkpoints written before the variant fields existed (``from_dict`` fills them in).
#: Bounds of the architecture settings, checked before anything is built (a checkpoint or
#: recipe declaring 10^7 layers or 10^6-wide convolutions is refused, not allocated).
MAX_CHANNELS = 4096  # any channel / hidden-unit / embedding count, after the width factor
MAX_WIDTH = 64.0
MAX_STAGES = 16
MAX_DENSE_LAYERS = 64
#: Most weights an encoder may have (2^26 float32 = 256 MiB; the study's encoder has ~1.5 M).
MAX_PARAMETERS = 2**26

LEGACY_VARIANTS = {"spectrum_padding": "valid", "residual": "preact", "batch_norm": "plain"}


@dataclass(frozen=True)
class NetConfig:
    """Encoder settings (stored in every checkpoint).

    ``embed_dim=None`` resolves to the study's value for the architecture: 256 (= 128 spectrogram
    + 128 spectrum) for ``"dual"``, 128 for ``"spectrogram"``. For ``"dual"`` it must be even and is
    split equally between the two branches.
    """

    arch: str = "dual"  # "dual" (spectrogram + spectrum branches) or "spectrogram" (RISE figures)
    width: float = 1.0  # multiplies every channel / hidden-unit count; 1.0 = the study's sizes
    embed_dim: int | None = None  # output dimension D; None = 256 (dual) / 128 (spectrogram)
    # Spectrogram branch: filters of the stem conv and of the four residual stages (width 1.0).
    stem_channels: int = 16
    stage_channels: tuple[int, ...] = field(default=(16, 32, 64, 128))
    # Spectrum branch: channels of the three 1-D convs and hidden units of the 4 dense layers.
    spectrum_channels: int = 128
    spectrum_hidden: int = 128
    spectrum_dense_layers: int = 4
    # "same": Keras 'same' padding as the reference (every bin reaches the output);
    # "valid": no padding (the first asdxai encoder; bins above ~7.6 kHz were dropped at 10 s).
    spectrum_padding: str = "same"
    # "preact": BN-ReLU-Conv-BN-ReLU-Conv units, un-normalised shortcut;
    # "reference": the reference code's units (batch norm of the trunk before each unit, the
    # shortcut carries the normalised input, Keras 'same' alignment of strided convs).
    residual: str = "preact"
    # "plain": no scale / shift (torch eps and momentum); "keras": trainable scale and shift,
    # momentum 0.99, eps 1e-3 (the reference code's Keras defaults).
    batch_norm: str = "plain"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        for name, allowed in (
            ("spectrum_padding", SPECTRUM_PADDINGS),
            ("residual", RESIDUALS),
            ("batch_norm", BATCH_NORMS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if (isinstance(self.width, bool) or not isinstance(self.width, (int, float))
                or not 0 < self.width <= MAX_WIDTH):  # fmt: skip
            raise ConfigError(f"width must lie in (0, {MAX_WIDTH:g}], got {self.width!r}",
                              param="width")  # fmt: skip
        if not isinstance(self.stage_channels, (list, tuple)) or not (
            1 <= len(self.stage_channels) <= MAX_STAGES
        ):
            raise ConfigError(
                f"stage_channels must be a list of 1 to {MAX_STAGES} channel counts, got "
                f"{str(self.stage_channels)[:40]}",
                param="stage_channels",
            )
        if self.embed_dim is None:
            object.__setattr__(self, "embed_dim", 256 if self.arch == "dual" else 128)
        top = int(MAX_CHANNELS / max(self.width, 1.0))  # the largest count once widened
        for name in ("stem_channels", "spectrum_channels", "spectrum_hidden"):
            object.__setattr__(self, name, _count(getattr(self, name), name, top))
        object.__setattr__(self, "embed_dim", _count(self.embed_dim, "embed_dim", MAX_CHANNELS))
        object.__setattr__(self, "spectrum_dense_layers", _count(
            self.spectrum_dense_layers, "spectrum_dense_layers", MAX_DENSE_LAYERS))  # fmt: skip
        object.__setattr__(self, "stage_channels", tuple(
            _count(c, "stage_channels", top) for c in self.stage_channels))  # fmt: skip
        if self.arch == "dual" and self.embed_dim % 2:
            raise ConfigError(
                f"embed_dim must be even for arch 'dual', got {self.embed_dim}", param="embed_dim"
            )

    def channels(self, base: int) -> int:
        """``base`` scaled by :attr:`width` (at least 1)."""
        return max(1, int(round(base * self.width)))

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NetConfig:
        """Rebuild from :meth:`to_dict`; a missing variant field takes its :data:`LEGACY_VARIANTS`
        value (what checkpoints written before the field existed were trained with)."""
        return config_from_dict(cls, d, missing=LEGACY_VARIANTS)


def _count(value: object, name: str, top: int) -> int:
    """``value`` as an int in [1, top], else ConfigError naming the setting ``name``."""
    try:
        number = operator.index(value)  # ints and numpy ints; not floats or strings
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None or not 1 <= number <= top:
        raise ConfigError(f"{name} must be an integer from 1 to {top}, got {str(value)[:40]}",
                          param=name)  # fmt: skip
    return number


def _conv_out(length: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def _same_pad(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras / TensorFlow ``'same'`` padding: ``ceil(length / stride)`` outputs, odd pad right."""
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


class _SameConv1d(nn.Conv1d):
    """``Conv1d`` with Keras ``'same'`` padding (built with ``padding=0``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = _same_pad(x.shape[-1], self.kernel_size[0], self.stride[0])
        return super().forward(F.pad(x, pad))


class _SameConv2d(nn.Conv2d):
    """``Conv2d`` with Keras ``'same'`` padding (built with ``padding=0``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = _same_pad(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = _same_pad(x.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _batch_norm(kind: str, n: int, dims: int = 2) -> nn.Module:
    """Batch norm over ``n`` channels: ``"plain"`` (no scale / shift) or ``"keras"`` defaults."""
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    if kind == "keras":  # Keras momentum 0.99 = torch momentum 0.01
        return cls(n, eps=1e-3, momentum=0.01, affine=True)
    return cls(n, affine=False)


def _conv2d(c_in: int, c_out: int, kernel: int, stride: int, same: bool) -> nn.Conv2d:
    """Bias-free conv: Keras ``'same'`` alignment if ``same``, else symmetric ``kernel // 2``."""
    if same:
        return _SameConv2d(c_in, c_out, kernel, stride=stride, bias=False)
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)


def _shortcut(c_in: int, c_out: int, downsample: bool) -> nn.Module:
    if downsample or c_in != c_out:
        pool = nn.MaxPool2d(2, 2, ceil_mode=True) if downsample else nn.Identity()
        return nn.Sequential(pool, nn.Conv2d(c_in, c_out, 1, bias=False))
    return nn.Identity()


class _ResidualUnit(nn.Module):
    """Pre-activation residual unit: BN-ReLU-Conv3x3-BN-ReLU-Conv3x3 plus shortcut.

    With ``downsample`` the first conv strides by 2 and the shortcut is max-pool(2, 2) + 1x1 conv.
    """

    def __init__(self, c_in: int, c_out: int, downsample: bool, bn: str = "plain") -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.bn1 = _batch_norm(bn, c_in)
        self.conv1 = _conv2d(c_in, c_out, 3, stride, same=False)
        self.bn2 = _batch_norm(bn, c_out)
        self.conv2 = _conv2d(c_out, c_out, 3, 1, same=False)
        self.shortcut = _shortcut(c_in, c_out, downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv1(F.relu(self.bn1(x)))
        r = self.conv2(F.relu(self.bn2(r)))
        return self.shortcut(x) + r


class _ReferenceUnit(nn.Module):
    """The reference code's residual unit: ``h = BN(x)``, ``out = shortcut(h) + residual``.

    ``residual = Conv3x3(mid(Conv3x3(ReLU(src))))`` where ``src`` is ``h`` (or, for the first unit
    of the first stage, the un-normalised ``x``) and ``mid`` is ``"bn-relu"`` (every later unit),
    ``"relu"`` (first unit of the first stage) or ``"relu-bn"`` (its second unit), exactly as the
    reference code writes its first residual block. Strided convs use Keras ``'same'`` alignment.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        downsample: bool,
        bn: str,
        normalised_input: bool = True,
        mid: str = "bn-relu",
    ) -> None:
        super().__init__()
        self.normalised_input = normalised_input
        self.mid = mid
        self.bn1 = _batch_norm(bn, c_in)
        self.conv1 = _conv2d(c_in, c_out, 3, 2 if downsample else 1, same=True)
        self.bn2 = _batch_norm(bn, c_out) if mid != "relu" else None
        self.conv2 = _conv2d(c_out, c_out, 3, 1, same=True)
        self.shortcut = _shortcut(c_in, c_out, downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(x)
        r = self.conv1(F.relu(h if self.normalised_input else x))
        if self.mid == "bn-relu":
            r = F.relu(self.bn2(r))
        elif self.mid == "relu-bn":
            r = self.bn2(F.relu(r))
        else:
            r = F.relu(r)
        return self.shortcut(h) + self.conv2(r)


class SpectrogramBranch(nn.Module):
    """Spectrogram branch: (B, T, F) linear magnitude -> (B, out_dim) (not normalised).

    temporal mean normalisation -> BN per frequency bin -> Conv2D(16, 7x7, /2) -> BN -> ReLU ->
    MaxPool(3, /2) -> residual stages (16, 32, 64, 128; two units each; stages 2-4 stride 2) ->
    max over time -> flatten (channels x frequency) -> BN -> Linear(out_dim).
    Time is the image height, frequency the width. ``net_cfg.residual`` picks the unit
    (:class:`_ResidualUnit` or :class:`_ReferenceUnit`), ``net_cfg.batch_norm`` the batch norms.
    """

    def __init__(self, net_cfg: NetConfig, feat_cfg: FeatureConfig, out_dim: int) -> None:
        super().__init__()
        n_frames, n_bins = feat_cfg.n_frames, feat_cfg.n_bins
        bn = net_cfg.batch_norm
        reference = net_cfg.residual == "reference"
        self.freq_norm = _batch_norm(bn, n_bins, dims=1)
        stem = net_cfg.channels(net_cfg.stem_channels)
        self.stem = _conv2d(1, stem, 7, 2, same=reference)
        self.stem_bn = _batch_norm(bn, stem)
        self.pool = nn.MaxPool2d(3, 2)
        t, f = (_conv_out(n, 7, 2, 3) for n in (n_frames, n_bins))
        if min(t, f) < 3:
            raise ConfigError(
                f"spectrogram of {n_frames} frames x {n_bins} bins is too small for the "
                "spectrogram branch (needs >= 5 frames and bins); use longer clips"
            )
        t, f = _conv_out(t, 3, 2), _conv_out(f, 3, 2)
        units: list[nn.Module] = []
        c_in = stem
        for i, base in enumerate(net_cfg.stage_channels):
            c_out = net_cfg.channels(base)
            for j in range(2):
                down = i > 0 and j == 0
                if not reference:
                    units.append(_ResidualUnit(c_in, c_out, down, bn))
                elif i == 0:  # the reference's first block, as written there
                    units.append(
                        _ReferenceUnit(c_in, c_out, down, bn, j == 1, "relu-bn" if j else "relu")
                    )
                else:
                    units.append(_ReferenceUnit(c_in, c_out, down, bn))
                if down:
                    t, f = -(-t // 2), -(-f // 2)
                c_in = c_out
        self.stages = nn.Sequential(*units)
        self.flat_dim = c_in * f
        self.out_bn = _batch_norm(bn, self.flat_dim, dims=1)
        self.out = nn.Linear(self.flat_dim, out_dim, bias=False)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = temporal_mean_normalise(spec)  # (B, T, F)
        x = self.freq_norm(x.transpose(1, 2)).transpose(1, 2)  # BN per frequency bin
        x = x.unsqueeze(1)  # (B, 1, T, F)
        x = self.pool(F.relu(self.stem_bn(self.stem(x))))
        x = self.stages(x)  # (B, C, T', F')
        x = x.amax(dim=2)  # max over time -> (B, C, F')
        x = self.out_bn(x.flatten(1))  # (B, C*F')
        return self.out(x)


class SpectrumBranch(nn.Module):
    """Spectrum branch: (B, S) whole-clip magnitude spectrum -> (B, out_dim) (not normalised).

    Conv1D(128, k256, /64) -> ReLU -> Conv1D(128, k64, /32) -> ReLU -> Conv1D(128, k16, /4) -> ReLU
    -> flatten -> 4 x [Linear(128) -> BN -> ReLU] -> Linear(out_dim). With
    ``spectrum_padding="same"`` (the reference) each conv pads as Keras ``'same'`` and gives
    ``ceil(length / stride)`` outputs; with ``"valid"`` it does not pad, so the last bins never
    reach the output, and kernels (and strides) are clamped to the input length for short clips
    (see the module docstring). The input is scaled by ``1 / sqrt(n_samples)`` (a constant,
    Parseval) so half-precision activations cannot overflow; the branch is positively
    homogeneous up to its first batch norm (zero padding included), so this changes nothing else.
    """

    _KERNELS = ((256, 64), (64, 32), (16, 4))

    def __init__(self, net_cfg: NetConfig, feat_cfg: FeatureConfig, out_dim: int) -> None:
        super().__init__()
        length = feat_cfg.n_spectrum_bins
        self.n_bins = length
        self.scale = float(feat_cfg.n_samples) ** -0.5
        same = net_cfg.spectrum_padding == "same"
        channels = net_cfg.channels(net_cfg.spectrum_channels)
        convs: list[nn.Module] = []
        c_in = 1
        for kernel, stride in self._KERNELS:
            if same:
                convs += [_SameConv1d(c_in, channels, kernel, stride=stride, bias=False), nn.ReLU()]
                length = -(-length // stride)
            else:
                k = min(kernel, length)
                s = min(stride, k)
                convs += [nn.Conv1d(c_in, channels, k, stride=s, bias=False), nn.ReLU()]
                length = _conv_out(length, k, s)
            c_in = channels
        self.convs = nn.Sequential(*convs)
        self.flat_dim = channels * length
        hidden = net_cfg.channels(net_cfg.spectrum_hidden)
        dense: list[nn.Module] = []
        d_in = self.flat_dim
        for _ in range(net_cfg.spectrum_dense_layers):
            dense += [
                nn.Linear(d_in, hidden, bias=False),
                _batch_norm(net_cfg.batch_norm, hidden, dims=1),
                nn.ReLU(),
            ]
            d_in = hidden
        self.dense = nn.Sequential(*dense)
        self.out = nn.Linear(d_in, out_dim, bias=False)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if spec.shape[-1] != self.n_bins:
            raise ConfigError(
                f"spectrum has {spec.shape[-1]} bins, the encoder expects {self.n_bins}"
            )
        x = self.convs((spec * self.scale).unsqueeze(1))  # (B, C, S')
        return self.out(self.dense(x.flatten(1)))


class Encoder(nn.Module):
    """Embedding encoder: spectrogram (and spectrum) -> unit-norm embedding (B, D).

    Build with :func:`build_encoder`. ``forward(spec, spectrum=None)``:

    spec : Tensor [shape=(B, T, F)], linear magnitude spectrogram
    spectrum : Tensor [shape=(B, S)] or None, whole-clip magnitude spectrum; required when
        :attr:`needs_spectrum` (arch ``"dual"``)

    Returns Tensor [shape=(B, D)], float32, unit L2 norm (also under autocast).
    """

    def __init__(self, net_cfg: NetConfig, feat_cfg: FeatureConfig) -> None:
        super().__init__()
        self.net_cfg = net_cfg
        self.feat_cfg = feat_cfg
        dim = int(net_cfg.embed_dim)
        if net_cfg.arch == "dual":
            self.spectrogram_branch = SpectrogramBranch(net_cfg, feat_cfg, dim // 2)
            self.spectrum_branch: SpectrumBranch | None = SpectrumBranch(
                net_cfg, feat_cfg, dim // 2
            )
        else:
            self.spectrogram_branch = SpectrogramBranch(net_cfg, feat_cfg, dim)
            self.spectrum_branch = None

    @property
    def needs_spectrum(self) -> bool:
        """True when ``forward`` needs the whole-clip spectrum (arch ``"dual"``)."""
        return self.spectrum_branch is not None

    @property
    def embed_dim(self) -> int:
        return int(self.net_cfg.embed_dim)

    def forward(self, spec: torch.Tensor, spectrum: torch.Tensor | None = None) -> torch.Tensor:
        if spec.dim() != 3:
            raise ConfigError(f"expected a spectrogram batch (B, T, F), got {tuple(spec.shape)}")
        emb = self.spectrogram_branch(spec)
        if self.spectrum_branch is not None:
            if spectrum is None:
                raise ConfigError(
                    "the dual-branch encoder needs the whole-clip spectrum; "
                    "use asdxai.nets.encoder_inputs(wave, feat_cfg, 'dual')"
                )
            emb = torch.cat([emb, self.spectrum_branch(spectrum)], dim=1)
        return F.normalize(emb.float(), dim=1)


def build_encoder(net_cfg: NetConfig, feat_cfg: FeatureConfig) -> Encoder:
    """Build the encoder described by ``net_cfg`` for inputs described by ``feat_cfg``.

    Raises
    ------
    ConfigError
        The encoder would have more than :data:`MAX_PARAMETERS` weights (counted on the
        ``meta`` device first, which allocates nothing).
    """
    with torch.device("meta"):
        n = sum(p.numel() for p in Encoder(net_cfg, feat_cfg).parameters())
    if n > MAX_PARAMETERS:
        raise ConfigError(
            f"an encoder of width {net_cfg.width:g} with these channel counts has {n} weights "
            f"({n * 4 / 2**30:.1f} GiB), more than the {MAX_PARAMETERS} allowed",
            param="width",
        )
    return Encoder(net_cfg, feat_cfg)


def encoder_inputs(
    wave: torch.Tensor, feat_cfg: FeatureConfig, *, arch: str = "dual"
) -> dict[str, torch.Tensor | None]:
    """Model inputs from a waveform batch, computed on the waveform's device in float32.

    Parameters
    ----------
    wave : Tensor [shape=(B, L)], L = feat_cfg.n_samples
    feat_cfg : FeatureConfig
    arch : "dual" | "spectrogram"

    Returns
    -------
    dict with ``spec`` : Tensor [shape=(B, T, F)] linear magnitude and ``spectrum`` :
    Tensor [shape=(B, L // 2)] (``None`` for arch ``"spectrogram"``), usable as
    ``encoder(**encoder_inputs(wave, cfg, arch))``.
    """
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {ARCHS}, got {arch!r}")
    wave = wave.float()
    with torch.autocast(wave.device.type, enabled=False):
        spec = spectrogram(wave, cfg=feat_cfg)
        spec_full = spectrum(wave, cfg=feat_cfg) if arch == "dual" else None
    return {"spec": spec, "spectrum": spec_full}
