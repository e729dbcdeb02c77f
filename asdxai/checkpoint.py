"""The ``model.pt`` checkpoint: weights, every setting, class maps, loss history, fitted backend.

The file is a plain dict of tensors / str / int / float / bool / None / list / dict, so it loads
with ``torch.load(path, weights_only=True)`` (no code runs on load). Layout (format_version 1)::

    format_version: int, asdxai_version: str, provenance: dict
    feature_config: dict, net_config: dict, train_config: dict, seed: int
    task: "none"|"machine"|"section"|"attribute", per_section: bool
    class_names: {model_key: [str, ...]}   # model_key = "all" or a section_key (per-section models)
    encoders: {model_key: state_dict}
    history: {model_key: {"angular": [...], "ic_compactness": [...], "inter_compactness": [...],
                          "scale": [...]}}
    backend: None | {"k": int, "variant": str, "sections": {section_key: {"means": (k, D),
                                                                 "targets": (m, D)}}}
             ("variant": asdxai.scoring.BACKEND_VARIANTS; absent in older files = "paper")
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._atomic import atomic_path
from ._runtime import provenance
from ._version import __version__
from .errors import CheckpointError
from .features import FeatureConfig
from .nets import Encoder, NetConfig, build_encoder

FORMAT_VERSION = 1

#: Largest uncompressed size of a checkpoint archive (sum of its members), checked before loading.
MAX_CHECKPOINT_BYTES = 2 * 1024**3
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

REQUIRED_KEYS = (
    "format_version",
    "asdxai_version",
    "feature_config",
    "net_config",
    "train_config",
    "task",
    "per_section",
    "class_names",
    "encoders",
)


@dataclass
class Checkpoint:
    """Everything one training run produced (see the module docstring for the file layout).

    ``feature_config`` / ``net_config`` / ``train_config`` are plain dicts (as stored);
    :attr:`features` and :attr:`net` rebuild the dataclasses.
    """

    feature_config: dict
    net_config: dict
    train_config: dict
    task: str
    per_section: bool
    class_names: dict[str, list[str]]
    encoders: dict[str, dict[str, torch.Tensor]]
    seed: int = 0
    history: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    backend: dict | None = None
    provenance: dict = field(default_factory=dict)
    asdxai_version: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.asdxai_version:
            self.asdxai_version = __version__

    @property
    def features(self) -> FeatureConfig:
        """The :class:`FeatureConfig` the encoders were trained with."""
        return FeatureConfig(**self.feature_config)

    @property
    def net(self) -> NetConfig:
        """The :class:`NetConfig` of the encoders."""
        return NetConfig.from_dict(self.net_config)

    @property
    def model_keys(self) -> list[str]:
        return list(self.encoders)

    def model_key_for(self, section_key: str) -> str:
        """The encoder for clips of ``section_key``: ``"all"`` or the section's own model."""
        if not self.per_section:
            return "all"
        if section_key not in self.encoders:
            raise CheckpointError(
                f"checkpoint has no per-section model for {section_key!r}; it has "
                f"{', '.join(sorted(self.encoders))}"
            )
        return section_key

    def build_encoder(self, *, model_key: str = "all") -> Encoder:
        """The encoder ``model_key`` with its trained weights, in eval mode on the CPU."""
        if model_key not in self.encoders:
            have = ", ".join(sorted(self.encoders))
            raise CheckpointError(f"checkpoint has no encoder {model_key!r}; it has {have}")
        try:
            encoder = build_encoder(self.net, self.features)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint has an unusable net/feature config: {exc}") from None
        try:
            encoder.load_state_dict(self.encoders[model_key])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            detail = first[1].strip() if len(first) > 1 else first[0]
            raise CheckpointError(
                f"encoder weights {model_key!r} do not match the architecture in the "
                f"checkpoint's net_config ({detail})"
            ) from None
        return encoder.eval()

    @classmethod
    def untrained(
        cls,
        features: FeatureConfig,
        net: NetConfig,
        *,
        seed: int = 0,
        backend: dict | None = None,
    ) -> Checkpoint:
        """One encoder of one class (``"normal"``) with freshly initialised weights (drawn after
        ``torch.manual_seed(seed)``, the global generator left as it was): a stand-in model for
        benchmarks and tests. ``backend`` is a fitted ``KMeansBackend.to_dict()`` or None."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            weights = build_encoder(net, features).state_dict()
        return cls(
            feature_config=features.to_dict(), net_config=net.to_dict(), train_config={},
            task="none", per_section=False, class_names={"all": ["normal"]},
            encoders={"all": weights}, seed=seed, backend=backend,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The plain dict written to disk."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _safe(obj: Any) -> Any:
    """Convert to types ``torch.load(weights_only=True)`` accepts (numpy -> tensors)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): _safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_safe(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None:
        return obj
    # exact builtin types: subclasses (e.g. torch.__version__, a TorchVersion) are refused on load
    for kind in (bool, str, int, float):
        if isinstance(obj, kind):
            return kind(obj)
    raise CheckpointError(f"cannot store a {type(obj).__name__} in a checkpoint")


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    """Write ``ckpt`` to ``path`` atomically (temp file + rename); returns the path.

    Library versions missing from ``ckpt.provenance`` (a checkpoint not made by
    :func:`asdxai.train.train_model`) are filled in with those of the writing process.
    """
    payload = ckpt.to_dict()
    payload["provenance"] = {**provenance(), **(payload.get("provenance") or {})}
    return write_weights_only(payload, path)


def write_weights_only(payload: dict, path: str | os.PathLike) -> Path:
    """Write ``payload`` with ``torch.save`` atomically, in types weights-only loading accepts.

    numpy arrays become tensors and tensors move to the CPU; anything else but
    str / int / float / bool / None / lists / dicts raises :class:`CheckpointError`.
    """
    path = Path(path)
    safe = _safe(payload)
    with atomic_path(path) as tmp:
        torch.save(safe, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, *, arch: str | None = None) -> Checkpoint:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : the ``.pt`` file
    arch : if given ("dual" | "spectrogram"), the architecture the caller needs

    Raises
    ------
    CheckpointError
        One line naming the file: missing, not a PyTorch zip checkpoint (e.g. an HDF5 file),
        unpacking to more than :data:`MAX_CHECKPOINT_BYTES`, truncated or corrupt, contains code
        (not weights-only safe), written by a newer asdxai (format_version), missing keys,
        non-finite tensors, feature settings outside the sane ranges of
        :class:`~asdxai.features.FeatureConfig`, or another architecture.
    """
    return checkpoint_from_payload(read_weights_only(path), path, arch=arch)


def checkpoint_from_payload(
    data: dict, path: str | os.PathLike, *, arch: str | None = None
) -> Checkpoint:
    """The :class:`Checkpoint` in ``data`` (what :func:`read_weights_only` read from ``path``),
    checked as :func:`load_checkpoint` describes; ``path`` names the file in errors."""
    path = Path(path)
    version = data.get("format_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise CheckpointError(
            f"{path}: not an asdxai checkpoint (format_version is a {type(version).__name__} "
            f"{str(version)[:20]!r}, not an integer)"
        )
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format_version {version} is newer than this asdxai supports "
            f"({FORMAT_VERSION}); upgrade asdxai"
        )
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(
            f"{path}: not an asdxai checkpoint (missing keys: {', '.join(missing)})"
        )
    required = ("feature_config", "net_config", "train_config", "class_names", "encoders")
    for key in (*required, "provenance", "history"):  # the last two may be absent or None
        value = data.get(key)
        if not isinstance(value, dict) and (key in required or value is not None):
            raise CheckpointError(
                f"{path}: not an asdxai checkpoint ({key} is a {type(value).__name__}, not a dict)"
            )
    _check_backend(data.get("backend"), path)
    names = {f.name for f in dataclasses.fields(Checkpoint)}
    ckpt = Checkpoint(**{k: v for k, v in data.items() if k in names})
    if arch is not None:
        have = ckpt.net_config.get("arch")
        if have != arch:
            raise CheckpointError(
                f"{path}: checkpoint holds a {have!r} encoder, this command needs {arch!r}"
            )
    _check_weights(ckpt, path)
    return ckpt


def read_weights_only(path: str | os.PathLike) -> dict:
    """The dict a ``torch.save`` zip archive holds, loaded with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        One line naming the file: missing, not a PyTorch zip checkpoint (e.g. an HDF5 file),
        unpacking to more than :data:`MAX_CHECKPOINT_BYTES`, truncated or corrupt, contains code
        (not weights-only safe), not a dict, or holding non-finite tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    _check_archive(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        blocked = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln.upper()]
        if blocked:
            raise CheckpointError(
                f"{path}: refused to load: the file contains Python objects (possibly code) that "
                f"weights-only loading does not allow ({blocked[0]}); it was not written by asdxai"
            ) from None
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint (unreadable pickle data)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse means a damaged file
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint ({_first_line(exc)})"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not an asdxai checkpoint (a {type(data).__name__})")
    _check_finite(data, path)
    return data


def _check_archive(path: Path) -> None:
    """Raise CheckpointError unless ``path`` is a zip archive that unpacks to a sane size.

    ``torch.save`` writes a zip archive; its members may be compressed, so the sum of their
    uncompressed sizes is checked against :data:`MAX_CHECKPOINT_BYTES` before anything is
    loaded. PyTorch's legacy (non-zip) format is refused: it allocates the sizes its pickle
    declares before reading them.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc.strerror})") from None
    if not head.startswith(b"PK"):
        if head.startswith(_HDF5_MAGIC):
            kind = "an HDF5 file"
        elif head[:1] == b"\x80":
            kind = "a pickle, not the zip archive torch.save writes"
        else:
            kind = "not a zip archive"
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({kind})")
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint ({_first_line(exc)})"
        ) from None
    if total > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"{path}: checkpoint archive unpacks to {total} bytes, more than the "
            f"{MAX_CHECKPOINT_BYTES} allowed; refused before loading"
        )


def _check_finite(data: dict, path: Path) -> None:
    """Raise CheckpointError naming ``path`` and the entry when a stored tensor holds NaN or inf."""
    stack: list[tuple[str, Any]] = [(str(k), v) for k, v in data.items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, torch.Tensor):
            if (value.is_floating_point() or value.is_complex()) and not bool(
                torch.isfinite(value).all()
            ):
                raise CheckpointError(
                    f"{path}: non-finite values (NaN or inf) in {where}; the file is damaged or "
                    "its training diverged"
                )
        elif isinstance(value, dict):
            stack.extend((f"{where}/{k}", v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}/{i}", v) for i, v in enumerate(value))


#: Slack on the lengths of backend rows (float32 rounding of unit vectors and their means).
_NORM_SLACK = 1e-3


def _check_backend(backend: Any, path: Path) -> None:
    """Raise CheckpointError naming ``path`` when a stored k-means backend is degenerate.

    Its means are centroids of unit-length embeddings, so every mean has a length in
    (0, 1], and every stored target embedding has length 1. A section without means, or
    rows of length 0 (all zero), or longer than 1 (scaled) would make the scores silently
    fall back to the target embeddings or overflow, so they are refused here.
    """
    if backend is None:
        return
    sections = backend.get("sections") if isinstance(backend, dict) else None
    if not isinstance(sections, dict) or not sections:
        raise CheckpointError(f"{path}: damaged backend (no sections)")
    for key, entry in sections.items():
        if not isinstance(entry, dict):
            raise CheckpointError(f"{path}: damaged backend (section {key} is not a dict)")
        for name in ("means", "targets"):
            value = entry.get(name)
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                raise CheckpointError(
                    f"{path}: damaged backend (section {key} {name} are not a float tensor)"
                )
            if value.ndim != 2 or (name == "means" and value.shape[0] == 0):
                raise CheckpointError(
                    f"{path}: damaged backend (section {key} {name} of shape "
                    f"{tuple(value.shape)}; expected (n, D) with n >= 1 means)"
                )
            if value.shape[0] == 0:
                continue
            norms = value.double().norm(dim=1)
            lo, hi = float(norms.min()), float(norms.max())
            low = 1 - _NORM_SLACK if name == "targets" else _NORM_SLACK
            if lo < low or hi > 1 + _NORM_SLACK:
                raise CheckpointError(
                    f"{path}: damaged backend (section {key} {name} have lengths {lo:.3g} to "
                    f"{hi:.3g}; {name} of unit-length embeddings have lengths in "
                    f"{'(0, 1]' if name == 'means' else '{1}'})"
                )


def _check_weights(ckpt: Checkpoint, path: Path) -> None:
    """Raise CheckpointError (naming ``path``) when the weights do not fit the stored configs.

    The reference encoder is built on the ``meta`` device: names and shapes only, no memory.
    """
    try:
        features = ckpt.features
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unusable feature_config ({_first_line(exc)})") from None
    try:
        with torch.device("meta"):
            ref = build_encoder(ckpt.net, features).state_dict()
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: unusable net/feature config ({_first_line(exc)})") from None
    for key, weights in ckpt.encoders.items():
        if not isinstance(weights, dict):
            raise CheckpointError(f"{path}: encoder {key!r} is not a state dict")
        missing = [k for k in ref if k not in weights]
        extra = [k for k in weights if k not in ref]
        shape = [
            k for k in ref
            if k in weights and tuple(getattr(weights[k], "shape", ())) != tuple(ref[k].shape)
        ]  # fmt: skip
        kind = [
            k for k in ref
            if k in weights and k not in shape and (
                not isinstance(weights[k], torch.Tensor) or weights[k].is_complex()
                or weights[k].is_floating_point() != ref[k].is_floating_point()
            )
        ]  # fmt: skip
        if kind:
            got = getattr(weights[kind[0]], "dtype", type(weights[kind[0]]).__name__)
            raise CheckpointError(
                f"{path}: encoder weights {key!r} hold {len(kind)} entries of the wrong type "
                f"(e.g. {kind[0]!r} is {got}, the architecture needs {ref[kind[0]].dtype}); "
                "refused rather than cast"
            )
        if missing or extra or shape:
            first = (missing or extra or shape)[0]
            raise CheckpointError(
                f"{path}: encoder weights {key!r} do not match the architecture in the "
                f"checkpoint's net_config ({ckpt.net.arch!r}, width {ckpt.net.width:g}): "
                f"{len(missing)} missing, {len(extra)} unexpected, {len(shape)} of another "
                f"shape (e.g. {first!r})"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
