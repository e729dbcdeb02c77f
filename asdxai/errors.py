"""User-facing exceptions.

Every error a user can cause (bad audio, bad tree, bad checkpoint, bad option)
raises a subclass of :class:`AsdxaiError`. The CLI turns these into one line on
stderr and a non-zero exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AsdxaiError(Exception):
    """Base class of every user-facing asdxai error.

    ``param`` names the function parameter the error is about, if one is; the command line
    adds the matching option (``section`` -> ``--section``), the library never names flags.
    """

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        self.param = param


class AudioError(AsdxaiError):
    """A wav file cannot be used (format, rate, channels, length, values)."""


class DataError(AsdxaiError):
    """A data tree, file name, CSV or split is malformed or incomplete."""


class CheckpointError(AsdxaiError):
    """A checkpoint is unreadable, unsafe, incompatible or incomplete."""


class ConfigError(AsdxaiError, ValueError):
    """An option or setting has an invalid value."""


class ResultError(AsdxaiError):
    """A result file (.h5, .csv) is unreadable or does not match the request."""


class NonFiniteError(AsdxaiError):
    """Values that must be finite (features, a loss, weights) are NaN or infinite.

    Raised where the values are produced, naming what they belong to (a clip, a
    training run), so a non-finite value is never mistaken for an unreadable clip.
    """


class DetectorError(AsdxaiError):
    """A detector cannot be loaded, or it breaks the detector protocol (wrong shape,
    non-finite or non-deterministic scores); the message names the detector."""
