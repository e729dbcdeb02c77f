"""asdxai: explain anomalous sound detection systems (RISE importance maps, t-SNE views).

The public API in one place; see the README for the command line.
"""

import importlib

from ._version import __version__

#: Public name -> the module that defines it. Loaded on first use (PEP 562), so that
#: ``python -m asdxai --help`` and ``import asdxai.constants`` do not import torch.
_WHERE = {
    **dict.fromkeys(("Checkpoint", "load_checkpoint", "save_checkpoint"), ".checkpoint"),
    "keep_large_buffers": "._allocator",
    **dict.fromkeys(("ClipRecord", "read_clip", "scan"), ".data"),
    **dict.fromkeys(("TSNEConfig", "nearest_normal_distances", "run_tsne"), ".embed"),
    **dict.fromkeys(
        ("AsdxaiError", "AudioError", "CheckpointError", "ConfigError", "DataError", "ResultError"),
        ".errors",
    ),
    **dict.fromkeys(("RISE", "RISEMaskConfig", "RISEResult"), ".explain"),
    **dict.fromkeys(
        ("FeatureConfig", "log_spectrogram", "spectrogram", "spectrum", "temporal_mean_normalise"),
        ".features",
    ),
    **dict.fromkeys(("embed_records", "score_records"), ".inference"),
    **dict.fromkeys(("NetConfig", "build_encoder"), ".nets"),
    "Recipe": ".recipes",
    **dict.fromkeys(("AnomalyScorer", "KMeansBackend"), ".scoring"),
    **dict.fromkeys(("TrainConfig", "train_model"), ".train"),
    **dict.fromkeys(
        ("Explainer", "MapSettings", "fit_backend", "score_checkpoint", "train_recipe"),
        ".workflows",
    ),
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'asdxai' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "RISE",
    "AnomalyScorer",
    "Explainer",
    "MapSettings",
    "Recipe",
    "fit_backend",
    "score_checkpoint",
    "train_recipe",
    "AsdxaiError",
    "AudioError",
    "Checkpoint",
    "CheckpointError",
    "ClipRecord",
    "ConfigError",
    "DataError",
    "FeatureConfig",
    "KMeansBackend",
    "NetConfig",
    "RISEMaskConfig",
    "RISEResult",
    "ResultError",
    "TSNEConfig",
    "TrainConfig",
    "__version__",
    "build_encoder",
    "embed_records",
    "keep_large_buffers",
    "load_checkpoint",
    "log_spectrogram",
    "nearest_normal_distances",
    "read_clip",
    "run_tsne",
    "save_checkpoint",
    "scan",
    "score_records",
    "spectrogram",
    "spectrum",
    "temporal_mean_normalise",
    "train_model",
]
