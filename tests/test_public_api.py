"""The public API keeps its options keyword-only: a walk over every ``__all__`` of the package."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest

#: The packages whose ``__all__`` is the public API.
PUBLIC = ("asdxai", "asdxai.workflows", "asdxai.explain", "asdxai.explain.attribution",
          "asdxai.embed", "asdxai.detectors", "asdxai.data")  # fmt: skip
#: Most positional parameters a public callable takes (the inputs; options go after ``*``).
MAX_POSITIONAL = 4
#: Most positional parameters with a default (an option a reader cannot name at the call).
MAX_POSITIONAL_OPTIONS = 2


def _callables():
    seen = set()
    for module in PUBLIC:
        mod = importlib.import_module(module)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isfunction(obj):
                yield f"{module}.{name}", obj
            elif inspect.isclass(obj):
                if "__init__" in vars(obj) and not dataclasses.is_dataclass(obj):
                    yield f"{module}.{name}", obj.__init__
                for key, value in vars(obj).items():
                    if isinstance(value, (classmethod, staticmethod)):
                        value = value.__func__
                    if not key.startswith("_") and inspect.isfunction(value):
                        yield f"{module}.{name}.{key}", value


def _positional(fn) -> list[inspect.Parameter]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in inspect.signature(fn).parameters.values()
            if p.kind in kinds and p.name not in ("self", "cls")]  # fmt: skip


def test_the_walk_sees_the_public_api():
    names = {name.rpartition(".")[2] for name, _ in _callables()}
    assert {"score_checkpoint", "run_rise", "compare_methods", "listen_to_map"} <= names


def test_public_callables_take_their_options_by_keyword():
    long = [f"{name}{inspect.signature(fn)}" for name, fn in _callables()
            if len(_positional(fn)) > MAX_POSITIONAL
            or sum(p.default is not p.empty for p in _positional(fn)) > MAX_POSITIONAL_OPTIONS]
    assert not long, long


@pytest.mark.parametrize("name", ["asdxai.workflows.score_checkpoint", "asdxai.demo.run_demo",
                                  "asdxai.explain.attribution.compare_methods"])  # fmt: skip
def test_long_option_lists_are_settings_objects(name):
    module, _, attr = name.rpartition(".")
    params = inspect.signature(getattr(importlib.import_module(module), attr)).parameters
    assert "settings" in params and len(params) <= 12, list(params)
