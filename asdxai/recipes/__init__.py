"""Training recipes: one JSON file per row of the study's Table II, shipped as package data.

A recipe names the loss, the auxiliary classes, the encoder and the training settings of one
model; :class:`Recipe` loads one (by name from ``$ASDXAI_MODELS`` or this folder, or from a
path), applies overrides and produces the :class:`~asdxai.nets.NetConfig` and
:class:`~asdxai.train.TrainConfig` it stands for. The CLI, the figure scripts and the bundled
models all go through it, so a recipe means the same thing everywhere.

Keys: every field of ``NetConfig`` and ``TrainConfig`` by name (``classes`` is accepted for
``task``), ``trials``, ``backend`` (the k-means backend variant) and the descriptive
``description``, ``dataset``, ``table_row``, ``n_classes``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..nets import NetConfig
from ..train import TrainConfig

#: Folder of the shipped recipes (this package).
RECIPE_DIR = Path(__file__).resolve().parent
#: Environment variable naming an extra folder searched first.
RECIPES_ENV = "ASDXAI_MODELS"
_DESCRIPTIVE = ("description", "dataset", "table_row", "n_classes")
_ALIASES = {"classes": "task"}
_EXTRA = ("trials", "backend")


def _net_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(NetConfig)}


def _train_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig)} - {"num_workers"}


def setting_keys() -> set[str]:
    """Every key a recipe may set (besides the descriptive ones)."""
    return _net_fields() | _train_fields() | set(_EXTRA)


#: Largest seed (the range NumPy's legacy generators, scikit-learn and openTSNE accept).
MAX_SEED = 2**32 - 1
#: Types of the keys that are not fields of NetConfig / TrainConfig.
_EXTRA_TYPES = {"trials": "int", "backend": "str | None"}


def _expected_type(key: str) -> str:
    """The annotation of setting ``key`` as text (``"int"``, ``"tuple[int, ...]"``, ...)."""
    if key in _EXTRA_TYPES:
        return _EXTRA_TYPES[key]
    for cls in (NetConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            if f.name == key:
                return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    return ""


def _is(value: Any, kind: str) -> bool:
    """Whether a JSON value has the type named ``kind`` (bool is not a number here)."""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    return True


def _check_value(recipe: str, key: str, value: Any) -> None:
    """Raise ConfigError (naming the recipe and the key) when ``value`` has the wrong type.

    Checked before any setting is used, so a string where a number belongs or a list where
    a single value belongs is one line, never a failure in the middle of training.
    """
    kind = _expected_type(key).replace(" ", "")
    options = kind.split("|")
    if value is None and "None" in options:
        return
    options = [o for o in options if o != "None"]
    if not options or options == [""]:
        return
    ok = False
    for option in options:
        if option.startswith("tuple["):  # tuple[int, ...] / tuple[str, ...]: a JSON list
            inner = option[len("tuple[") :].split(",")[0]
            ok = ok or (
                isinstance(value, (list, tuple)) and len(value) > 0
                and all(_is(v, inner) for v in value)
            )  # fmt: skip
        else:
            ok = ok or _is(value, option)
    if not ok:
        want = " or ".join(
            f"a non-empty list of {o[len('tuple[') :].split(',')[0]}" if o.startswith("tuple[")
            else {"int": "an integer", "float": "a finite number", "bool": "true or false",
                  "str": "a string"}.get(o, o)
            for o in options
        ) + (" or null" if "None" in kind.split("|") else "")  # fmt: skip
        raise ConfigError(
            f"recipe {recipe!r}: {key} must be {want}, got {json.dumps(value, default=str)}",
            param=key,
        )
    if key in ("seed",) and not 0 <= value <= MAX_SEED:
        raise ConfigError(
            f"recipe {recipe!r}: seed must lie in [0, {MAX_SEED}], got {value}", param=key
        )
    if key in ("trials", "epochs", "batch_size", "sub_clusters") and value < 1:
        raise ConfigError(f"recipe {recipe!r}: {key} must be positive, got {value}", param=key)


def _dirs() -> list[Path]:
    extra = os.environ.get(RECIPES_ENV)
    return ([Path(extra)] if extra else []) + [RECIPE_DIR]


def list_recipes() -> dict[str, str]:
    """``{name: description}`` of the recipes in ``$ASDXAI_MODELS`` and the shipped folder."""
    found: dict[str, str] = {}
    for folder in _dirs():
        for path in sorted(folder.glob("*.json")):
            if path.stem not in found:
                try:
                    found[path.stem] = json.loads(path.read_text()).get("description", "")
                except (OSError, ValueError, AttributeError):
                    found[path.stem] = "(unreadable)"
    return found


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named set of training settings.

    Attributes
    ----------
    name : recipe name (file stem), or ``"custom"``
    settings : setting key -> value (``classes`` already renamed to ``task``)
    info : the descriptive keys (description, dataset, table_row, n_classes)
    """

    name: str = "custom"
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        settings = {_ALIASES.get(k, k): v for k, v in dict(self.settings).items()}
        unknown = sorted(set(settings) - setting_keys())
        if unknown:
            raise ConfigError(f"recipe {self.name!r}: unknown keys: {', '.join(unknown)}")
        for key, value in settings.items():
            _check_value(self.name, key, value)
        seed, trials = settings.get("seed", 0), settings.get("trials", 1)
        if seed + trials - 1 > MAX_SEED:
            raise ConfigError(
                f"recipe {self.name!r}: seeds {seed}..{seed + trials - 1} of {trials} trials "
                f"exceed {MAX_SEED} (2^32 - 1)",
                param="seed",
            )
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "info", dict(self.info))
        self.net_config()  # validate now, not after loading data
        self.train_config()

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> Recipe:
        """Read a recipe: a path to a ``.json`` file, or a name looked up in the recipe folders."""
        path = Path(name_or_path)
        if not path.is_file():
            for folder in _dirs():
                if (folder / f"{name_or_path}.json").is_file():
                    path = folder / f"{name_or_path}.json"
                    break
            else:
                known = ", ".join(list_recipes()) or "none found"
                raise ConfigError(f"unknown recipe {str(name_or_path)!r}; known recipes: {known}")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigError(
                f"{path}: cannot read recipe ({str(exc) or 'nested too deeply'})"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a recipe must be a JSON object")
        info = {k: data.pop(k) for k in _DESCRIPTIVE if k in data}
        try:
            return cls(path.stem, data, info)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: invalid recipe ({exc})") from None

    def with_overrides(self, **overrides: Any) -> Recipe:
        """A copy with ``overrides`` applied (``None`` values leave a setting as it is)."""
        given = {_ALIASES.get(k, k): v for k, v in overrides.items() if v is not None}
        return Recipe(self.name, {**self.settings, **given}, self.info)

    @property
    def splits(self) -> tuple[str, ...]:
        """Training splits (default: dev-train)."""
        return tuple(self.settings.get("splits", ("dev-train",)))

    @property
    def trials(self) -> int:
        return int(self.settings.get("trials", 1))

    @property
    def seed(self) -> int:
        return int(self.settings.get("seed", 0))

    @property
    def backend(self) -> str | None:
        """k-means backend variant, None = the library default."""
        return self.settings.get("backend")

    def net_config(self):
        """The encoder settings (:class:`~asdxai.nets.NetConfig`)."""
        kw = {k: v for k, v in self.settings.items() if k in _net_fields()}
        if "stage_channels" in kw:
            kw["stage_channels"] = tuple(kw["stage_channels"])
        try:
            return NetConfig(**kw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"recipe {self.name!r}: {exc}") from None

    def train_config(self, *, seed: int | None = None, num_workers: int = 0):
        """The training settings (:class:`~asdxai.train.TrainConfig`) for one trial's seed."""
        kw = {k: v for k, v in self.settings.items() if k in _train_fields()}
        kw["seed"] = self.seed if seed is None else int(seed)
        kw["splits"] = self.splits
        try:
            return TrainConfig(**kw, num_workers=num_workers)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"recipe {self.name!r}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Settings as stored in JSON (with the descriptive keys)."""
        return {**self.info, **{k: list(v) if isinstance(v, tuple) else v
                                for k, v in self.settings.items()}}  # fmt: skip
