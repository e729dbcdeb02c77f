"""Device resolution, seeding and provenance shared by every command."""

from __future__ import annotations

import logging
import os
import platform
import random
from numbers import Integral

import numpy as np
import torch

from ._version import __version__
from .errors import ConfigError

logger = logging.getLogger(__name__)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cap_threads(n_jobs: int, name: str = "n_jobs") -> int:
    """A requested thread / job count, capped at the cores available.

    Parameters
    ----------
    n_jobs : int
        Positive count, or -1 for all cores (the scikit-learn / openTSNE convention).
    name : str
        The parameter's name, for the error message.

    Returns
    -------
    int
        ``min(n_jobs, available_cores())``; all cores for -1. A request above the cores
        is logged as a warning (more threads than cores only slows the work down).

    Raises
    ------
    ConfigError
        ``n_jobs`` is not an integer, or is 0 or negative other than -1.
    """
    if not isinstance(n_jobs, Integral) or isinstance(n_jobs, bool):
        raise ConfigError(f"{name} must be an integer, got {n_jobs!r}")
    cores = available_cores()
    if n_jobs == -1:
        return cores
    if n_jobs < 1:
        raise ConfigError(f"{name} must be a positive integer or -1 (all cores), got {n_jobs}")
    if n_jobs > cores:
        logger.warning("%s %d capped at the %d available CPU cores", name, n_jobs, cores)
        return cores
    return int(n_jobs)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"`` / ``"cpu"`` / ``"cuda"`` / ``"cuda:1"`` / ``"mps"`` into a ``torch.device``.

    ``"auto"`` (or ``None``) picks CUDA when available, else CPU. Asking for a
    device that is not available raises :class:`ConfigError`.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}: {exc}") from None
    if dev.type not in ("cpu", "cuda", "mps"):  # "meta" holds no values, others are no GPUs
        raise ConfigError(
            f"device {device!r} cannot run asdxai (cpu, cuda or mps computes values)",
            param="device",
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} requested but CUDA is not available; use the device 'cpu'",
            param="device",
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r} does not exist ({torch.cuda.device_count()} GPUs)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but it is not available")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch (all devices); return a CPU generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def provenance(device: torch.device | str | None = None) -> dict[str, str]:
    """Library versions and device, recorded in every output file."""
    info = {
        "asdxai_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
    }
    if device is not None:
        dev = torch.device(device)
        info["device"] = str(dev)
        if dev.type == "cuda":
            info["device_name"] = torch.cuda.get_device_name(dev)
    return info
