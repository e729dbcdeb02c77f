"""The ``asdxai`` command line: one sub-command per module in this package.

Each sub-command module defines ``register(subparsers)``, which adds its parser
and sets ``func`` to a ``run(args) -> int`` that is a thin call into the library.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import AsdxaiError

# Sub-command modules, in the order `asdxai --help` lists them.
_COMMANDS = (
    "demo",
    "synth",
    "train",
    "fit_backend",
    "score",
    "rise",
    "listen",
    "tsne",
    "bench",
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (exit code 2), like every other error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``asdxai`` argument parser."""
    from .. import __version__

    parser = _Parser(
        prog="asdxai",
        description=(
            "Explain anomalous sound detection systems: generate DCASE-layout data, train "
            "embedding models, score clips, compute RISE importance maps and t-SNE views."
        ),
    )
    parser.add_argument("--version", action="version", version=f"asdxai {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in _COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``asdxai`` command line; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error (code 2)
        return exc.code if isinstance(exc.code, int) else 1
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except AsdxaiError as exc:
        option = f" (option --{exc.param.replace('_', '-')})" if exc.param else ""
        print(f"asdxai {args.command}: error: {exc}{option}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"asdxai {args.command}: interrupted", file=sys.stderr)
        return 130
