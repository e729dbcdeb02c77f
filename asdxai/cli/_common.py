"""Options shared by several sub-commands (so every --help explains them the same way)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..constants import BACKEND_VARIANTS


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


#: Largest count an option takes (2^53: exact as a float, far beyond any feasible run), so a
#: count with 23 digits is refused while parsing, not after the work.
MAX_COUNT = 2**53


def count_int(text: str) -> int:
    """argparse type: an integer in 1 ... :data:`MAX_COUNT`."""
    value = positive_int(text)
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most 2^53 = {MAX_COUNT}, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def number_in(
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
):
    """argparse type factory: a finite float within the given bounds.

    ``number_in(0, open_low=True)`` accepts numbers > 0, ``number_in(0, 100)`` numbers in
    [0, 100]; the error message states the accepted range.
    """
    left = "(" if open_low or low is None else "["
    right = ")" if open_high or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    span = f"{left}{lo}, {hi}{right}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        ok = math.isfinite(value)
        if low is not None:
            ok = ok and (value > low if open_low else value >= low)
        if high is not None:
            ok = ok and (value < high if open_high else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"must lie in {span}, got {text}")
        return value

    return parse


positive_float = number_in(0, open_low=True)
non_negative_float = number_in(0)
probability = number_in(0, 1, open_low=True, open_high=True)
percent = number_in(0, 100, open_low=True, open_high=True)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (CUDA if available, else CPU), cpu, cuda, cuda:N (default: auto)",
    )


def add_data(parser: argparse.ArgumentParser) -> None:
    """``--data ROOT`` with the default every command shares (see :func:`default_data_root`)."""
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset root with dev_data/ and/or eval_data/ (default: $ASDXAI_DATA, else the "
        "synthetic 'small' tree in the user cache, generated on first use)",
    )


def add_loading(parser: argparse.ArgumentParser) -> None:
    """``--batch-size`` and ``--num-workers`` of commands that embed clips from disk."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="clips per forward pass (default: 64)"
    )
    parser.add_argument(
        "--num-workers",
        type=non_negative_int,
        default=0,
        help="DataLoader processes reading wav files (default: 0 = main process)",
    )


#: Largest seed: the range NumPy's legacy generators, scikit-learn's k-means and openTSNE
#: accept (2^32 - 1), so a seed means the same in every command and never fails late.
MAX_SEED = 2**32 - 1


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, MAX_SEED]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must lie in [0, {MAX_SEED}] (2^32 - 1), got {value}")
    return value


def add_seed(parser: argparse.ArgumentParser, default: int | None = 0, help: str | None = None):
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=default,
        help=help or f"random seed, 0 to 2^32 - 1 (default: {default})",
    )


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide progress bars"
    )


def add_out(parser: argparse.ArgumentParser, command: str, what: str = "output folder") -> None:
    """``--out DIR`` defaulting to ``./<command>`` (printed at the end of the run)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(command),
        help=f"{what} (created; default: ./{command})",
    )


def data_root(path: Path | None, splits: tuple[str, ...] | None = None) -> Path:
    """``--data`` if given, else the default data root with at least ``splits`` (see
    :func:`asdxai.workflows.defaults.default_data_root`)."""
    from ..errors import ConfigError
    from ..workflows.defaults import default_data_root

    if path is None:
        return default_data_root(splits=splits)
    if not Path(path).exists():
        raise ConfigError(f"--data {path}: no such directory")
    return Path(path)


def checkpoint_path(path: Path | None) -> Path:
    """``--checkpoint`` if given, else the default checkpoint (``$ASDXAI_CHECKPOINT``/bundled)."""
    from ..errors import ConfigError
    from ..workflows.defaults import default_checkpoint

    if path is None:
        return default_checkpoint()
    if not Path(path).is_file():
        raise ConfigError(f"--checkpoint {path}: no such file")
    return Path(path)


def save_checkpoint_file(ckpt, path: Path) -> Path:
    """``save_checkpoint`` with a failing write (a full disk) as one line naming the file.

    torch's archive writer reports a failed write as a RuntimeError without an errno; the
    atomic writer has already removed its temporary file, so nothing half-written is left.
    """
    from ..checkpoint import save_checkpoint
    from ..errors import ConfigError

    try:
        return save_checkpoint(ckpt, path)
    except RuntimeError as exc:
        text = str(exc)
        if "inline_container" not in text and "PytorchStreamWriter" not in text:
            raise
        raise ConfigError(
            f"{path}: cannot write the checkpoint (the write failed: is the disk full?); "
            "nothing was written"
        ) from None


def add_backend(parser: argparse.ArgumentParser, when: str = "") -> None:
    """``--backend VARIANT``: which k-means backend is fitted (see docs/FIDELITY.md)."""
    parser.add_argument(
        "--backend",
        choices=tuple(BACKEND_VARIANTS),
        default=None,
        help=f"k-means backend{when}: paper (k-means on the source clips, unit-length means; the "
        "study's text), reference (source and target clips, raw means; the author's code) or a "
        "mix of the two (default: the recipe's, else paper)",
    )
