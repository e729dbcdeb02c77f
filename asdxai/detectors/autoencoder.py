"""A detector in the style of the DCASE task 2 baseline: a dense autoencoder on log-mel frames.

A clip becomes log-mel frames (Hann STFT without centre padding, power spectrum through a
Slaney mel filterbank from 0 Hz to half the sample rate, ``10 log10(max(mel, 1e-10))`` dB);
``context`` consecutive frames are concatenated into one vector, standardised with the mean
and standard deviation of the training vectors, and reconstructed by a dense autoencoder
(Linear-BatchNorm-ReLU blocks down to a small bottleneck and back up, a linear output). The
anomaly score of a clip is the squared reconstruction error averaged over its vectors and their
dimensions. One autoencoder per machine type, picked by the section key's machine
(``"fan_section_00"`` -> ``"fan"``), as in the baseline.

Differences from the organisers' Keras baseline (DCASE 2020-2022): 64 mel bands instead of
128 and three hidden layers of 64 units on each side instead of four of 128 (seven machine
models fit in 2 MB); frames without centre padding (asdxai's STFT framing); standardised
inputs (training converges in a few epochs on one CPU thread). The whole path from waveform
to score is torch code (``torch.stft``, a product with the filterbank), so
:meth:`AutoencoderDetector.export_onnx` exports it as one ONNX graph.

File layout (format_version 1), loadable with ``torch.load(weights_only=True)``::

    family: "autoencoder", format_version: int, asdxai_version: str, provenance: dict
    config: dict                   # AutoencoderConfig
    training: dict                 # train_autoencoder's settings (epochs, seed, ...), clip counts
    models: {machine: state_dict}  # input mean / std, autoencoder weights, batch-norm statistics
    history: {machine: [float]}    # mean training loss per epoch
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .._atomic import atomic_path
from .._checks import Interval, check_params
from .._runtime import provenance, resolve_device
from ..checkpoint import read_weights_only, write_weights_only
from ..data.audio import clip_duration
from ..data.dataset import clip_loader
from ..errors import CheckpointError, ConfigError, DataError, NonFiniteError
from ..features import MAX_OVERLAP, N_FFT_RANGE, SAMPLE_RATE_RANGE, FeatureConfig

log = logging.getLogger(__name__)

#: The ``family`` key of an autoencoder file (how a loader tells it from an asdxai checkpoint).
FAMILY = "autoencoder"
FORMAT_VERSION = 1
#: Floor of the mel power before the logarithm (-100 dB), so silence stays finite.
LOG_FLOOR = 1e-10
#: Upper bounds of the sizes (a file's config is untrusted input): input vector length
#: (``n_mels * context``), hidden layer width, hidden layers per side.
MAX_INPUT_DIM, MAX_HIDDEN, MAX_LAYERS = 8192, 2048, 16


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}", param=name)
    if not low <= value <= high:
        raise ConfigError(f"{name} must lie in [{low}, {high}], got {value}", param=name)


@dataclass(frozen=True)
class AutoencoderConfig:
    """Features and architecture of the autoencoder (stored in its file)."""

    sample_rate: int = 16_000  # Hz; the rate score() expects
    n_fft: int = 1024  # STFT window (Hann) and FFT length, samples
    hop_length: int = 512  # STFT hop, samples
    n_mels: int = 64  # mel bands, 0 Hz to sample_rate / 2 (the baseline has 128)
    context: int = 5  # consecutive frames concatenated into one input vector
    hidden: int = 64  # units of every hidden layer (the baseline has 128)
    layers: int = 3  # hidden layers on each side of the bottleneck (the baseline has 4)
    bottleneck: int = 8  # code size
    std_floor_db: float = 1.0  # smallest standard deviation an input is divided by, dB

    def __post_init__(self) -> None:
        _check_int("sample_rate", self.sample_rate, *SAMPLE_RATE_RANGE)
        _check_int("n_fft", self.n_fft, *N_FFT_RANGE)
        _check_int("hop_length", self.hop_length, -(-self.n_fft // MAX_OVERLAP), self.n_fft)
        _check_int("n_mels", self.n_mels, 1, min(self.n_fft // 2 + 1, MAX_INPUT_DIM))
        _check_int("context", self.context, 1, MAX_INPUT_DIM // self.n_mels)
        _check_int("hidden", self.hidden, 1, MAX_HIDDEN)
        _check_int("layers", self.layers, 0, MAX_LAYERS)
        _check_int("bottleneck", self.bottleneck, 1, MAX_HIDDEN)
        floor = self.std_floor_db
        if not isinstance(floor, Real) or isinstance(floor, bool) or not math.isfinite(floor):
            raise ConfigError(f"std_floor_db must be a number, got {floor!r}", param="std_floor_db")
        if floor <= 0:
            raise ConfigError(f"std_floor_db must be > 0, got {floor}", param="std_floor_db")

    @property
    def input_dim(self) -> int:
        """Length D of one input vector: ``n_mels * context``."""
        return self.n_mels * self.context

    @property
    def min_samples(self) -> int:
        """Shortest clip with one input vector: ``n_fft + (context - 1) * hop_length``."""
        return self.n_fft + (self.context - 1) * self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Slaney-style mel filterbank (librosa's default: Slaney scale, area-normalised triangles).

    Parameters
    ----------
    sample_rate : int, Hz
    n_fft : int, FFT length (samples)
    n_mels : int, bands from 0 Hz to ``sample_rate / 2``

    Returns
    -------
    Tensor [shape=(n_mels, n_fft // 2 + 1)], float32, non-negative weights on the power spectrum
    """
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

    def to_mel(hz: torch.Tensor) -> torch.Tensor:
        log_part = min_log_mel + torch.log(hz.clamp_min(min_log_hz) / min_log_hz) / logstep
        return torch.where(hz >= min_log_hz, log_part, hz / f_sp)

    def to_hz(mel: torch.Tensor) -> torch.Tensor:
        log_part = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
        return torch.where(mel >= min_log_mel, log_part, f_sp * mel)

    fft_hz = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    top = to_mel(torch.tensor(sample_rate / 2.0, dtype=torch.float64))
    edges = to_hz(torch.linspace(0.0, float(top), n_mels + 2, dtype=torch.float64))  # (M + 2,)
    width = torch.diff(edges)  # (M + 1,)
    ramps = edges[:, None] - fft_hz[None, :]  # (M + 2, F)
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # equal area per band
    return weights.to(torch.float32)


def _block(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]


class MachineAutoencoder(nn.Module):
    """Waveform -> anomaly score for one machine type (the graph exported to ONNX).

    Buffers ``mean`` and ``std`` (D,) standardise the input vectors; the STFT window and the
    mel filterbank are rebuilt from the config (not stored).
    """

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)
        self.register_buffer(
            "filterbank", mel_filterbank(c.sample_rate, c.n_fft, c.n_mels), persistent=False
        )
        self.register_buffer("mean", torch.zeros(c.input_dim))
        self.register_buffer("std", torch.ones(c.input_dim))
        widths = [c.input_dim] + [c.hidden] * c.layers + [c.bottleneck] + [c.hidden] * c.layers
        pairs = zip(widths[:-1], widths[1:], strict=True)
        blocks = [m for n_in, n_out in pairs for m in _block(n_in, n_out)]
        self.net = nn.Sequential(*blocks, nn.Linear(widths[-1], c.input_dim))

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """Log-mel frames: waves (B, L) in [-1, 1] -> (B, T, n_mels) dB, T = 1 + (L - n_fft) // hop
        (the detector's own input)."""
        c = self.config
        stft = torch.stft(
            waves, c.n_fft, c.hop_length, window=self.window, center=False, return_complex=True
        )  # (B, F, T)
        power = stft.real**2 + stft.imag**2
        mel = torch.matmul(self.filterbank, power)  # (B, M, T)
        # a floor, not an added constant: torch.onnx's optimiser drops ``mel + 1e-10`` as a
        # no-op in float32, which gave silence -inf dB (and NaN scores) in the exported model
        return (10.0 * torch.log10(mel.clamp_min(LOG_FLOOR))).transpose(1, 2)

    def context_vectors(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Frames t..t+context-1 concatenated: (B, T, M) -> (B, T - context + 1, context * M)."""
        c = self.config.context
        # negative stops keep the window count symbolic for torch.export (dynamic clip length)
        parts = [log_mel[:, i : i - c + 1] if i < c - 1 else log_mel[:, i:] for i in range(c)]
        return torch.cat(parts, dim=-1)

    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the reconstruction of standardised vectors: (..., D) -> (...)."""
        recon = self.net(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return ((recon - x) ** 2).mean(dim=-1)

    def score_log_mel(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Anomaly scores of log-mel frames (B, T, n_mels) dB -> (B,)."""
        x = (self.context_vectors(log_mel) - self.mean) / self.std
        return self.reconstruction_error(x).mean(dim=-1)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        """Anomaly scores: waves (B, L) float32 in [-1, 1] -> (B,), higher = more anomalous."""
        return self.score_log_mel(self.log_mel(waves))


def machine_of(section: str) -> str:
    """The machine type of a section key: ``"fan_section_00"`` -> ``"fan"`` (a bare machine
    name is returned as it is)."""
    return section.rsplit("_section_", 1)[0]


def _fingerprint(config: AutoencoderConfig, models: Mapping[str, MachineAutoencoder]) -> str:
    h = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    for machine in sorted(models):
        for key, value in sorted(models[machine].state_dict().items()):
            h.update(f"{machine}/{key}:{value.dtype}:{tuple(value.shape)}".encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class AutoencoderDetector:
    """One DCASE-baseline-style autoencoder per machine type, as an asdxai detector.

    Parameters
    ----------
    config : AutoencoderConfig
    models : mapping machine type -> MachineAutoencoder (trained)
    name : str
        Human-readable name (the file name when loaded from one).
    training : dict, optional
        How the models were trained (stored in the file, reported by :meth:`describe`).
    history : dict machine -> list of float, optional
        Mean training loss per epoch.
    device : str or torch.device
        Where scoring runs ("auto" = CUDA when available).

    Attributes
    ----------
    name, sample_rate (Hz), fingerprint (SHA-256 hex of the config and every weight)
    """

    def __init__(
        self,
        config: AutoencoderConfig,
        models: Mapping[str, MachineAutoencoder],
        *,
        name: str = FAMILY,
        training: Mapping[str, Any] | None = None,
        history: Mapping[str, Sequence[float]] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not models:
            raise ConfigError("an autoencoder detector needs at least one machine model")
        self.config = config
        self.device = resolve_device(device)
        self.models = {m: models[m].to(self.device).eval() for m in sorted(models)}
        self.name = name
        self.sample_rate = config.sample_rate
        self.training = dict(training or {})
        self.history = {m: [float(v) for v in h] for m, h in (history or {}).items()}
        self.fingerprint = _fingerprint(config, self.models)

    @property
    def machines(self) -> list[str]:
        """The machine types this detector has a model for."""
        return list(self.models)

    def machine_for(self, section: str | None) -> str:
        """The machine model that scores clips of ``section`` (None: the only model)."""
        if section is None:
            if len(self.models) == 1:
                return self.machines[0]
            raise ConfigError(
                f"{self.name} has one model per machine type ({', '.join(self.machines)}); "
                "name the clip's section",
                param="section",
            )
        machine = machine_of(section)
        if machine not in self.models:
            raise ConfigError(
                f"{self.name} has no model for machine type {machine!r} (section {section!r}); "
                f"it has {', '.join(self.machines)}",
                param="section",
            )
        return machine

    def _checked(self, waves: torch.Tensor) -> torch.Tensor:
        if waves.dim() != 2:
            raise ConfigError(
                f"waves must have shape (B, L), got {tuple(waves.shape)}", param="waves"
            )
        if waves.shape[1] < self.config.min_samples:
            raise ConfigError(
                f"clips of {waves.shape[1]} samples are shorter than the "
                f"{self.config.min_samples} one input vector of {self.name} needs",
                param="waves",
            )
        return waves.to(self.device, torch.float32)

    @torch.no_grad()
    def score(self, waves: torch.Tensor, section: str | None = None) -> torch.Tensor:
        """Anomaly scores of a batch of clips.

        Parameters
        ----------
        waves : Tensor [shape=(B, L)], float waveform in [-1, 1] at :attr:`sample_rate`
        section : str, optional
            Section key (``"fan_section_00"``) or machine type; picks the machine's model.
            May be None when the detector has one model.

        Returns
        -------
        Tensor [shape=(B,)], float32 on the device of ``waves``: the mean squared
        reconstruction error of the clip's standardised log-mel vectors; higher = more anomalous.
        """
        model = self.models[self.machine_for(section)]
        return model(self._checked(waves)).to(waves.device)

    @torch.no_grad()
    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """The detector's own input: waves (B, L) -> log-mel frames (B, T, n_mels) dB."""
        return self.models[self.machines[0]].log_mel(self._checked(waves)).to(waves.device)

    @torch.no_grad()
    def score_log_mel(self, log_mel: torch.Tensor, section: str | None = None) -> torch.Tensor:
        """Anomaly scores of log-mel frames (B, T, n_mels) dB (as :meth:`log_mel` gives) -> (B,)."""
        model = self.models[self.machine_for(section)]
        return model.score_log_mel(log_mel.to(self.device, torch.float32)).to(log_mel.device)

    def describe(self) -> dict:
        """JSON-able settings for provenance (``kind`` as the other adapters name theirs)."""
        return {
            "kind": FAMILY,
            "name": self.name,
            "machines": self.machines,
            "config": self.config.to_dict(),
            "training": self.training,
        }

    def to_payload(self) -> dict:
        """The plain dict :meth:`save` writes (see the module docstring)."""
        prov = provenance()
        return {
            "family": FAMILY,
            "format_version": FORMAT_VERSION,
            "asdxai_version": prov["asdxai_version"],
            "provenance": prov,
            "config": self.config.to_dict(),
            "training": self.training,
            "models": {m: model.state_dict() for m, model in self.models.items()},
            "history": self.history,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the detector to ``path`` (atomic; loadable with ``weights_only=True``)."""
        return write_weights_only(self.to_payload(), path)

    @classmethod
    def from_payload(
        cls, data: Mapping[str, Any], *, name: str = FAMILY, device: str | torch.device = "cpu"
    ) -> AutoencoderDetector:
        """Rebuild a detector from the dict of its file (``checkpoint.read_weights_only``).

        Raises
        ------
        CheckpointError
            Not an autoencoder file, newer format, unusable config, weights that do not fit it
            (the message does not name the file; :func:`load_autoencoder` adds it).
        """
        if data.get("family") != FAMILY:
            raise CheckpointError(f"not an autoencoder file (family {data.get('family')!r})")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(
                f"autoencoder format_version {version!r}; this asdxai reads up to {FORMAT_VERSION}"
            )
        models = data.get("models")
        if not isinstance(data.get("config"), dict) or not isinstance(models, dict) or not models:
            raise CheckpointError("autoencoder file without config or models")
        try:
            config = AutoencoderConfig(**data["config"])
        except (TypeError, ConfigError) as exc:
            raise CheckpointError(f"unusable autoencoder config ({exc})") from None
        built = {}
        for machine, state in models.items():
            model = MachineAutoencoder(config)
            try:
                model.load_state_dict(state)
            except (RuntimeError, TypeError, AttributeError) as exc:
                detail = str(exc).strip().splitlines()[-1].strip()
                raise CheckpointError(
                    f"weights of machine {machine!r} do not fit the config ({detail})"
                ) from None
            built[str(machine)] = model
        return cls(
            config, built, name=name, training=data.get("training") or {},
            history=data.get("history") or {}, device=device,
        )  # fmt: skip

    def export_onnx(self, path: str | os.PathLike, *, machine: str | None = None) -> Path:
        """Export one machine's model to ONNX: ``waves`` (B, L) float32 -> ``scores`` (B,).

        Batch size and clip length are dynamic (at least :attr:`AutoencoderConfig.min_samples`).
        The model's ``metadata_props`` carry ``sample_rate`` (Hz), ``name`` (the file's name),
        ``family``, ``machine`` and the ``fingerprint`` of this detector.

        Parameters
        ----------
        path : the ``.onnx`` file to write (atomically)
        machine : machine type or section key (None: the only model)

        Raises
        ------
        ConfigError
            Unknown machine, or torch.onnx's exporter (``onnxscript``) is not installed.
        """
        try:
            import onnxscript  # noqa: F401 - torch.onnx's exporter needs it
        except ImportError:
            raise ConfigError(
                "exporting to ONNX needs onnx and onnxscript (pip install onnx onnxscript)"
            ) from None
        machine = self.machine_for(machine)
        model = copy.deepcopy(self.models[machine]).cpu().eval()
        n = self.config.min_samples
        example = torch.zeros(2, 2 * n)  # batch > 1 and length > min, so neither is specialised
        dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("samples", min=n)}
        program = torch.onnx.export(
            model, (example,), dynamo=True, dynamic_shapes=(dims,), input_names=["waves"],
            output_names=["scores"], verbose=False,
        )  # fmt: skip
        path = Path(path)
        program.model.metadata_props.update(
            {
                "sample_rate": str(self.sample_rate),
                "name": path.name,
                "family": FAMILY,
                "machine": machine,
                "fingerprint": self.fingerprint,
            }
        )
        with atomic_path(path) as tmp:
            program.save(tmp)
        return path


def load_autoencoder(
    path: str | os.PathLike, *, device: str | torch.device = "cpu", payload: dict | None = None
) -> AutoencoderDetector:
    """Load an autoencoder file written by :meth:`AutoencoderDetector.save`; its name is the
    file's name. ``payload`` is the file's content when the caller has already read it
    (:func:`~asdxai.detectors.load_detector` reads a ``.pt`` once to tell its family).

    Raises
    ------
    CheckpointError
        One line naming the file: see :func:`asdxai.checkpoint.read_weights_only` and
        :meth:`AutoencoderDetector.from_payload`.
    """
    path = Path(path).resolve()
    data = read_weights_only(path) if payload is None else payload
    try:
        detector = AutoencoderDetector.from_payload(data, name=path.name, device=device)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    detector.path = path  # where it came from: results record it, listen reloads it
    return detector


def _machine_seed(seed: int, machine: str) -> int:
    """The seed of one machine's model: depends on (seed, machine) only, so training a subset of
    the machine types gives the same models."""
    return zlib.crc32(f"{int(seed)}:{machine}".encode())


def _build_seeded(config: AutoencoderConfig, seed: int) -> MachineAutoencoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MachineAutoencoder(config)


@torch.no_grad()
def _training_vectors(
    model: MachineAutoencoder, records: Sequence[Any], device: torch.device, num_workers: int
) -> torch.Tensor:
    """Every context vector (N, D) of the clips (read at the first clip's length), raw dB."""
    c = model.config
    duration = clip_duration(records[0].path)
    if round(duration * c.sample_rate) < c.min_samples:
        raise DataError(
            f"{records[0].path}: {duration:g} s is shorter than one input vector of the "
            f"autoencoder ({c.min_samples} samples at {c.sample_rate} Hz)"
        )
    cfg = FeatureConfig(
        sample_rate=c.sample_rate, duration_s=duration, n_fft=c.n_fft, hop_length=c.hop_length
    )
    out = []
    for wave, _ in clip_loader(records, cfg, batch_size=32, num_workers=num_workers):
        v = model.context_vectors(model.log_mel(wave.to(device)))
        out.append(v.reshape(-1, v.shape[-1]))
    return torch.cat(out)


def _fit(
    model: MachineAutoencoder,
    vectors: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    desc: str,
    progress: bool,
) -> list[float]:
    """Train ``model.net`` to reconstruct standardised ``vectors`` (N, D); mean loss per epoch."""
    optimiser = torch.optim.Adam(model.net.parameters(), lr=lr)
    history = []
    model.train()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False, unit="epoch")
    for epoch in bar:
        order = torch.randperm(vectors.shape[0], generator=generator).to(vectors.device)
        total = torch.zeros((), dtype=torch.float64, device=vectors.device)
        count = 0
        for start in range(0, vectors.shape[0], batch_size):
            batch = vectors[order[start : start + batch_size]]
            if batch.shape[0] < 2:  # batch norm cannot train on one vector
                continue
            loss = model.reconstruction_error(batch).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.detach() * batch.shape[0]
            count += batch.shape[0]
        mean = float(total) / max(count, 1)
        if not math.isfinite(mean):
            raise NonFiniteError(
                f"{desc}: training diverged: the loss is {mean} in epoch {epoch + 1}; nothing is "
                f"saved (try a smaller lr than {lr:g})"
            )
        history.append(mean)
        bar.set_postfix(loss=f"{mean:.4f}")
    bar.close()
    return history


def train_autoencoder(
    records: Sequence[Any],
    *,
    config: AutoencoderConfig = AutoencoderConfig(),
    epochs: int = 20,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    num_workers: int = 0,
    name: str = FAMILY,
) -> AutoencoderDetector:
    """Train one autoencoder per machine type on the normal training clips of ``records``.

    Parameters
    ----------
    records : sequence of ClipRecord
        Clips of ``subset == "train"`` labelled normal (or unlabelled) are used, e.g.
        ``scan(root, split="dev-train") + scan(root, split="eval-train")``; others are
        ignored. A machine's clips are read at the length of its first clip (padded or trimmed).
    config : AutoencoderConfig
    epochs : int, passes over every context vector of the machine (shuffled each epoch)
    batch_size : int, vectors per Adam step (the baseline's 512)
    lr : float, Adam learning rate (the baseline's 1e-3)
    seed : int
        Seeds the weights and the shuffling; machine ``m``'s model depends on ``(seed, m)``
        alone. On the CPU the same seed and thread count give identical weights.
    device : where training runs ("auto" = CUDA when available)
    progress : tqdm bar per machine with the running loss
    num_workers : clip reader processes
    name : the detector's name

    Returns
    -------
    AutoencoderDetector
        On the CPU, in eval mode.

    Raises
    ------
    DataError
        No normal training clip.
    NonFiniteError
        Training diverged.
    """
    _check_int("epochs", epochs, 1, 100_000)
    _check_int("batch_size", batch_size, 2, 1 << 20)
    check_params({"lr": (Real, Interval(0, None, "neither"))}, lr=lr)
    dev = resolve_device(device)
    train = [r for r in records if r.subset == "train" and r.label in (None, "normal")]
    if not train:
        raise DataError("no normal training clips to train the autoencoder on")
    by_machine: dict[str, list] = {}
    for r in train:
        by_machine.setdefault(r.machine, []).append(r)
    models, history = {}, {}
    for machine in sorted(by_machine):
        machine_seed = _machine_seed(seed, machine)
        model = _build_seeded(config, machine_seed).to(dev)
        vectors = _training_vectors(model, by_machine[machine], dev, num_workers)
        model.mean.copy_(vectors.mean(dim=0))
        model.std.copy_(vectors.std(dim=0).clamp_min(config.std_floor_db))
        vectors = (vectors - model.mean) / model.std
        log.info("%s: %d clips, %d vectors", machine, len(by_machine[machine]), len(vectors))
        history[machine] = _fit(
            model, vectors, epochs=epochs, batch_size=batch_size, lr=float(lr),
            generator=torch.Generator().manual_seed(machine_seed),
            desc=f"autoencoder {machine}", progress=progress,
        )  # fmt: skip
        models[machine] = model.cpu().eval()
    training = {
        "epochs": epochs, "batch_size": batch_size, "lr": float(lr), "seed": int(seed),
        "clips": {m: len(r) for m, r in sorted(by_machine.items())},
    }  # fmt: skip
    return AutoencoderDetector(config, models, name=name, training=training, history=history)
