"""The public API keeps its options keyword-only: a walk over every public module of the package."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

import asdxai

#: Most positional parameters a public callable takes (the inputs; options go after ``*``).
MAX_POSITIONAL = 3
#: The only positional parameters that may have a default: optional *data* (the section a clip
#: belongs to, a dual-branch model's second input), which the Detector protocol and
#: ``nn.Module.forward`` take positionally, not options.
OPTIONAL_DATA = frozenset({"section", "section_key", "spectrum"})
#: Public callables that keep a longer positional list, with the reason. The synthetic sound
#: models are the generator's own building blocks, called in one place with every argument
#: (a sample count ``n`` and what to render); they are being reworked with the generator.
ALLOWED = {
    "asdxai.data.synth_sounds.mic_gain_db": "generator internals (machine, section, domain, n)",
    "asdxai.data.synth_sounds.render_machine": "generator internals (cond, clip, anomaly, n)",
}
#: Faces (argparse) and scripts, whose public names are not a library API.
NOT_API = ("asdxai.cli", "asdxai.__main__", "asdxai.bundled.train_")


def _public_modules() -> list[str]:
    names = ["asdxai"]
    for info in pkgutil.walk_packages(asdxai.__path__, "asdxai."):
        private = any(part.startswith("_") for part in info.name.split(".")[1:])
        if not private and not info.name.startswith(NOT_API):
            names.append(info.name)
    return names


def _public_names(mod) -> list[str]:
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    own = mod.__name__
    return [n for n, v in vars(mod).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == own]  # fmt: skip


def _callables():
    seen = set()
    for module in _public_modules():
        mod = importlib.import_module(module)
        for name in _public_names(mod):
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
    assert {"score_checkpoint", "run_rise", "compare_methods", "listen_to_map", "spectrogram",
            "build_loss", "plot_tsne", "write_tables", "bench_scoring"} <= names  # fmt: skip


def test_public_callables_take_their_options_by_keyword():
    long = [f"{name}{inspect.signature(fn)}" for name, fn in _callables()
            if name not in ALLOWED and (len(_positional(fn)) > MAX_POSITIONAL
            or any(p.default is not p.empty and p.name not in OPTIONAL_DATA
                   for p in _positional(fn)))]  # fmt: skip
    assert not long, long


@pytest.mark.parametrize("name", ["asdxai.workflows.score_checkpoint", "asdxai.demo.run_demo",
                                  "asdxai.explain.attribution.compare_methods",
                                  "asdxai.workflows.run_rise"])  # fmt: skip
def test_long_option_lists_are_settings_objects(name):
    module, _, attr = name.rpartition(".")
    params = inspect.signature(getattr(importlib.import_module(module), attr)).parameters
    assert "settings" in params and len(params) <= 12, list(params)
