"""asdxai: explain anomalous sound detection systems (RISE importance maps, t-SNE views).

The public API in one place; see the README for the command line.
"""

from ._version import __version__
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .data import ClipRecord, read_clip, scan  # noqa: E402
from .embed import TSNEConfig, nearest_normal_distances, run_tsne  # noqa: E402
from .errors import (  # noqa: E402
    AsdxaiError,
    AudioError,
    CheckpointError,
    ConfigError,
    DataError,
    ResultError,
)
from .explain import RISE, RISEMaskConfig, RISEResult  # noqa: E402
from .features import (  # noqa: E402
    FeatureConfig,
    log_spectrogram,
    spectrogram,
    spectrum,
    temporal_mean_normalise,
)
from .inference import embed_records, score_records  # noqa: E402
from .nets import NetConfig, build_encoder  # noqa: E402
from .recipes import Recipe  # noqa: E402
from .scoring import AnomalyScorer, KMeansBackend  # noqa: E402
from .train import TrainConfig, train_model  # noqa: E402
from .workflows import (  # noqa: E402
    Explainer,
    MapSettings,
    fit_backend,
    score_checkpoint,
    train_recipe,
)

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
