"""A detector built by a Python function: ``package.module:function``."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch

from ..errors import DetectorError


def load_factory(spec: str, *, device: str | torch.device = "cpu") -> Any:
    """Import ``package.module`` and call its ``function`` to build a detector.

    The function takes no required argument; one with a ``device`` parameter is given the
    device. The module must be importable (installed, or on ``PYTHONPATH``).

    Parameters
    ----------
    spec : ``package.module:function``
    device : torch device, passed where the function accepts it

    Returns
    -------
    whatever the function returns (checked by :class:`~.base.CheckedDetector` where used)
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr or not attr.isidentifier():
        raise DetectorError(
            f"detector {spec!r}: a factory is written package.module:function", param="detector"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DetectorError(
            f"detector {spec}: cannot import {module_name} ({exc}); is it on PYTHONPATH?",
            param="detector",
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise DetectorError(f"detector {spec}: {module_name} has no function {attr}",
                            param="detector")  # fmt: skip
    try:
        takes_device = "device" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        takes_device = False
    return fn(device=device) if takes_device else fn()
