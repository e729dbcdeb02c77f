"""The layering of docs/ARCHITECTURE.md, checked on the source: no import loops between
modules, no import from a lower layer to a higher one, nothing outside ``asdxai/cli`` imports
the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "asdxai"

#: Layers, lowest first; a module may import its own layer and the layers below it.
LAYERS = (
    {"errors", "_io", "_h5", "_atomic", "_runtime", "_allocator", "_version", "constants"}
    | {"layout", "_checks"},
    {"data", "features"},
    {"nets", "losses"},
    {"checkpoint", "train", "recipes"},
    {"scoring", "metrics", "inference", "embedding_cache", "detectors"},
    {"explain", "embed", "listen", "plots"},
    {"workflows", "benchmarks", "bundled"},
    {"demo"},
    {"cli", "__init__", "__main__"},
)


def _layer(top: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if top in names)


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the asdxai modules imported by ``path`` (any scope)."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "asdxai"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == "asdxai":
                # ``from . import metrics`` imports the module ``asdxai.metrics``, not the package
                subs = {f"{name}.{a.name}" for a in node.names if _is_module(f"{name}.{a.name}")}
                out |= subs or {name}
    return out


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    bad = []
    for mod, deps in _graph().items():
        for dep in deps:
            if _layer(_top(dep)) > _layer(_top(mod)):
                bad.append(f"{mod} -> {dep}")
    assert not bad, bad


def test_nothing_outside_the_cli_imports_it():
    faces = ("asdxai.cli", "asdxai.__main__")
    users = [m for m, deps in _graph().items() if not m.startswith(faces)
             and any(d.startswith("asdxai.cli") for d in deps)]  # fmt: skip
    for folder in ("figures", "examples"):
        for path in (ROOT / folder).glob("*.py"):
            if any(d.startswith("asdxai.cli") for d in _imports(path)):
                users.append(str(path.relative_to(ROOT)))
    assert not users, users


def test_no_import_loop_between_top_level_modules():
    edges: dict[str, set[str]] = {}
    for mod, deps in _graph().items():
        edges.setdefault(_top(mod), set()).update(
            _top(d) for d in deps if _top(d) != _top(mod)
        )
    seen, stack = set(), []

    def visit(node: str) -> None:
        assert node not in stack, " -> ".join([*stack[stack.index(node) :], node])
        if node in seen:
            return
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in sorted(edges):
        visit(node)


def test_the_library_never_names_a_command_line_flag():
    """Errors and log lines below ``asdxai/cli`` carry ``param``; only the CLI names the flag."""
    import re

    flag = re.compile(r"(^|[\s(`'\"])--[a-z]")
    logs = {"debug", "info", "warning", "error", "exception"}
    bad = []
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            said = isinstance(node, ast.Raise) or (
                isinstance(node, ast.Call) and getattr(node.func, "attr", "") in logs
            )
            if not said:
                continue
            for const in ast.walk(node):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    if flag.search(const.value):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {const.value!r}")
    assert not bad, bad
