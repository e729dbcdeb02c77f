"""Help texts that are true and fast: every option a help text names exists, no literal ``%%``,
the default data named as it is, recipe class counts as the data has them, and ``--help``
without torch."""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asdxai.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _parsers(parser, path=("asdxai",)):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


@pytest.fixture(scope="module")
def helps():
    import os

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "10000"  # one line per paragraph: no option split at a hyphen
    try:
        return {name: (p, p.format_help()) for name, p in _parsers(build_parser())}
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def test_every_option_a_help_text_names_exists(helps):
    options = {n: {o for a in p._actions for o in a.option_strings} for n, (p, _) in helps.items()}
    bad = []
    for name, (_, text) in helps.items():
        for match in re.finditer(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text):
            # an option of another command follows its name (`asdxai fit-backend --data`)
            named = re.findall(r"asdxai [a-z-]+", text[max(0, match.start() - 120) : match.start()])
            theirs = options.get(named[-1], set()) if named else set()
            if match.group(1) not in options[name] | theirs:
                bad.append(f"{name}: {match.group(1)}")
    assert not bad, bad


def test_help_texts_render_percent_signs_and_name_the_default_data(helps):
    for name, (_, text) in helps.items():
        assert "%%" not in text, name
        assert "'mini' tree" not in text, name  # the default data is the small tree
    assert "'small' tree" in helps["asdxai tsne"][1]


def test_the_fills_are_documented(helps):
    """``--fill`` of ``rise`` and ``compare-explainers`` names every normal fill, and the
    choices of ``compare-explainers`` are the library's names."""
    from asdxai.constants import FILLS, NORMAL_FILLS

    for command in ("asdxai rise", "asdxai compare-explainers"):
        parser, text = helps[command]
        assert all(name in text for name in NORMAL_FILLS), command
        assert "silence" in text and "normal training clips" in text, command
    fill = next(a for a in helps["asdxai compare-explainers"][0]._actions if a.dest == "fill")
    assert tuple(fill.choices) == (*FILLS, *NORMAL_FILLS)


def test_synthetic_recipes_state_the_class_counts_of_the_small_tree():
    """The class counts ``train --recipe list`` prints for the synthetic recipes are those of
    the small tree, as the bundled models (trained on it) and the README have them."""
    import torch

    from asdxai.constants import TASKS
    from asdxai.recipes import Recipe, list_recipes

    bundled = ROOT / "asdxai" / "bundled"
    attr = torch.load(bundled / "sc-adacos-attribute.pt", weights_only=True)
    sections = list(attr["backend"]["sections"])
    counts = {
        "none": 1,
        "machine": len({s.rsplit("_section_", 1)[0] for s in sections}),
        "section": len(sections),
        "attribute": len(attr["class_names"]["all"]),
    }
    assert set(counts) == set(TASKS)
    checked = 0
    for name, description in list_recipes().items():
        recipe = Recipe.load(name)
        if not name.startswith("synthetic-small-") or recipe.settings.get("per_section"):
            continue
        task = recipe.settings["task"]
        expected = counts[task]
        assert f"({expected} class{'es' if expected > 1 else ''})" in description, name
        checked += 1
    assert checked >= 8
    readme = (ROOT / "README.md").read_text()
    assert f"{counts['attribute']} attribute classes" in readme
    assert "342 attribute classes" not in readme


def test_help_imports_no_torch_and_returns_fast():
    code = (
        "import sys, time; t = time.process_time()\n"
        "from asdxai.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for cmd in ([], ['rise'], ['train'], ['bench', 'rise']):\n"
        "        assert main([*cmd, '--help']) == 0\n"
        "print(time.process_time() - t, 'torch' in sys.modules,\n"
        "      'asdxai.workflows' in sys.modules)\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    wall = time.perf_counter() - start
    seconds, torch_loaded, workflows_loaded = float(out[0]), out[1], out[2]
    assert torch_loaded == "False" and workflows_loaded == "False"
    assert seconds < 1.0, f"parsers took {seconds:.2f} CPU-seconds"  # wall time: load-bound
    help_run = subprocess.run(
        [sys.executable, "-m", "asdxai", "--help"], capture_output=True, text=True, env=env
    )
    assert help_run.returncode == 0 and "compare-explainers" in help_run.stdout
    assert wall < 10  # interpreter start included, on a loaded machine
