"""Atomic file output: write to a unique temporary name, rename into place.

A killed process never leaves a file under the final name that looks complete
but is not, and two processes writing the same name never interleave bytes.

Rules
-----
* A new file gets the usual mode ``0o666`` less the process umask; a rewrite
  keeps the permission bits of the file it replaces.
* Only a regular file (or nothing) is ever replaced: a directory, device node,
  fifo or socket at the target is refused with :class:`~asdxai.errors.ConfigError`.
* A symlink is written through: its target is replaced, the link stays. A dangling
  symlink is refused (nothing is created where it points).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # os.fsdecode's stand-ins for bytes 0x80-0xff
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a fifo"),
    (stat.S_ISSOCK, "a socket"),
)


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and check that it is writable.

    Parameters
    ----------
    path : path-like
        Output directory.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        The directory cannot be created or is not writable.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create output directory ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: output directory is not writable")
    return path


def _existing_mode(target: Path, shown: Path) -> int | None:
    """Permission bits of the regular file at ``target``; None when nothing is there.

    Raises ConfigError (naming ``shown``) when something other than a regular file is there.
    """
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot inspect output file ({exc.strerror})") from None
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise ConfigError(f"{shown}: is {kind}; refusing to replace it with an output file")
    return stat.S_IMODE(st.st_mode) & 0o777


def check_output_file(path: str | os.PathLike) -> Path:
    """Check, before any work, that ``path`` can be written by :func:`atomic_path`.

    Creates the parent directory if needed (like :func:`ensure_writable_dir`).

    Parameters
    ----------
    path : path-like
        The output file; a symlink is followed to its target.

    Returns
    -------
    Path
        The file that will actually be written (``path`` with symlinks resolved).

    Raises
    ------
    ConfigError
        The directory cannot be created or written, the target is a directory, device
        node, fifo or socket, or ``path`` is a symlink to a file that does not exist.
    """
    path = Path(path)
    ensure_writable_dir(path.parent)
    if path.is_symlink() and not path.exists():
        raise ConfigError(
            f"{path}: is a symlink to {os.readlink(path)!r}, which does not exist; refusing to "
            "create it (a symlink is written through only to an existing file)"
        )
    target = Path(os.path.realpath(path))
    ensure_writable_dir(target.parent)
    _existing_mode(target, path)
    return target


def _create_temp(target: Path) -> Path:
    """Create an empty hidden ``.<name>.<random>.part`` next to ``target``, mode 0o666 - umask."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(
                f"{target.parent}: cannot create a file there ({exc.strerror})"
            ) from None
        os.close(fd)
        return tmp
    raise ConfigError(f"{target.parent}: cannot find a free temporary file name")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``'s target; rename it there on success.

    On an exception the temporary file is removed and ``path`` is untouched. The file
    gets the mode of the file it replaces, or ``0o666`` less the umask when new; a
    symlink at ``path`` is written through to its target.

    Parameters
    ----------
    path : path-like
        The output file.

    Yields
    ------
    Path
        The temporary file to write (it exists, empty).

    Raises
    ------
    ConfigError
        See :func:`check_output_file`; also checked again just before the rename.

    Examples
    --------
    >>> with atomic_path("model.pt") as tmp:  # doctest: +SKIP
    ...     torch.save(obj, tmp)
    """
    path = Path(path)
    target = check_output_file(path)
    tmp_path = _create_temp(target)
    try:
        yield tmp_path
        mode = _existing_mode(target, path)
        if mode is not None:
            os.chmod(tmp_path, mode)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def escape_undecodable(text: str) -> str:
    """``text`` with the surrogates that stand for undecodable file-name bytes as ``\\xNN``.

    Any other lone surrogate (which no file name decodes to) becomes ``\\udNNN``.
    """
    text = _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically as UTF-8 and return the path.

    Bytes of file names that are not UTF-8 (held by Python as surrogate escapes) are
    written as ``\\xNN``, so such a name never stops a write and the file stays UTF-8.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(escape_undecodable(text), encoding="utf-8")
    return Path(path)
