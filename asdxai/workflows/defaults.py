"""Where inputs come from when the user names none: data root, bundled models, cache folder.

Every face (CLI, demo, figure scripts, benchmarks) resolves its defaults here, so they agree.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..data.synth import GENERATOR_VERSION, generate, missing_splits
from ..errors import ConfigError

#: Environment variable naming the dataset root every command uses when ``--data`` is absent.
DATA_ENV = "ASDXAI_DATA"
#: Environment variable naming the checkpoint used when ``--checkpoint`` is absent.
CHECKPOINT_ENV = "ASDXAI_CHECKPOINT"
#: Folder of the bundled models (package data); see ``TRAINING.md`` there.
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "bundled"
#: The bundled model every command uses by default: the study's best system (dual-branch
#: encoder, sub-cluster AdaCos on machine type + section + attribute classes).
DEFAULT_MODEL = "sc-adacos-attribute"
#: Preset and seed of the synthetic tree used when neither ``--data`` nor ``$ASDXAI_DATA`` is set
#: (the tree the bundled models were trained on).
DEFAULT_PRESET, DEFAULT_SEED = "small", 0


def cache_dir() -> Path:
    """Per-user cache folder: ``$XDG_CACHE_HOME/asdxai`` (else ``~/.cache/asdxai``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asdxai"


def ensure_synthetic(
    root: str | os.PathLike,
    *,
    preset: str = DEFAULT_PRESET,
    seed: int = DEFAULT_SEED,
    splits: tuple[str, ...] | None = None,
    sections: tuple[int, ...] | None = None,
    progress: bool = True,
) -> Path:
    """A synthetic tree at ``root`` holding at least ``splits`` (None = all), generated on use.

    ``sections`` restricts a new tree to these section numbers (a quick test set); ``progress``
    shows a bar over the clips while generating.

    Missing splits are added to an existing tree of the same preset and seed (every clip
    derives from the seed and its index alone, so a tree grown split by split is the same tree).
    A new tree is written to ``root.partial-<pid>`` and renamed into place when complete, so an
    interrupted run never leaves a half-written tree at ``root``; the partial trees of
    processes that no longer run (killed) are removed first.
    """

    root = Path(root)
    if (root / "synth.json").is_file():
        if missing_splits(root, splits):
            generate(root, preset=preset, seed=seed, splits=splits, sections=sections,
                     progress=progress)  # fmt: skip
        return root
    _remove_stale_partials(root)
    tmp = root.with_name(f"{root.name}.partial-{os.getpid()}")
    what = "all splits" if splits is None else ", ".join(splits)
    print(f"asdxai: generating the synthetic '{preset}' tree (seed {seed}; {what}) in {root} ...",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        generate(tmp, preset=preset, seed=seed, splits=splits, sections=sections,
                 progress=progress)  # fmt: skip
        try:
            os.replace(tmp, root)
        except OSError:
            if not (root / "synth.json").is_file():  # not a concurrent run that finished first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _remove_stale_partials(root: Path) -> None:
    """Remove the ``root.partial-<pid>`` folders whose process no longer exists."""
    for partial in root.parent.glob(f"{root.name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        print(f"asdxai: removing {partial}, left by an interrupted run (process {pid})",
              file=sys.stderr, flush=True)  # fmt: skip
        shutil.rmtree(partial, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def default_data_root(*, splits: tuple[str, ...] | None = None) -> Path:
    """The dataset root used when none is given.

    ``$ASDXAI_DATA`` if set (e.g. a real DCASE2022/2023 tree); otherwise the synthetic ``small``
    tree (seed 0) in the user cache, ``<cache>/synthetic-small-seed0-g<generator version>``, with
    at least ``splits`` (None = all) generated on first use; its location is printed to stderr.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env)
        if not path.exists():
            raise ConfigError(f"${DATA_ENV}={env}: no such directory")
        return path

    name = f"synthetic-{DEFAULT_PRESET}-seed{DEFAULT_SEED}-g{GENERATOR_VERSION}"
    root = cache_dir() / name
    fresh = not (root / "synth.json").is_file()
    ensure_synthetic(root, splits=splits)
    if not fresh:
        print(f"asdxai: using the synthetic data in {root} (set ${DATA_ENV} to use other data)",
              file=sys.stderr, flush=True)  # fmt: skip
    return root


def bundled_checkpoint(name: str) -> Path:
    """Path of a bundled model (``sc-adacos-attribute``, ``compactness-none`` and their
    ``-spectrogram`` twins; see ``asdxai/bundled/TRAINING.md``)."""
    path = BUNDLED_DIR / f"{name}.pt"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in BUNDLED_DIR.glob("*.pt"))) or "none"
        raise ConfigError(f"no bundled model {name!r} (bundled: {known})")
    return path


def default_checkpoint() -> Path:
    """The checkpoint used when none is given: ``$ASDXAI_CHECKPOINT`` if set, else the bundled
    SC-AdaCos model (:data:`DEFAULT_MODEL`)."""
    env = os.environ.get(CHECKPOINT_ENV)
    if env:
        return Path(env)
    return bundled_checkpoint(DEFAULT_MODEL)
