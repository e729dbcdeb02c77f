"""The ``asdxai`` command line: one sub-command per module in this package.

Each sub-command module defines ``register(subparsers)``, which adds its parser
and sets ``func`` to a ``run(args) -> int`` that is a thin call into the library.
The library (torch, the workflows) is imported inside ``run``, never at a command module's
top: ``asdxai --help`` imports every command module and must stay torch-free and fast
(``tests/test_help.py``); choice lists come from the torch-free :mod:`asdxai.constants`.
"""

from __future__ import annotations

import argparse
import codecs
import errno
import importlib
import io
import logging
import os
import re
import signal
import sys
from pathlib import Path

from .._allocator import keep_large_buffers
from .._version import __version__
from ..errors import AsdxaiError

# Sub-command modules, in the order `asdxai --help` lists them.
_COMMANDS = (
    "demo",
    "synth",
    "train",
    "fit_backend",
    "score",
    "rise",
    "compare_explainers",
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


def _flag(args: argparse.Namespace, param: str) -> str:
    """The command-line option of a library parameter (``smooth_cells`` -> ``--smooth``)."""
    flags = getattr(args, "param_flags", None) or {}
    return "--" + flags.get(param, param).replace("_", "-")


def _out_name(path: str) -> str:
    """The final name of an atomic writer's temporary ``.<name>.<hex>.part`` file."""
    p = Path(path)
    m = re.fullmatch(r"\.(.+)\.[0-9a-f]+\.part", p.name)
    return str(p.with_name(m.group(1))) if m else str(p)


def _escape(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler of the console: a file-name byte that is not UTF-8 (a surrogate
    escape) is written as ``\\xNN``, any other unencodable character as ``\\uNNNN``."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = "".join(
        f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
        else c.encode("ascii", "backslashreplace").decode("ascii")
        for c in exc.object[exc.start : exc.end]
    )  # fmt: skip
    return text, exc.end


codecs.register_error("asdxai.escape", _escape)


def _escape_console() -> None:
    """Printed lines and log lines never fail on a file name that is not UTF-8."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="asdxai.escape")
        except (AttributeError, ValueError, io.UnsupportedOperation):
            pass  # a replaced stream that cannot be reconfigured keeps its own handling


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so cleanup runs (temporary files and folders
    removed, worker processes ended) as for Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def _catch_sigterm() -> None:
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # main() called outside the main thread: leave SIGTERM as it is
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the ``asdxai`` command line; returns the process exit code.

    Every error caused by an input is one line on stderr and exit code 2; Ctrl-C (also while
    the command is starting up) is one line and exit code 130.
    """
    command = "asdxai"
    _escape_console()
    _catch_sigterm()
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a one-line usage error (code 2)
            return exc.code if isinstance(exc.code, int) else 1
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        command = f"asdxai {args.command}"
        _configure_logging(args.verbose, args.quiet)
        if not getattr(args, "default_malloc", False):
            keep_large_buffers()
        out = getattr(args, "out", None)
        fresh = isinstance(out, (str, os.PathLike)) and not os.path.lexists(out)
        failed = True
        try:
            code = int(args.func(args) or 0)
            failed = code != 0
            return code
        except AsdxaiError as exc:
            option = f" (option {_flag(args, exc.param)})" if exc.param else ""
            print(f"{command}: error: {_one_line(exc)}{option}", file=sys.stderr)
            return 2
        except OSError as exc:
            if exc.errno not in _FULL:
                raise
            where = _out_name(exc.filename) if exc.filename else str(getattr(args, "out", "") or "")
            print(
                f"{command}: error: {where}: cannot write output: {os.strerror(exc.errno)} "
                "(nothing half-written is left; free space and re-run)",
                file=sys.stderr,
            )
            return 2
        finally:
            if failed and fresh:
                _discard_empty(Path(out))
    except _Terminated:
        print(f"{command}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


#: errno values of a full or read-only file system met while writing an output.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _discard_empty(folder: Path) -> None:
    """Remove the output folder a failed command created if nothing was written into it
    (empty sub-folders included); a folder holding any file stays, with the file."""
    if not folder.is_dir():
        return
    for path, _, _ in os.walk(folder, topdown=False):
        try:
            os.rmdir(path)
        except OSError:  # not empty: something was written there
            pass


def _one_line(exc: BaseException) -> str:
    """The error message on one line (a multi-line message is joined with '; ')."""
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
