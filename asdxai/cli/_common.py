"""Options shared by several sub-commands (so every --help explains them the same way)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
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
        "synthetic 'mini' tree in the user cache, generated on first use)",
    )


def add_loading(parser: argparse.ArgumentParser) -> None:
    """``--batch-size`` and ``--num-workers`` of commands that embed clips from disk."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="clips per forward pass (default: 64)"
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        default=0,
        help="DataLoader processes reading wav files (default: 0 = main process)",
    )


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument(
        "--seed", type=int, default=default, help=f"random seed (default: {default})"
    )


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide progress bars"
    )


# ----------------------------------------------------------------------------- default inputs

#: Environment variable naming the dataset root every command uses when ``--data`` is absent.
DATA_ENV = "ASDXAI_DATA"
#: Environment variable naming the checkpoint used when ``--checkpoint`` is absent.
CHECKPOINT_ENV = "ASDXAI_CHECKPOINT"
#: The bundled model, shipped as package data (``asdxai/bundled/model.pt``).
BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[1] / "bundled" / "model.pt"
#: Preset and seed of the synthetic tree used when neither ``--data`` nor ``$ASDXAI_DATA`` is set.
DEFAULT_PRESET, DEFAULT_SEED = "mini", 0


def cache_dir() -> Path:
    """Per-user cache folder: ``$XDG_CACHE_HOME/asdxai`` (else ``~/.cache/asdxai``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asdxai"


def ensure_synthetic(root: Path, preset: str = DEFAULT_PRESET, seed: int = DEFAULT_SEED) -> Path:
    """A synthetic tree at ``root``, generated on first use.

    The tree is written to ``root.partial-<pid>`` and renamed into place when complete, so an
    interrupted run never leaves a half-written tree at ``root``.
    """
    import shutil

    from ..data.synth import generate

    root = Path(root)
    if (root / "synth.json").is_file():
        return root
    tmp = root.with_name(f"{root.name}.partial-{os.getpid()}")
    print(f"asdxai: generating the synthetic '{preset}' tree (seed {seed}) in {root} ...",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        generate(tmp, preset=preset, seed=seed, progress=False)
        try:
            os.replace(tmp, root)
        except OSError:
            if not (root / "synth.json").is_file():  # not a concurrent run that finished first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def default_data_root() -> Path:
    """The dataset root used when ``--data`` is not given.

    ``$ASDXAI_DATA`` if set (e.g. a real DCASE2022/2023 tree); otherwise the synthetic ``mini``
    tree (seed 0) in the user cache, ``<cache>/synthetic-mini-seed0-g<generator version>``,
    generated on first use (about half a minute); its location is printed to stderr.
    """
    from ..errors import ConfigError

    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env)
        if not path.exists():
            raise ConfigError(f"${DATA_ENV}={env}: no such directory")
        return path
    from ..data.synth import GENERATOR_VERSION

    name = f"synthetic-{DEFAULT_PRESET}-seed{DEFAULT_SEED}-g{GENERATOR_VERSION}"
    root = cache_dir() / name
    fresh = not (root / "synth.json").is_file()
    ensure_synthetic(root)
    if not fresh:
        print(f"asdxai: using the synthetic data in {root} (set ${DATA_ENV} to use other data)",
              file=sys.stderr, flush=True)  # fmt: skip
    return root


def default_checkpoint() -> Path:
    """The checkpoint used when ``--checkpoint`` is not given.

    ``$ASDXAI_CHECKPOINT`` if set, else the bundled model ``asdxai/bundled/model.pt`` (a small
    spectrogram-only SC-AdaCos model trained on the synthetic ``mini`` tree, see
    ``asdxai/bundled/TRAINING.md``).
    """
    from ..errors import ConfigError

    env = os.environ.get(CHECKPOINT_ENV)
    if env:
        return Path(env)
    if not BUNDLED_CHECKPOINT.is_file():
        raise ConfigError(
            f"no checkpoint: pass --checkpoint MODEL.pt or set ${CHECKPOINT_ENV} (the bundled "
            f"model {BUNDLED_CHECKPOINT} ships with a source checkout / editable install only)"
        )
    return BUNDLED_CHECKPOINT
